//! HTTP API (axum). Not built yet: see the HTTP API issue. Nothing depends on this crate so far.
