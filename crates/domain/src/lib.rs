//! The heart of stagewatch: what an application, a job's pipeline and a change event are; the
//! rules that turn Kombo's repeated snapshots into change events ([`detect()`]); the sync use case
//! that runs them for one integration ([`sync::SyncService`]); the product's own actions on an
//! application ([`actions`]: move, reject); and the ports that the Kombo and storage adapters
//! implement.
//!
//! This crate is pure: no async runtime, no HTTP, no SQL. Everything it needs from the outside
//! world goes through the traits in [`ports`].

pub mod actions;
pub mod application;
pub mod detect;
pub mod event;
#[cfg(any(test, feature = "mocks"))]
pub mod fixtures;
pub mod funnel;
pub mod ids;
pub mod integration;
pub mod outcome;
pub mod ports;
pub mod rejection;
pub mod stage;
pub mod sync;

pub use application::{ApplicationSnapshot, Origin, TrackedApplication};
pub use detect::{DetectContext, Detection, Signals, StageEntry, detect};
pub use event::{ChangeEvent, EventKind, FeedEvent};
pub use funnel::{CohortCounts, Funnel, FunnelQuery, FunnelStage, ReasonCount};
pub use ids::{
    ApplicationId, CandidateId, EventId, IdError, IntegrationId, JobId, RemoteId, StageId,
};
pub use integration::{Capabilities, IntegrationInfo, IntegrationStatus, SetupStatus, Support};
pub use outcome::Outcome;
pub use rejection::RejectionReason;
pub use stage::{Pipeline, Stage, StageRef, StageStatus};
