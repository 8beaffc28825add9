//! Applications: what Kombo says now ([`ApplicationSnapshot`]) and what stagewatch holds
//! ([`TrackedApplication`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ApplicationId, CandidateId, IntegrationId, JobId, RemoteId, StageId};
use crate::outcome::Outcome;
use crate::stage::{Stage, StageRef};

/// One application as Kombo returned it in a page of `GET /ats/applications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSnapshot {
    pub integration_id: IntegrationId,
    pub id: ApplicationId,
    pub remote_id: Option<RemoteId>,
    pub job_id: Option<JobId>,
    /// The job's name from Kombo's expanded `job`, when sent.
    pub job_name: Option<String>,
    pub candidate_id: Option<CandidateId>,
    /// "First Last" from Kombo's expanded `candidate`, when sent.
    pub candidate_name: Option<String>,
    pub current_stage_id: Option<StageId>,
    /// Kombo's expansion of `current_stage_id`; fresher than a stored pipeline for the name and
    /// index of that one stage.
    pub current_stage: Option<Stage>,
    pub outcome: Option<Outcome>,
    pub rejection_reason_name: Option<String>,
    pub rejected_at: Option<DateTime<Utc>>,
    /// When Kombo last saw the application's own fields change. Always set.
    pub changed_at: DateTime<Utc>,
    pub remote_deleted_at: Option<DateTime<Utc>>,
    pub remote_created_at: Option<DateTime<Utc>>,
    pub remote_updated_at: Option<DateTime<Utc>>,
}

/// How stagewatch came to track an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Created through stagewatch (Kombo's create-application endpoint).
    CreatedHere,
    /// First seen in a sync: imported into tracking, or synced because the customer tracks all.
    Discovered,
}

impl Origin {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedHere => "created_here",
            Self::Discovered => "discovered",
        }
    }
}

/// What stagewatch holds about one application: the last known values, and when they were
/// learnt.
///
/// `current_stage` and `outcome` keep the last *known* value. When Kombo later sends `null` for
/// one of them, the value is kept and `*_unknown_since` is set instead (rule 5 of the change
/// rules): the ATS stopped telling, which is not a move to "nothing".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedApplication {
    pub integration_id: IntegrationId,
    pub id: ApplicationId,
    pub remote_id: Option<RemoteId>,
    pub job_id: Option<JobId>,
    pub job_name: Option<String>,
    pub candidate_id: Option<CandidateId>,
    pub candidate_name: Option<String>,
    pub current_stage: Option<StageRef>,
    pub stage_unknown_since: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub outcome_unknown_since: Option<DateTime<Utc>>,
    pub rejection_reason_name: Option<String>,
    pub rejected_at: Option<DateTime<Utc>>,
    /// The `changed_at` of the newest snapshot applied; older snapshots are stale.
    pub changed_at: DateTime<Utc>,
    /// Kombo's `remote_deleted_at` while the application is deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    pub remote_created_at: Option<DateTime<Utc>>,
    pub origin: Origin,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When the application entered `current_stage`; `None` when that happened before tracking
    /// began (a discovered application) and so is not known.
    pub entered_current_stage_at: Option<DateTime<Utc>>,
}

impl TrackedApplication {
    /// Whether Kombo currently reports the application deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}
