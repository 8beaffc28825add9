//! Compares two snapshots of one application, as every sync pass does, and prints the change
//! events: pure, no runtime, no database, no Kombo.
//!
//! `cargo run -p domain --example detect_changes`
#![allow(clippy::print_stdout)] // an example talks to a terminal

use chrono::{TimeZone, Utc};
use domain::stage::StageStatus;
use domain::{
    ApplicationId, ApplicationSnapshot, DetectContext, IntegrationId, JobId, Outcome, Pipeline,
    Stage, StageId, detect,
};

fn stage(id: &str, name: &str, index: i32) -> Stage {
    Stage {
        id: StageId::parse(id).unwrap(),
        remote_id: None,
        name: Some(name.to_owned()),
        index: Some(index),
        status: Some(StageStatus::Active),
    }
}

fn main() {
    // The job's pipeline, as `GET /ats/jobs` lists it.
    let pipeline = Pipeline {
        job_id: JobId::parse("job-backend").unwrap(),
        job_remote_id: None,
        job_name: Some("Backend Engineer".to_owned()),
        stages: vec![
            stage("st-applied", "Applied", 0),
            stage("st-screen", "Phone screen", 1),
            stage("st-onsite", "Onsite", 2),
            stage("st-offer", "Offer", 3),
        ],
    };
    // What Kombo said on Monday...
    let monday = ApplicationSnapshot {
        integration_id: IntegrationId::parse("greenhouse:acme").unwrap(),
        id: ApplicationId::parse("app-1").unwrap(),
        remote_id: None,
        job_id: Some(pipeline.job_id.clone()),
        job_name: pipeline.job_name.clone(),
        candidate_id: None,
        candidate_name: Some("Jane Doe".to_owned()),
        current_stage_id: Some(StageId::parse("st-applied").unwrap()),
        current_stage: None,
        outcome: Some(Outcome::Pending),
        rejection_reason_name: None,
        rejected_at: None,
        changed_at: Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap(),
        remote_deleted_at: None,
        remote_created_at: None,
        remote_updated_at: None,
    };
    // ...and on Thursday: two stages further, then declined.
    let thursday = ApplicationSnapshot {
        current_stage_id: Some(StageId::parse("st-onsite").unwrap()),
        outcome: Some(Outcome::Declined),
        rejection_reason_name: Some("Position filled".to_owned()),
        changed_at: Utc.with_ymd_and_hms(2026, 12, 3, 16, 30, 0).unwrap(),
        ..monday.clone()
    };

    let first = detect(
        None,
        &monday,
        Some(&pipeline),
        &DetectContext::sync(monday.changed_at),
    );
    let then = detect(
        Some(&first.next_state),
        &thursday,
        Some(&pipeline),
        &DetectContext::sync(thursday.changed_at),
    );
    for event in first.events.iter().chain(&then.events) {
        println!("{}", serde_json::to_string_pretty(event).unwrap());
    }
}
