//! What the store keeps, read and written row by row: organizations, API keys and server
//! secrets, suppliers, background jobs and imports with their files, and the reads of lines,
//! reports and the inventory over the read models.
//!
//! Not here: writing lines (`write`), which every model of lines depends on being in step.

pub mod audit;
pub mod connections;
pub mod coverage;
pub mod csvout;
pub mod inventory;
pub mod jobs;
pub mod keys;
pub mod lines;
pub mod orgs;
pub mod pact_requests;
pub mod pcfs;
pub mod periods;
pub mod published;
pub mod reporting;
pub mod reports;
pub mod suppliers;
