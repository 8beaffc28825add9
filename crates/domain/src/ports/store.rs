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
    /// A feed cursor points before the oldest event the feed's retention kept: the events in
    /// between are gone, and reading on would silently skip them.
    #[error(
        "events up to sequence {pruned_through} were removed by the feed's retention; the cursor {after} is before the oldest kept event"
    )]
    FeedPruned { after: i64, pruned_through: i64 },
    /// The write came from a pass whose lease was claimed again since (its fencing token is
    /// stale): it was refused and nothing was written. The pass must stop at once.
    #[error(
        "{operation} refused: the lease of {integration} was claimed again (epoch {current}, this pass holds {held})"
    )]
    LeaseLost {
        integration: IntegrationId,
        /// The write refused: `apply_page`, `complete_pass`, `release_held`, ….
        operation: &'static str,
        /// The epoch the pass carried.
        held: LeaseEpoch,
        /// The integration's epoch now.
        current: LeaseEpoch,
    },
}

impl StoreError {
    /// Whether this is a write refused because the pass lost its lease.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. })
    }
}

/// The fencing token of an integration's lease: the store increases it at every claim, and
/// refuses a pass's write that carries an older one, so that a pass that lost its lease
/// (frozen, partitioned, or its renewals failing) cannot write after another pass took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseEpoch(pub i64);

impl std::fmt::Display for LeaseEpoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
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
    /// The lease of the pass that read the page, checked in the page's transaction. `None`
    /// for a write outside a pass (an application just created through the API), which only
    /// the rule that a stored state never goes back in `changed_at` protects.
    pub lease: Option<LeaseEpoch>,
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

impl PageChanges {
    /// Whether applying it would write nothing (an empty page, as an idle incremental pass
    /// reads).
    pub fn writes_nothing(&self) -> bool {
        self.applications.is_empty()
            && self.events.is_empty()
            && self.stage_entries.is_empty()
            && self.held.is_empty()
            && self.pipelines.is_empty()
    }
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
    /// The lease of the pass making the update, checked in its transaction.
    pub lease: LeaseEpoch,
    pub capabilities: Option<Capabilities>,
    pub status: Option<IntegrationStatus>,
    pub events: Vec<ChangeEvent>,
}

/// A pass that finished, recorded with its events in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassCompletion {
    pub integration_id: IntegrationId,
    /// The lease of the pass, checked in the same transaction.
    pub lease: LeaseEpoch,
    /// The new watermark; `None` leaves it as it was (nothing was read).
    pub watermark: Option<DateTime<Utc>>,
    pub full: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub capabilities: Option<Capabilities>,
    /// Whether deletions are now held for an operator. The store keeps the flag only while
    /// held changes remain, so that it never shows a confirmation that nothing waits for.
    pub deletions_held: bool,
    /// `integration.recovered`, `integration.deletions_held`, `integration.capability_changed`.
    pub events: Vec<ChangeEvent>,
}

/// A pass that failed; the watermark stays where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassFailure {
    pub integration_id: IntegrationId,
    /// The lease of the pass, checked in the same transaction.
    pub lease: LeaseEpoch,
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

    /// Applies one page of results in one transaction; refused with [`StoreError::LeaseLost`]
    /// (nothing written) when the page's lease is stale.
    async fn apply_page(&self, changes: PageChanges) -> Result<AppliedPage, StoreError>;

    /// Applies the first sighting of applications seen outside a pass (just created through
    /// the API), in one transaction serialised with the passes' pages, unless one of them is
    /// already stored: a pass that saw it first has announced it, and an older snapshot must
    /// not replace what it stored. Returns whether anything was written.
    async fn apply_first_sighting(&self, changes: PageChanges) -> Result<bool, StoreError>;

    /// Counts for the mass-deletion guard.
    async fn hold_stats(&self, integration: &IntegrationId) -> Result<HoldStats, StoreError>;

    /// How many changes of the integration are held: [`HoldStats::held`] alone, which a pass
    /// reads first because it costs nothing when none are (the tracked count reads every row).
    async fn count_held(&self, integration: &IntegrationId) -> Result<u64, StoreError>;

    /// Applies every held change of the integration (states, events, stage history), clears the
    /// hold flag, and returns how many applications were released. A pass passes its lease
    /// (checked in the same transaction); an operator's confirmation passes `None`.
    async fn release_held(
        &self,
        integration: &IntegrationId,
        lease: Option<LeaseEpoch>,
    ) -> Result<u64, StoreError>;

    /// Records a finished pass: watermark, capabilities, health, events; refused with
    /// [`StoreError::LeaseLost`] when the pass's lease is stale.
    async fn complete_pass(&self, completion: PassCompletion) -> Result<(), StoreError>;

    /// Records a failed pass.
    async fn record_failure(&self, failure: PassFailure) -> Result<(), StoreError>;
}
