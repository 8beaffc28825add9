//! The durable store behind stagewatch's storage ports: PostgreSQL in production, where several
//! server replicas share the work through leases, and an embedded SQLite file as the zero-setup
//! default. One set of sea-orm entities and one set of migrations serve both.
//!
//! [`Store`] implements the domain's [`TrackerStore`](domain::ports::TrackerStore) and
//! [`EventReader`](domain::ports::EventReader), and adds what the server needs beside them:
//! integrations and their leases, the reads of the HTTP API, webhook endpoints and their outbox,
//! and idempotency keys. Every method that depends on the time takes it as `now`, so callers
//! own the clock. See `docs/storage.md` for the schema, the transactions and the leases.

pub mod entity;
mod error;
mod feed;
mod integrations;
pub mod migration;
mod reads;
mod rows;
mod store;
mod tracker;

pub use integrations::{IntegrationRecord, NewIntegration, Registered};
pub use reads::{
    ApplicationCursor, ApplicationFilter, ApplicationRecord, JobOverview, StageCount, StageVisit,
};
pub use store::{Backend, Store, StoreOptions};

pub use domain::ports::StoreError;
