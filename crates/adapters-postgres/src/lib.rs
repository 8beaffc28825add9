//! The durable store behind stagewatch's storage ports: PostgreSQL in production, where several
//! server replicas share the work through leases, and an embedded SQLite file as the zero-setup
//! default. One set of sea-orm entities and one set of migrations serve both.
//!
//! [`Store`] implements the domain's [`TrackerStore`](domain::ports::TrackerStore) and
//! [`EventReader`](domain::ports::EventReader), and adds what the server needs beside them:
//! integrations and their leases, the reads of the HTTP API, webhook endpoints and their outbox,
//! and idempotency keys. Every method that depends on the time takes it as `now`, so callers
//! own the clock. See `docs/storage.md` for the schema, the transactions and the leases.

mod console;
pub mod entity;
mod error;
mod feed;
mod funnel;
mod funnel_summed;
mod funnel_totals;
mod idempotency;
mod integrations;
pub(crate) mod migration;
mod operations;
mod outbox;
mod pipelines;
mod reads;
mod retention;
mod rows;
#[cfg(feature = "scratch")]
pub mod scratch;
mod statistics;
mod store;
mod tracker;
mod visits;
mod webhooks;

pub use console::{ConsoleSession, RecentEvents};
pub use funnel_summed::FUNNEL_EXACT_BELOW;
pub use idempotency::IdempotencyClaim;
pub use integrations::{Claim, IntegrationRecord, NewIntegration, Registered, StatusApplied};
pub use outbox::{
    AttemptOutcome, AttemptRecord, DeliveryAttempt, DeliveryRecord, DeliveryStatus, DueDelivery,
};
pub use reads::{
    ApplicationCursor, ApplicationFilter, ApplicationRecord, JobOverview, StageCount, StageVisit,
};
pub use store::{Backend, Store, StoreOptions, redacted_url};
pub use webhooks::{EndpointRecord, EndpointUpdate, NewEndpoint};

pub use domain::ports::StoreError;
