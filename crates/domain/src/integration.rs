//! Integrations (one customer's ATS connection in Kombo) and what their ATS can tell us.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::IntegrationId;

/// Kombo's `status` of an integration, plus `Deleted` once Kombo reports it deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IntegrationStatus {
    /// Syncing normally.
    Active,
    /// Stopped by invalid credentials: the customer must reconnect.
    Invalid,
    /// Set inactive by hand (or by Kombo after a long idle period in development).
    Inactive,
    /// Deleted in Kombo; its data disappears 14 days later.
    Deleted,
    /// A value this release does not know.
    #[serde(other)]
    Unknown,
}

/// Kombo's `setup_status` of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SetupStatus {
    /// No data yet.
    Incomplete,
    /// The initial sync is running; reads answer "not ready" until it ends, possibly hours later.
    FinalSyncPending,
    Completed,
    #[serde(other)]
    Unknown,
}

/// Whether this customer's ATS provides something, from Kombo's `coverage_status` (and from
/// `…_NOT_AVAILABLE` errors for whole models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Support {
    Supported,
    /// The ATS cannot provide it.
    Unsupported,
    /// The ATS could, but Kombo's connector does not read it yet.
    NotImplemented,
    Unknown,
}

impl Support {
    /// Whether values can be expected at all.
    pub fn is_available(self) -> bool {
        matches!(self, Self::Supported | Self::Unknown)
    }
}

/// An application field whose support varies per ATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackedField {
    Outcome,
    CurrentStage,
}

/// What an integration's ATS lets stagewatch see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Whether applications can be read at all.
    pub applications: Support,
    pub outcome: Support,
    pub current_stage: Support,
    /// Fields seen going from a value to `null` on an application that had one (rule 5):
    /// Kombo's coverage claims support, yet the ATS stopped telling. Kept until Kombo's coverage
    /// for that field changes, so the flag does not flap from pass to pass.
    pub observed_gaps: BTreeSet<TrackedField>,
}

impl Capabilities {
    /// Nothing known yet.
    pub fn unknown() -> Self {
        Self {
            applications: Support::Unknown,
            outcome: Support::Unknown,
            current_stage: Support::Unknown,
            observed_gaps: BTreeSet::new(),
        }
    }

    /// Kombo's coverage of a field.
    pub fn support_of(&self, field: TrackedField) -> Support {
        match field {
            TrackedField::Outcome => self.outcome,
            TrackedField::CurrentStage => self.current_stage,
        }
    }

    /// The capabilities after a fresh report from Kombo: Kombo's values replace ours, and an
    /// observed gap is kept only while Kombo's coverage of that field stays what it was.
    #[must_use]
    pub fn refreshed_by(&self, reported: &Capabilities) -> Capabilities {
        let mut next = reported.clone();
        next.observed_gaps = self
            .observed_gaps
            .iter()
            .copied()
            .filter(|field| self.support_of(*field) == reported.support_of(*field))
            .chain(reported.observed_gaps.iter().copied())
            .collect();
        next
    }

    /// Fields whose support or observed gap differs from `other`, for event payloads and logs.
    pub fn differences(&self, other: &Capabilities) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.applications != other.applications {
            changed.push("applications");
        }
        if self.outcome != other.outcome {
            changed.push("outcome");
        }
        if self.current_stage != other.current_stage {
            changed.push("current_stage");
        }
        if self.observed_gaps != other.observed_gaps {
            changed.push("observed_gaps");
        }
        changed
    }
}

/// An integration as Kombo describes it (`GET /integrations/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationInfo {
    pub id: IntegrationId,
    pub tool: Option<String>,
    pub status: IntegrationStatus,
    pub setup_status: Option<SetupStatus>,
    /// Set when a configuration change (scope, filters) invalidated the synced data; a pass that
    /// would delete many applications while this is set is held for an operator.
    pub data_expired_at: Option<DateTime<Utc>>,
    pub capabilities: Capabilities,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(outcome: Support, gaps: &[TrackedField]) -> Capabilities {
        Capabilities {
            applications: Support::Supported,
            outcome,
            current_stage: Support::Supported,
            observed_gaps: gaps.iter().copied().collect(),
        }
    }

    #[test]
    fn refresh_keeps_gap_while_coverage_is_unchanged() {
        let held = caps(Support::Supported, &[TrackedField::Outcome]);
        let reported = caps(Support::Supported, &[]);
        assert_eq!(held.refreshed_by(&reported), held);
    }

    #[test]
    fn refresh_drops_gap_when_coverage_changes() {
        let held = caps(Support::Supported, &[TrackedField::Outcome]);
        let reported = caps(Support::Unsupported, &[]);
        let next = held.refreshed_by(&reported);
        assert!(next.observed_gaps.is_empty());
        assert_eq!(next.outcome, Support::Unsupported);
        assert_eq!(held.differences(&next), ["outcome", "observed_gaps"]);
    }

    #[test]
    fn unknown_status_values_do_not_fail() {
        let status: IntegrationStatus = serde_json::from_str("\"PAUSED\"").unwrap();
        assert_eq!(status, IntegrationStatus::Unknown);
        let setup: SetupStatus = serde_json::from_str("\"FINAL_SYNC_PENDING\"").unwrap();
        assert_eq!(setup, SetupStatus::FinalSyncPending);
    }

    #[test]
    fn availability_follows_coverage() {
        assert!(Support::Supported.is_available());
        assert!(Support::Unknown.is_available());
        assert!(!Support::Unsupported.is_available());
        assert!(!Support::NotImplemented.is_available());
    }
}
