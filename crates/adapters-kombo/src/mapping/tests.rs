#![allow(clippy::needless_pass_by_value)] // json! values read best passed inline

use chrono::{TimeZone, Utc};
use domain::{Outcome, StageStatus, Support};
use serde_json::{Value, json};

use super::*;

fn integration_id() -> IntegrationId {
    IntegrationId::parse("greenhouse:8Aq").unwrap()
}

/// An application as Kombo sends it, every field set.
fn full_application() -> Value {
    json!({
        "id": "app-1",
        "remote_id": "r-app-1",
        "outcome": "PENDING",
        "rejection_reason_name": null,
        "rejected_at": null,
        "current_stage_id": "stage-2",
        "job_id": "job-1",
        "candidate_id": "cand-1",
        "custom_fields": {"x": 1},
        "remote_url": "https://ats.example/app-1",
        "changed_at": "2026-11-28T10:00:00.000Z",
        "remote_deleted_at": null,
        "remote_created_at": "2026-11-01T09:00:00Z",
        "remote_updated_at": "2026-11-28T09:59:00+01:00",
        "candidate": {"id": "cand-1", "remote_id": "rc", "first_name": "Ada", "last_name": "Lovelace",
                      "source": null, "remote_url": null, "tags": []},
        "current_stage": {"id": "stage-2", "remote_id": "rs2", "name": "Interview", "status": "ACTIVE",
                          "custom_fields": null, "index": 2},
        "job": {"id": "job-1", "remote_id": "rj", "name": "Backend Engineer"},
        "interviews": [],
        "offers": [],
        "a_field_kombo_added_later": {"nested": true}
    })
}

fn map(value: Value) -> Result<ApplicationSnapshot, MappingError> {
    application(&integration_id(), serde_json::from_value(value).unwrap())
}

fn with(mut value: Value, field: &str, replacement: Value) -> Value {
    value[field] = replacement;
    value
}

#[test]
fn a_full_application_maps_field_by_field() {
    let snapshot = map(full_application()).unwrap();
    assert_eq!(snapshot.integration_id, integration_id());
    assert_eq!(snapshot.id.as_str(), "app-1");
    assert_eq!(snapshot.remote_id.unwrap().as_str(), "r-app-1");
    assert_eq!(snapshot.job_id.unwrap().as_str(), "job-1");
    assert_eq!(snapshot.job_name.as_deref(), Some("Backend Engineer"));
    assert_eq!(snapshot.candidate_id.unwrap().as_str(), "cand-1");
    assert_eq!(snapshot.candidate_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(snapshot.current_stage_id.unwrap().as_str(), "stage-2");
    let stage = snapshot.current_stage.unwrap();
    assert_eq!(stage.id.as_str(), "stage-2");
    assert_eq!(stage.remote_id.unwrap().as_str(), "rs2");
    assert_eq!(stage.name.as_deref(), Some("Interview"));
    assert_eq!(stage.index, Some(2));
    assert_eq!(stage.status, Some(StageStatus::Active));
    assert_eq!(snapshot.outcome, Some(Outcome::Pending));
    assert_eq!(
        snapshot.changed_at,
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
    );
    assert_eq!(
        snapshot.remote_created_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap())
    );
    // An offset is converted to UTC.
    assert_eq!(
        snapshot.remote_updated_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 28, 8, 59, 0).unwrap())
    );
    assert_eq!(snapshot.remote_deleted_at, None);
}

#[test]
fn each_outcome_maps_and_an_unknown_one_is_kept() {
    for (wire, expected) in [
        (json!("PENDING"), Some(Outcome::Pending)),
        (json!("HIRED"), Some(Outcome::Hired)),
        (json!("DECLINED"), Some(Outcome::Declined)),
        (
            json!("ON_HOLD"),
            Some(Outcome::Unrecognized("ON_HOLD".into())),
        ),
        (Value::Null, None),
    ] {
        let snapshot = map(with(full_application(), "outcome", wire.clone())).unwrap();
        assert_eq!(snapshot.outcome, expected, "outcome {wire}");
    }
}

#[test]
fn an_application_without_stage_job_or_candidate_maps_to_nones() {
    let mut value = full_application();
    for field in [
        "current_stage",
        "current_stage_id",
        "job",
        "job_id",
        "candidate",
        "candidate_id",
        "remote_id",
    ] {
        value[field] = Value::Null;
    }
    let snapshot = map(value).unwrap();
    assert_eq!(snapshot.current_stage, None);
    assert_eq!(snapshot.current_stage_id, None);
    assert_eq!(snapshot.job_id, None);
    assert_eq!(snapshot.job_name, None);
    assert_eq!(snapshot.candidate_id, None);
    assert_eq!(snapshot.candidate_name, None);
    assert_eq!(snapshot.remote_id, None);
}

