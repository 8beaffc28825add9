//! Small, readable fixtures for tests of the domain and of the adapters that implement its ports.
//! Compiled for this crate's tests and with the `mocks` feature.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::application::ApplicationSnapshot;
use crate::ids::{ApplicationId, CandidateId, IntegrationId, JobId, StageId};
use crate::integration::{Capabilities, IntegrationInfo, IntegrationStatus, Support};
use crate::outcome::Outcome;
use crate::stage::{Pipeline, Stage, StageStatus};

/// Capabilities of an ATS that reads applications, outcomes and stages, with no gap seen.
pub fn fully_supported() -> Capabilities {
    Capabilities {
        applications: Support::Supported,
        outcome: Support::Supported,
        current_stage: Support::Supported,
        observed_gaps: std::collections::BTreeSet::new(),
    }
}

/// Kombo's description of the fixture integration: an active Greenhouse connection with
/// `capabilities`.
pub fn integration_info(capabilities: Capabilities) -> IntegrationInfo {
    IntegrationInfo {
        id: integration(),
        tool: Some("greenhouse".into()),
        status: IntegrationStatus::Active,
        setup_status: None,
        data_expired_at: None,
        capabilities,
    }
}

/// `2026-11-28T10:00:00Z` plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// The integration every fixture belongs to.
pub fn integration() -> IntegrationId {
    IntegrationId::parse("greenhouse:acme").unwrap()
}

/// A job id.
pub fn job(id: &str) -> JobId {
    JobId::parse(id).unwrap()
}

/// A stage id.
pub fn stage_id(id: &str) -> StageId {
    StageId::parse(id).unwrap()
}

/// A stage of [`pipeline`] with a name made from its id.
pub fn stage(id: &str, index: Option<i32>) -> Stage {
    Stage {
        id: stage_id(id),
        remote_id: None,
        name: Some(title(id)),
        index,
        status: Some(StageStatus::Active),
    }
}

/// `"phone_screen"` → `"Phone screen"`.
pub fn title(id: &str) -> String {
    let words = id.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The pipeline of job `backend`: `applied` (0) → `phone_screen` (1) → `take_home` (2) →
/// `onsite` (3) → `offer` (4), with an inactive `archived` (5).
pub fn pipeline() -> Pipeline {
    let mut archived = stage("archived", Some(5));
    archived.status = Some(StageStatus::Inactive);
    Pipeline {
        job_id: job("backend"),
        job_remote_id: None,
        job_name: Some("Backend Engineer".into()),
        stages: vec![
            stage("applied", Some(0)),
            stage("phone_screen", Some(1)),
            stage("take_home", Some(2)),
            stage("onsite", Some(3)),
            stage("offer", Some(4)),
            archived,
        ],
    }
}

/// Application `app` of job `backend` in `stage`, pending, last changed at minute `minute`.
pub fn snapshot(app: &str, stage: &str, minute: i64) -> ApplicationSnapshot {
    let current = pipeline().stage(&stage_id(stage)).cloned();
    ApplicationSnapshot {
        integration_id: integration(),
        id: ApplicationId::parse(app).unwrap(),
        remote_id: None,
        job_id: Some(job("backend")),
        job_name: Some("Backend Engineer".into()),
        candidate_id: Some(CandidateId::parse(format!("cand-{app}")).unwrap()),
        candidate_name: Some("Jane Doe".into()),
        current_stage_id: Some(stage_id(stage)),
        current_stage: current,
        outcome: Some(Outcome::Pending),
        rejection_reason_name: None,
        rejected_at: None,
        changed_at: at(minute),
        remote_deleted_at: None,
        remote_created_at: Some(at(0)),
        remote_updated_at: None,
    }
}
