//! Change events: what stagewatch tells the product, in the feed and in webhooks alike.
//!
//! An event carries everything a consumer needs to act on it without another lookup: the
//! application as it stands after the change, the job, and the change itself with stage names,
//! indices, direction, skipped stages and time spent in the previous stage.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::application::TrackedApplication;
use crate::ids::{ApplicationId, CandidateId, EventId, IntegrationId, JobId, RemoteId};
use crate::integration::{Capabilities, IntegrationStatus};
use crate::outcome::Outcome;
use crate::stage::StageRef;

/// One change, as detected. The store gives it a feed `sequence` when it is appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub id: EventId,
    /// Kombo's `changed_at` for application events; when stagewatch saw it for the others.
    pub occurred_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    /// Absent only for events about stagewatch itself (`endpoint.disabled`).
    pub integration: Option<IntegrationRef>,
    /// The application as it stands after the change; absent for integration-level events.
    pub application: Option<ApplicationRef>,
    pub job: Option<JobRef>,
    /// `stagewatch` when the change is the product's own action through stagewatch's API (a
    /// move or a rejection), recorded when Kombo accepted it; absent when a sync pass observed
    /// the change in the ATS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<EventOrigin>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Who made a change that an event reports, when it was not the ATS's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOrigin {
    /// The product, through stagewatch's API.
    Stagewatch,
}

/// The integration an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationRef {
    pub id: IntegrationId,
    pub tool: Option<String>,
}

impl IntegrationRef {
    /// The reference for an integration id, with the tool taken from its prefix.
    pub fn from_id(id: &IntegrationId) -> Self {
        Self {
            id: id.clone(),
            tool: id.tool().map(str::to_owned),
        }
    }
}

/// The application an event is about, as it stands after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationRef {
    pub id: ApplicationId,
    pub remote_id: Option<RemoteId>,
    pub candidate_id: Option<CandidateId>,
    pub candidate_name: Option<String>,
    pub job_id: Option<JobId>,
    pub current_stage: Option<StageRef>,
    pub outcome: Option<Outcome>,
    pub deleted: bool,
}

impl ApplicationRef {
    /// The reference for a tracked state.
    pub fn of(state: &TrackedApplication) -> Self {
        Self {
            id: state.id.clone(),
            remote_id: state.remote_id.clone(),
            candidate_id: state.candidate_id.clone(),
            candidate_name: state.candidate_name.clone(),
            job_id: state.job_id.clone(),
            current_stage: state.current_stage.clone(),
            outcome: state.outcome.clone(),
            deleted: state.is_deleted(),
        }
    }
}

/// A job as events name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobRef {
    pub id: JobId,
    pub name: Option<String>,
}

/// Which way a stage change went in the job's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Forward,
    Backward,
    /// Either index is unknown, they are equal, or the application changed jobs.
    Unknown,
}

/// What happened, with the details of that kind of change. Serialized as `"type"` and `"data"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventKind {
    #[serde(rename = "application.created")]
    ApplicationCreated(Baseline),
    #[serde(rename = "application.discovered")]
    ApplicationDiscovered(Baseline),
    #[serde(rename = "application.stage_changed")]
    StageChanged(StageChange),
    #[serde(rename = "application.outcome_changed")]
    OutcomeChanged(OutcomeChange),
    #[serde(rename = "application.hired")]
    Hired(Hired),
    #[serde(rename = "application.declined")]
    Declined(Declined),
    #[serde(rename = "application.reopened")]
    Reopened(OutcomeChange),
    #[serde(rename = "application.job_changed")]
    JobChanged(JobChange),
    #[serde(rename = "application.deleted")]
    Deleted(Deleted),
    #[serde(rename = "application.restored")]
    Restored(Restored),
    #[serde(rename = "integration.capability_changed")]
    CapabilityChanged(CapabilityChange),
    #[serde(rename = "integration.status_changed")]
    StatusChanged(StatusChange),
    #[serde(rename = "integration.sync_failed")]
    SyncFailed(SyncFailed),
    #[serde(rename = "integration.recovered")]
    Recovered(Recovered),
    #[serde(rename = "integration.deletions_held")]
    DeletionsHeld(DeletionsHeld),
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled(EndpointDisabled),
}

