//! Conversions between domain values and rows. Ids are stored as their strings; structured
//! values without a query on their insides (capabilities, failure reports, event payloads) as
//! JSON text, which reads the same on both backends.

use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use domain::{
    ApplicationId, CandidateId, IntegrationId, JobId, Origin, Outcome, RemoteId, StageId, StageRef,
    TrackedApplication,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::entity::application;
use crate::error::corrupt;

/// Parses a stored id.
pub(crate) fn id<T>(value: String) -> Result<T, StoreError>
where
    T: TryFrom<String, Error = domain::IdError>,
{
    T::try_from(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

pub(crate) fn opt_id<T>(value: Option<String>) -> Result<Option<T>, StoreError>
where
    T: TryFrom<String, Error = domain::IdError>,
{
    value.map(id).transpose()
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain values serialize to JSON")
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| corrupt(what, &error))
}

pub(crate) fn opt_from_json<T: DeserializeOwned>(
    what: &str,
    text: Option<&str>,
) -> Result<Option<T>, StoreError> {
    text.map(|text| from_json(what, text)).transpose()
}

/// An enum stored as its JSON string (`"ACTIVE"`), without the quotes.
pub(crate) fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value).expect("domain values serialize to JSON") {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

pub(crate) fn enum_from_text<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|error| corrupt(what, &error))
}

fn origin_from_text(text: &str) -> Result<Origin, StoreError> {
    match text {
        "created_here" => Ok(Origin::CreatedHere),
        "discovered" => Ok(Origin::Discovered),
        other => Err(StoreError::Corrupt(format!("unknown origin {other:?}"))),
    }
}

pub(crate) fn application_row(state: &TrackedApplication) -> application::Model {
    let stage = state.current_stage.as_ref();
    application::Model {
        integration_id: state.integration_id.as_str().to_owned(),
        application_id: state.id.as_str().to_owned(),
        remote_id: state.remote_id.as_ref().map(|v| v.as_str().to_owned()),
        job_id: state.job_id.as_ref().map(|v| v.as_str().to_owned()),
        job_name: state.job_name.clone(),
        candidate_id: state.candidate_id.as_ref().map(|v| v.as_str().to_owned()),
        candidate_name: state.candidate_name.clone(),
        current_stage_id: stage.map(|s| s.stage_id.as_str().to_owned()),
        current_stage_name: stage.and_then(|s| s.name.clone()),
        current_stage_index: stage.and_then(|s| s.index),
        stage_unknown_since: state.stage_unknown_since,
        outcome: state.outcome.as_ref().map(|o| o.as_str().to_owned()),
        outcome_unknown_since: state.outcome_unknown_since,
        rejection_reason_name: state.rejection_reason_name.clone(),
        rejected_at: state.rejected_at,
        changed_at: state.changed_at,
        deleted_at: state.deleted_at,
        remote_created_at: state.remote_created_at,
        origin: state.origin.as_str().to_owned(),
        first_seen_at: state.first_seen_at,
        last_seen_at: state.last_seen_at,
        entered_current_stage_at: state.entered_current_stage_at,
    }
}

pub(crate) fn application_from_row(
    row: application::Model,
) -> Result<TrackedApplication, StoreError> {
    let current_stage = match row.current_stage_id {
        Some(stage_id) => Some(StageRef {
            stage_id: id::<StageId>(stage_id)?,
            name: row.current_stage_name,
            index: row.current_stage_index,
        }),
        None => None,
    };
    Ok(TrackedApplication {
        integration_id: id::<IntegrationId>(row.integration_id)?,
        id: id::<ApplicationId>(row.application_id)?,
        remote_id: opt_id::<RemoteId>(row.remote_id)?,
        job_id: opt_id::<JobId>(row.job_id)?,
        job_name: row.job_name,
        candidate_id: opt_id::<CandidateId>(row.candidate_id)?,
        candidate_name: row.candidate_name,
        current_stage,
        stage_unknown_since: row.stage_unknown_since,
        outcome: row.outcome.map(Outcome::from),
        outcome_unknown_since: row.outcome_unknown_since,
        rejection_reason_name: row.rejection_reason_name,
        rejected_at: row.rejected_at,
        changed_at: row.changed_at,
        deleted_at: row.deleted_at,
        remote_created_at: row.remote_created_at,
        origin: origin_from_text(&row.origin)?,
        first_seen_at: row.first_seen_at,
        last_seen_at: row.last_seen_at,
        entered_current_stage_at: row.entered_current_stage_at,
    })
}

/// `now + duration`, saturating instead of overflowing on absurd durations.
pub(crate) fn after(now: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod stored_json {
    //! Some columns hold domain values as JSON in their serde shape. Renaming a field in the
    //! domain would change what is written and make stored rows unreadable; these tests pin
    //! each shape, so such a rename fails here and comes with a migration.

    use std::collections::BTreeSet;

    use chrono::{TimeZone, Utc};
    use domain::integration::TrackedField;
    use domain::{
        ApplicationId, Capabilities, IntegrationId, Origin, Outcome, StageId, StageRef, Support,
        TrackedApplication,
    };
    use serde_json::json;

    #[test]
    fn a_held_application_is_stored_in_a_pinned_shape() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let application = TrackedApplication {
            integration_id: IntegrationId::parse("greenhouse:acme").unwrap(),
            id: ApplicationId::parse("app-1").unwrap(),
            remote_id: None,
            job_id: None,
            job_name: None,
            candidate_id: None,
            candidate_name: Some("Jane Doe".into()),
            current_stage: Some(StageRef {
                stage_id: StageId::parse("st-1").unwrap(),
                name: Some("Applied".into()),
                index: Some(0),
            }),
            stage_unknown_since: None,
            outcome: Some(Outcome::Pending),
            outcome_unknown_since: None,
            rejection_reason_name: None,
            rejected_at: None,
            changed_at: at,
            deleted_at: Some(at),
            remote_created_at: None,
            origin: Origin::Discovered,
            first_seen_at: at,
            last_seen_at: at,
            entered_current_stage_at: None,
        };
        let stamp = "2026-12-01T09:00:00Z";
        assert_eq!(
            serde_json::to_value(&application).unwrap(),
            json!({
                "integration_id": "greenhouse:acme", "id": "app-1", "remote_id": null,
                "job_id": null, "job_name": null, "candidate_id": null,
                "candidate_name": "Jane Doe",
                "current_stage": { "stage_id": "st-1", "name": "Applied", "index": 0 },
                "stage_unknown_since": null, "outcome": "PENDING", "outcome_unknown_since": null,
                "rejection_reason_name": null, "rejected_at": null, "changed_at": stamp,
                "deleted_at": stamp, "remote_created_at": null, "origin": "discovered",
                "first_seen_at": stamp, "last_seen_at": stamp, "entered_current_stage_at": null,
            })
        );
    }

    #[test]
    fn capabilities_are_stored_in_a_pinned_shape() {
        let capabilities = Capabilities {
            applications: Support::Supported,
            outcome: Support::Unsupported,
            current_stage: Support::Supported,
            observed_gaps: BTreeSet::from([TrackedField::CurrentStage]),
        };
        assert_eq!(
            serde_json::to_value(&capabilities).unwrap(),
            json!({
                "applications": "SUPPORTED", "outcome": "UNSUPPORTED",
                "current_stage": "SUPPORTED", "observed_gaps": ["current_stage"],
            })
        );
    }
}
