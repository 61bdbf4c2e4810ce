//! vcci-core: the Scope 3 domain, pure.
//!
//! Domain types parsed at the edge (`Category`, `Naics`, `Currency`, `Unit`, `Date`), the
//! shipped factor sets and tables (`factors`), lines and their errors (`line`), and the
//! calculation engine (`calc`). No I/O beyond reading the embedded data, no async: everything
//! here can be tested exhaustively and run in parallel over batches.

#![forbid(unsafe_code)]

pub mod calc;
pub mod category;
pub mod classify;
pub mod csv;
pub mod currency;
pub mod date;
pub mod factors;
pub mod gases;
pub mod line;
pub mod naics;
pub mod names;
pub mod pact;
pub mod units;

pub use calc::{
    Boundary, CalcConfig, Emission, EmissionRecord, Method, PcfInfo, SupplierData,
    SupplierIntensity, SupplierProfile, calculate,
};
pub use category::{Category, CategorySource};
pub use currency::Currency;
pub use date::Date;
pub use factors::{Catalog, EpaVersion, PriceBasis, catalog};
pub use line::{Field, Line, LineError};
pub use naics::Naics;
pub use units::Unit;