/// Every event type, in catalogue order: for validating filters and for documentation.
pub const EVENT_TYPES: [&str; 16] = [
    "application.created",
    "application.discovered",
    "application.stage_changed",
    "application.outcome_changed",
    "application.hired",
    "application.declined",
    "application.reopened",
    "application.job_changed",
    "application.deleted",
    "application.restored",
    "integration.capability_changed",
    "integration.status_changed",
    "integration.sync_failed",
    "integration.recovered",
    "integration.deletions_held",
    "endpoint.disabled",
];

impl EventKind {
    /// The event's `type`, e.g. `application.stage_changed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ApplicationCreated(_) => EVENT_TYPES[0],
            Self::ApplicationDiscovered(_) => EVENT_TYPES[1],
            Self::StageChanged(_) => EVENT_TYPES[2],
            Self::OutcomeChanged(_) => EVENT_TYPES[3],
            Self::Hired(_) => EVENT_TYPES[4],
            Self::Declined(_) => EVENT_TYPES[5],
            Self::Reopened(_) => EVENT_TYPES[6],
            Self::JobChanged(_) => EVENT_TYPES[7],
            Self::Deleted(_) => EVENT_TYPES[8],
            Self::Restored(_) => EVENT_TYPES[9],
            Self::CapabilityChanged(_) => EVENT_TYPES[10],
            Self::StatusChanged(_) => EVENT_TYPES[11],
            Self::SyncFailed(_) => EVENT_TYPES[12],
            Self::Recovered(_) => EVENT_TYPES[13],
            Self::DeletionsHeld(_) => EVENT_TYPES[14],
            Self::EndpointDisabled(_) => EVENT_TYPES[15],
        }
    }

    /// The values that make one application change distinct from another of the same kind and
    /// time. Only what Kombo reported goes in: names, indices and skipped stages come from the
    /// pipeline, which may have been refreshed between a crash and its replay.
    fn identity(&self) -> String {
        fn stage(stage: Option<&StageRef>) -> &str {
            stage.map_or("", |s| s.stage_id.as_str())
        }
        fn outcome(outcome: Option<&Outcome>) -> &str {
            outcome.map_or("", Outcome::as_str)
        }
        match self {
            Self::StageChanged(c) => format!("{}>{}", stage(c.from.as_ref()), stage(Some(&c.to))),
            Self::OutcomeChanged(c) | Self::Reopened(c) => {
                format!("{}>{}", outcome(c.from.as_ref()), c.to.as_str())
            }
            Self::JobChanged(c) => {
                format!(
                    "{}>{}",
                    c.from.as_ref().map_or("", |j| j.id.as_str()),
                    c.to.id.as_str()
                )
            }
            Self::Deleted(d) => timestamp(d.remote_deleted_at),
            _ => String::new(),
        }
    }
}

/// The starting point of a newly tracked application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub stage: Option<StageRef>,
    pub outcome: Option<Outcome>,
    pub deleted: bool,
}

/// `application.stage_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageChange {
    /// `None` when no stage was known before.
    pub from: Option<StageRef>,
    pub to: StageRef,
    pub direction: Direction,
    /// Active stages jumped over by a forward move, in pipeline order.
    pub skipped: Vec<StageRef>,
    /// Seconds between entering `from` and this change; `None` when the entry time is unknown.
    pub time_in_previous_stage_seconds: Option<i64>,
}

/// `application.outcome_changed` and `application.reopened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeChange {
    pub from: Option<Outcome>,
    pub to: Outcome,
}

/// `application.hired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hired {
    pub previous_outcome: Option<Outcome>,
    pub stage: Option<StageRef>,
}

/// `application.declined`: rejected, or withdrawn by the candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declined {
    pub previous_outcome: Option<Outcome>,
    pub stage: Option<StageRef>,
    pub rejection_reason: Option<String>,
    pub rejected_at: Option<DateTime<Utc>>,
}

/// `application.job_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobChange {
    pub from: Option<JobRef>,
    pub to: JobRef,
}

/// `application.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub remote_deleted_at: DateTime<Utc>,
}

/// `application.restored`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    pub was_deleted_at: DateTime<Utc>,
}

/// `integration.capability_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityChange {
    /// `None` the first time capabilities are learnt.
    pub from: Option<Capabilities>,
    pub to: Capabilities,
    pub changed: Vec<String>,
}

/// `integration.status_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub from: Option<IntegrationStatus>,
    pub to: IntegrationStatus,
}

/// Why a sync failed, in words safe to show and log (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    /// A stable, machine-readable kind such as `unauthorized` or `transient`.
    pub kind: String,
    pub message: String,
}

