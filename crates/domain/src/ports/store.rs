use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::application::TrackedApplication;
use crate::detect::StageEntry;
use crate::event::{ChangeEvent, FailureReport};
use crate::ids::{ApplicationId, IntegrationId, JobId};
use crate::integration::{Capabilities, IntegrationStatus};
use crate::stage::Pipeline;

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or timed out; worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The integration is not registered.
    #[error("integration {0} is not registered")]
    UnknownIntegration(IntegrationId),
    /// Stored data broke an invariant (a row that cannot be read back).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// What the sync needs to know about an integration before a pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncState {
    /// Start time of the last complete pass (minus the safety margin); `None` before the first.
    pub watermark: Option<DateTime<Utc>>,
    pub capabilities: Option<Capabilities>,
    pub status: Option<IntegrationStatus>,
    /// Start of the current streak of failed passes.
    pub failing_since: Option<DateTime<Utc>>,
    /// Deletions are held for an operator's confirmation.
    pub deletions_held: bool,
}

/// One page's worth of results, applied in one transaction: all of it or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageChanges {
    pub integration_id: IntegrationId,
    /// States to upsert. Writing a state also drops any held change of that application: a newer
    /// observation supersedes it.
    pub applications: Vec<TrackedApplication>,
    /// Events to append, in order; an event whose id is already stored is skipped.
    pub events: Vec<ChangeEvent>,
    /// Stage history: each entry closes the application's open stage visit and opens a new one.
    pub stage_entries: Vec<StageEntry>,
    /// Deletions held back from the feed until the pass decides (mass-deletion guard).
    pub held: Vec<HeldChange>,
    /// Pipelines whose stages were renamed or re-ordered.
    pub pipelines: Vec<Pipeline>,
}

/// A detection held back by the mass-deletion guard: stored aside, one per application (a newer
/// one replaces it), and applied as a whole when released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldChange {
    pub application: TrackedApplication,
    pub events: Vec<ChangeEvent>,
    pub stage_entry: Option<StageEntry>,
}

/// The result of applying a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppliedPage {
    /// Events appended to the feed (duplicates by id excluded).
    pub events_appended: u64,
}

/// Counts for the mass-deletion guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldStats {
    /// Applications with a held deletion.
    pub held: u64,
    /// Applications tracked and not deleted.
    pub tracked: u64,
}

/// A change to an integration's description, with the events it raises, applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationUpdate {
    pub integration_id: IntegrationId,
    pub capabilities: Option<Capabilities>,
    pub status: Option<IntegrationStatus>,
    pub events: Vec<ChangeEvent>,
}

/// A pass that finished, recorded with its events in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassCompletion {
    pub integration_id: IntegrationId,
    /// The new watermark; `None` leaves it as it was (nothing was read).
    pub watermark: Option<DateTime<Utc>>,
    pub full: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub capabilities: Option<Capabilities>,
    /// Whether deletions are now held for an operator.
    pub deletions_held: bool,
    /// `integration.recovered`, `integration.deletions_held`, `integration.capability_changed`.
    pub events: Vec<ChangeEvent>,
}

/// A pass that failed; the watermark stays where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassFailure {
    pub integration_id: IntegrationId,
    pub at: DateTime<Utc>,
    pub error: FailureReport,
    /// The streak's start, or `None` when this failure does not count as one (rate limited, not
    /// ready yet): the integration is deferred, not failing.
    pub failing_since: Option<DateTime<Utc>>,
    /// `integration.sync_failed` on the first failure of a streak.
    pub events: Vec<ChangeEvent>,
}

/// Where stagewatch keeps what it tracks.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait TrackerStore: Send + Sync {
    /// The integration's watermark, capabilities and health.
    async fn sync_state(&self, integration: &IntegrationId) -> Result<SyncState, StoreError>;

    /// Records new capabilities or status and appends their events, atomically.
    async fn update_integration(&self, update: IntegrationUpdate) -> Result<(), StoreError>;

    /// The tracked states of these applications (those not tracked are absent).
    async fn load_applications(
        &self,
        integration: &IntegrationId,
        ids: &[ApplicationId],
    ) -> Result<Vec<TrackedApplication>, StoreError>;

    /// The stored pipelines of these jobs (those not stored are absent).
    async fn load_pipelines(
        &self,
        integration: &IntegrationId,
        jobs: &[JobId],
    ) -> Result<Vec<Pipeline>, StoreError>;

    /// Stores pipelines as fetched from Kombo, replacing the stored ones.
    async fn save_pipelines(
        &self,
        integration: &IntegrationId,
        pipelines: &[Pipeline],
    ) -> Result<(), StoreError>;

    /// Applies one page of results in one transaction.
    async fn apply_page(&self, changes: PageChanges) -> Result<AppliedPage, StoreError>;

    /// Counts for the mass-deletion guard.
    async fn hold_stats(&self, integration: &IntegrationId) -> Result<HoldStats, StoreError>;

    /// Applies every held change of the integration (states, events, stage history), clears the
    /// hold flag, and returns how many applications were released.
    async fn release_held(&self, integration: &IntegrationId) -> Result<u64, StoreError>;

    /// Records a finished pass: watermark, capabilities, health, events.
    async fn complete_pass(&self, completion: PassCompletion) -> Result<(), StoreError>;

    /// Records a failed pass.
    async fn record_failure(&self, failure: PassFailure) -> Result<(), StoreError>;
}
