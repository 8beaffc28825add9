use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::PassMode;
use crate::ids::IntegrationId;

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassOutcome {
    /// Every page was read and stored; the watermark moved.
    Completed,
    /// Stopped between pages on request (shutdown); the watermark did not move.
    Interrupted,
    /// This ATS cannot read applications: recorded as a capability, not a failure.
    ApplicationsUnreadable,
}

/// What a pass did, for logs, the CLI summary and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub integration_id: IntegrationId,
    /// The mode that actually ran: a first pass is full even when incremental was asked.
    pub mode: PassMode,
    pub started_at: DateTime<Utc>,
    pub outcome: PassOutcome,
    pub pages: u32,
    pub applications_seen: u64,
    /// Snapshots older than what was held (rule 2).
    pub stale_snapshots: u64,
    /// Records Kombo sent that could not be read.
    pub skipped_records: u64,
    /// Events detected, by type (re-detections of stored events included).
    pub events_by_kind: BTreeMap<String, u64>,
    /// Events newly appended to the feed.
    pub events_appended: u64,
    /// Applications whose deletion waits for an operator.
    pub deletions_held: u64,
    /// Held deletions released into the feed by this pass.
    pub deletions_released: u64,
    /// Things worth a log line that did not stop the pass.
    pub warnings: Vec<String>,
}

impl PassReport {
    pub(crate) fn new(
        integration_id: IntegrationId,
        mode: PassMode,
        started_at: DateTime<Utc>,
    ) -> Self {
        Self {
            integration_id,
            mode,
            started_at,
            outcome: PassOutcome::Interrupted,
            pages: 0,
            applications_seen: 0,
            stale_snapshots: 0,
            skipped_records: 0,
            events_by_kind: BTreeMap::new(),
            events_appended: 0,
            deletions_held: 0,
            deletions_released: 0,
            warnings: Vec::new(),
        }
    }

    /// Total events detected.
    pub fn events_detected(&self) -> u64 {
        self.events_by_kind.values().sum()
    }
}