#[test]
fn absent_optional_fields_read_as_null() {
    let snapshot = map(json!({"id": "app-1", "changed_at": "2026-11-28T10:00:00Z"})).unwrap();
    assert_eq!(snapshot.outcome, None);
    assert_eq!(snapshot.current_stage, None);
    assert_eq!(snapshot.rejected_at, None);
}

#[test]
fn a_stage_without_index_name_or_status_keeps_them_unknown() {
    let stage =
        json!({"id": "s", "remote_id": null, "name": null, "status": null, "custom_fields": null});
    let snapshot = map(with(full_application(), "current_stage", stage)).unwrap();
    let stage = snapshot.current_stage.unwrap();
    assert_eq!(
        (stage.index, stage.name, stage.status, stage.remote_id),
        (None, None, None, None)
    );
}

#[test]
fn an_unknown_stage_status_is_not_guessed() {
    let stage =
        json!({"id": "s", "remote_id": null, "name": "x", "status": "ARCHIVED", "index": 1});
    let snapshot = map(with(full_application(), "current_stage", stage)).unwrap();
    assert_eq!(snapshot.current_stage.unwrap().status, None);
}

#[test]
fn a_declined_application_keeps_reason_and_time() {
    let mut value = full_application();
    value["outcome"] = json!("DECLINED");
    value["rejection_reason_name"] = json!("Withdrew");
    value["rejected_at"] = json!("2026-11-20T12:00:00Z");
    let snapshot = map(value).unwrap();
    assert_eq!(snapshot.rejection_reason_name.as_deref(), Some("Withdrew"));
    assert_eq!(
        snapshot.rejected_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap())
    );
}

#[test]
fn candidate_name_uses_whichever_part_is_known() {
    for (first, last, expected) in [
        (json!("Ada"), Value::Null, Some("Ada")),
        (Value::Null, json!("Lovelace"), Some("Lovelace")),
        (json!(" "), Value::Null, None),
        (Value::Null, Value::Null, None),
    ] {
        let candidate =
            json!({"id": "c", "remote_id": "rc", "first_name": first, "last_name": last});
        let snapshot = map(with(full_application(), "candidate", candidate)).unwrap();
        assert_eq!(snapshot.candidate_name.as_deref(), expected);
    }
}

#[test]
fn a_blank_id_or_an_oversized_index_refuses_the_record() {
    assert!(matches!(
        map(with(full_application(), "id", json!(""))),
        Err(MappingError::Id { field: "id", .. })
    ));
    assert!(matches!(
        map(with(full_application(), "job_id", json!("has space"))),
        Err(MappingError::Id {
            field: "job_id",
            ..
        })
    ));
    let stage =
        json!({"id": "s", "remote_id": null, "name": null, "status": null, "index": 1_i64 << 40});
    assert!(matches!(
        map(with(full_application(), "current_stage", stage)),
        Err(MappingError::OutOfRange { field: "index", .. })
    ));
}

#[test]
fn a_job_maps_to_its_pipeline_with_every_stage() {
    let job: jobs::Job = serde_json::from_value(json!({
        "id": "job-1", "remote_id": "rj", "name": "Backend Engineer", "status": "PAUSED",
        "changed_at": "2026-11-28T10:00:00Z", "remote_deleted_at": null,
        "stages": [
            {"id": "s0", "remote_id": "r0", "name": "Applied", "status": "ACTIVE", "index": 0, "custom_fields": {}},
            {"id": "s1", "remote_id": null, "name": null, "status": "INACTIVE", "custom_fields": null},
            {"id": "s2", "remote_id": null, "name": "Offer", "status": null, "index": null}
        ]
    }))
    .unwrap();
    let pipeline = pipeline(job).unwrap();
    assert_eq!(pipeline.job_id.as_str(), "job-1");
    assert_eq!(pipeline.job_remote_id.unwrap().as_str(), "rj");
    assert_eq!(pipeline.job_name.as_deref(), Some("Backend Engineer"));
    let stages: Vec<_> = pipeline
        .stages
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_deref(), s.index, s.status))
        .collect();
    assert_eq!(
        stages,
        [
            ("s0", Some("Applied"), Some(0), Some(StageStatus::Active)),
            ("s1", None, None, Some(StageStatus::Inactive)),
            ("s2", Some("Offer"), None, None),
        ]
    );
}