/// `integration.sync_failed`: the first failure after a healthy stretch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFailed {
    pub error: FailureReport,
    pub failing_since: DateTime<Utc>,
}

/// `integration.recovered`: the first complete pass after failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    pub failing_since: DateTime<Utc>,
    pub failed_for_seconds: i64,
}

/// `integration.deletions_held`: a pass would have deleted too much; an operator must confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionsHeld {
    pub held: u64,
    pub tracked: u64,
    pub data_expired_at: Option<DateTime<Utc>>,
}

/// `endpoint.disabled`: an outbound webhook endpoint failed for too long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDisabled {
    pub endpoint_id: String,
    pub url: String,
    pub reason: String,
}

/// A stored event with its place in the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// Gap-free, increasing position in the feed: the consumer's cursor.
    pub sequence: i64,
    #[serde(flatten)]
    pub event: ChangeEvent,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl EventId {
    /// An id derived from its parts: equal parts, equal id.
    pub fn derive(parts: &[&str]) -> EventId {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update([0x1f]);
        }
        let digest = hasher.finalize();
        let mut id = String::with_capacity(4 + 32);
        id.push_str("evt_");
        for byte in &digest[..16] {
            let _ = write!(id, "{byte:02x}");
        }
        EventId::parse(id).expect("derived ids are valid")
    }
}

impl ChangeEvent {
    /// An application event. Its id depends on the application, the kind, Kombo's `changed_at`
    /// and the values reported, never on when it was detected.
    pub fn for_application(
        state: &TrackedApplication,
        kind: EventKind,
        occurred_at: DateTime<Utc>,
        detected_at: DateTime<Utc>,
    ) -> Self {
        let id = EventId::derive(&[
            "v1",
            state.integration_id.as_str(),
            state.id.as_str(),
            kind.name(),
            &timestamp(occurred_at),
            &kind.identity(),
        ]);
        Self {
            id,
            occurred_at,
            detected_at,
            integration: Some(IntegrationRef::from_id(&state.integration_id)),
            application: Some(ApplicationRef::of(state)),
            job: state.job_id.as_ref().map(|id| JobRef {
                id: id.clone(),
                name: state.job_name.clone(),
            }),
            origin: None,
            kind,
        }
    }

    /// An integration-level event. `discriminator` tells two events of the same kind apart
    /// (a failure streak's start, a pass's start), and makes a retried write land on the same id.
    pub fn for_integration(
        integration: &IntegrationId,
        kind: EventKind,
        discriminator: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let id = EventId::derive(&["v1", integration.as_str(), kind.name(), discriminator]);
        Self {
            id,
            occurred_at: at,
            detected_at: at,
            integration: Some(IntegrationRef::from_id(integration)),
            application: None,
            job: None,
            origin: None,
            kind,
        }
    }

    /// `endpoint.disabled`: about stagewatch itself, so it has no integration.
    pub fn endpoint_disabled(detail: EndpointDisabled, at: DateTime<Utc>) -> Self {
        let id = EventId::derive(&["v1", EVENT_TYPES[15], &detail.endpoint_id, &timestamp(at)]);
        Self {
            id,
            occurred_at: at,
            detected_at: at,
            integration: None,
            application: None,
            job: None,
            origin: None,
            kind: EventKind::EndpointDisabled(detail),
        }
    }

    /// The event's `type`.
    pub fn type_name(&self) -> &'static str {
        self.kind.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_depend_on_every_part() {
        let a = EventId::derive(&["a", "b"]);
        assert_eq!(a, EventId::derive(&["a", "b"]));
        assert_ne!(a, EventId::derive(&["a", "c"]));
        // The separator keeps ("ab","") apart from ("a","b").
        assert_ne!(EventId::derive(&["ab", ""]), a);
        assert!(a.as_str().starts_with("evt_"));
        assert_eq!(a.as_str().len(), 4 + 32);
    }

    #[test]
    fn names_match_serialized_type() {
        let event = ChangeEvent::for_integration(
            &IntegrationId::parse("greenhouse:abc").unwrap(),
            EventKind::StatusChanged(StatusChange {
                from: None,
                to: IntegrationStatus::Active,
            }),
            "x",
            DateTime::UNIX_EPOCH,
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "integration.status_changed");
        assert_eq!(json["data"]["to"], "ACTIVE");
        assert_eq!(json["integration"]["tool"], "greenhouse");
        let back: ChangeEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn every_type_is_listed_once() {
        let mut sorted = EVENT_TYPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), EVENT_TYPES.len());
    }
}
