//! The sync use case: one pass over one integration, from Kombo's pages to stored states and
//! events, through the ports only.

mod guard;
mod in_flight;
mod page;
mod pipelines;
mod read_ahead;
mod report;
mod service;

pub use guard::DeletionGuard;
pub use in_flight::{PAGES_BETWEEN_PAUSES, PAGES_IN_FLIGHT};
pub use report::{PassOutcome, PassReport};
pub use service::SyncService;

use std::time::Duration;

use crate::ports::{AtsError, DEFAULT_PAGE_SIZE, StoreError};

/// Which applications a pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassMode {
    /// Applications changed since the watermark. The first pass of an integration is full.
    Incremental,
    /// Every application, deleted ones included: repairs drift and finds deletions, which Kombo
    /// only detects in its own full syncs.
    Full,
}

/// How passes run.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// Kombo's `page_size` (1–250).
    pub page_size: u16,
    /// Subtracted from a pass's start time to make the next watermark, so that a skew between
    /// our clock and Kombo's cannot hide a change. The overlap is re-read and de-duplicated.
    pub watermark_margin: chrono::Duration,
    pub deletion_guard: DeletionGuard,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            page_size: DEFAULT_PAGE_SIZE,
            watermark_margin: chrono::Duration::minutes(2),
            deletion_guard: DeletionGuard::default(),
        }
    }
}

/// Lets the caller follow a pass and stop it between pages.
pub trait PassObserver: Send + Sync {
    /// Called after each page is stored.
    fn page_applied(&self, _report: &PassReport) {}

    /// Asked before fetching the next page; `false` ends the pass early (its pages stay applied,
    /// the watermark stays where it was).
    fn keep_going(&self) -> bool {
        true
    }
}

/// An observer that watches nothing.
impl PassObserver for () {}

/// Why a pass failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("Kombo: {0}")]
    Ats(#[from] AtsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl SyncError {
    /// A stable, machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ats(error) => error.kind(),
            Self::Store(StoreError::LeaseLost { .. }) => "lease_lost",
            Self::Store(_) => "store",
        }
    }

    /// Whether the store refused a write because the pass lost its lease.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::Store(error) if error.is_lease_lost())
    }

    /// How long Kombo asked to wait before the next attempt, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Ats(error) => error.retry_after(),
            Self::Store(_) => None,
        }
    }

    /// Whether the integration counts as failing. Being rate limited or still in Kombo's initial
    /// sync only defers the pass.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Self::Ats(AtsError::RateLimited { .. } | AtsError::NotReady { .. })
                | Self::Store(StoreError::LeaseLost { .. })
        )
    }
}
