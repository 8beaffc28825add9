//! The ground truth: every change the sandbox made, in order, to compare a consumer's view with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One change made to an integration's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthEntry {
    /// The integration's id.
    pub integration: String,
    /// The application's Kombo id; empty for changes to a job's pipeline.
    pub application_id: String,
    /// The job the application belongs to after the change (or whose pipeline changed).
    pub job_id: String,
    /// When the change was made; the application's `changed_at`/`updated_at` equal it.
    pub at: DateTime<Utc>,
    /// What changed.
    pub change: TruthChange,
}

/// What a `TruthEntry` changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TruthChange {
    /// A new tracked application, in `stage_id`.
    Created { stage_id: String },
    /// An existing ATS application was imported into tracking and is served from now on.
    Tracked,
    /// The application moved from one stage to another of the same job.
    StageMoved { from: String, to: String },
    /// The outcome became `HIRED`.
    Hired,
    /// The outcome became `DECLINED` (rejected, or withdrawn by the candidate).
    Declined { reason: Option<String> },
    /// A declined or hired application went back to `PENDING`.
    Reopened,
    /// The application moved to another job, landing in `stage_id` of that job.
    JobChanged {
        from_job: String,
        to_job: String,
        stage_id: String,
    },
    /// The application was deleted in the ATS (`remote_deleted_at` set).
    Deleted,
    /// A deleted application came back.
    Restored,
    /// A stage of `job_id` was renamed. Not a transition of any application.
    StageRenamed {
        stage_id: String,
        from: String,
        to: String,
    },
    /// The stages of `job_id` were re-ordered. Not a transition of any application.
    StagesReordered { stage_ids: Vec<String> },
    /// The application's candidate was edited. Not a transition.
    CandidateEdited,
    /// An interview was added to the application. Not a transition.
    InterviewAdded,
}

impl TruthChange {
    /// Whether a change-detecting consumer should report this as an event of the application:
    /// its stage, job, outcome or existence changed.
    pub fn is_transition(&self) -> bool {
        !matches!(
            self,
            TruthChange::StageRenamed { .. }
                | TruthChange::StagesReordered { .. }
                | TruthChange::CandidateEdited
                | TruthChange::InterviewAdded
        )
    }

    /// The Kombo models a `data-changed` webhook names for this change.
    pub(crate) fn changed_models(&self) -> &'static [&'static str] {
        match self {
            TruthChange::Created { .. } => &["ats_applications", "ats_candidates"],
            TruthChange::StageRenamed { .. } | TruthChange::StagesReordered { .. } => {
                &["ats_application_stages", "ats_join_jobs_application_stages"]
            }
            TruthChange::CandidateEdited => &["ats_candidates"],
            TruthChange::InterviewAdded => &["ats_interviews"],
            _ => &["ats_applications"],
        }
    }
}