fn integration_json(read_models: Value) -> integration::Integration {
    serde_json::from_value(json!({
        "id": "greenhouse:8Aq",
        "tool": {"id": "greenhouse", "label": "Greenhouse", "internal_label": null,
                 "logo_url": "", "icon_url": ""},
        "category": "ATS",
        "status": "ACTIVE",
        "setup_status": "COMPLETED",
        "data_expired_at": null,
        "read_models": read_models,
        "write_actions": []
    }))
    .unwrap()
}

fn model(coverage: &str, available: bool, fields: Value) -> Value {
    json!({"id": "ats_applications", "label": "Applications", "is_available": available,
           "coverage_status": coverage, "scope_config_setting": "ENABLED",
           "opted_out_by_customer": false, "fields": fields})
}

fn field(id: &str, coverage: &str, available: bool) -> Value {
    json!({"id": id, "is_available": available, "coverage_status": coverage,
           "scope_config_setting": "ENABLED", "opted_out_by_customer": false})
}

#[test]
fn integration_coverage_becomes_capabilities() {
    let info = integration_info(integration_json(json!([model(
        "SUPPORTED",
        true,
        json!([
            field("outcome", "UNSUPPORTED", true),
            field("current_stage_id", "SUPPORTED", true)
        ])
    )])))
    .unwrap();
    assert_eq!(info.id.as_str(), "greenhouse:8Aq");
    assert_eq!(info.tool.as_deref(), Some("greenhouse"));
    assert_eq!(info.status, IntegrationStatus::Active);
    assert_eq!(info.setup_status, Some(SetupStatus::Completed));
    assert_eq!(info.capabilities.applications, Support::Supported);
    assert_eq!(info.capabilities.outcome, Support::Unsupported);
    assert_eq!(info.capabilities.current_stage, Support::Supported);
}

#[test]
fn coverage_rows() {
    for (coverage, available, expected) in [
        ("SUPPORTED", true, Support::Supported),
        ("UNSUPPORTED", true, Support::Unsupported),
        ("NOT_IMPLEMENTED", true, Support::NotImplemented),
        ("UNKNOWN", true, Support::Unknown),
        ("SOMETHING_NEW", true, Support::Unknown),
        ("SUPPORTED", false, Support::Unsupported),
    ] {
        let info = integration_info(integration_json(json!([model(
            "SUPPORTED",
            true,
            json!([field("outcome", coverage, available)])
        )])))
        .unwrap();
        assert_eq!(
            info.capabilities.outcome, expected,
            "{coverage} {available}"
        );
        // A field Kombo does not list is unknown.
        assert_eq!(info.capabilities.current_stage, Support::Unknown);
    }
}

#[test]
fn an_unavailable_applications_model_makes_its_fields_unavailable() {
    let info = integration_info(integration_json(json!([model(
        "NOT_IMPLEMENTED",
        true,
        json!([field("outcome", "SUPPORTED", true)])
    )])))
    .unwrap();
    assert_eq!(info.capabilities.applications, Support::NotImplemented);
    assert_eq!(info.capabilities.outcome, Support::NotImplemented);
}

#[test]
fn an_integration_without_the_applications_model_is_unknown() {
    let info = integration_info(integration_json(json!([]))).unwrap();
    assert_eq!(info.capabilities, Capabilities::unknown());
}

#[test]
fn unknown_integration_states_do_not_fail() {
    let mut wire = integration_json(json!([]));
    wire.status = integration::IntegrationStatus::from("PAUSED".to_owned());
    wire.setup_status = integration::SetupStatus::from("MIGRATING".to_owned());
    let info = integration_info(wire).unwrap();
    assert_eq!(info.status, IntegrationStatus::Unknown);
    assert_eq!(info.setup_status, Some(SetupStatus::Unknown));
}

#[test]
fn an_import_answer_maps_with_or_without_tracking_time() {
    let wire: writes::ImportedApplication =
        serde_json::from_value(json!({"id": "app-9", "tracked_at": null, "imported_id": {}}))
            .unwrap();
    let imported = imported(wire).unwrap();
    assert_eq!(imported.id.as_str(), "app-9");
    assert_eq!(imported.tracked_at, None);
}
