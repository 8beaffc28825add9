//! The durable store (PostgreSQL in production, an embedded SQLite file by default) that
//! implements the domain's `TrackerStore` and `EventReader` ports.
//!
//! Not built yet: this crate holds the place of the adapter in the workspace.
