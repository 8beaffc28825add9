//! Kombo's wire objects, rendered from the simulated data (field sets per the JSON Schemas in
//! `kombo-schemas`).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::config::AtsProfile;
use crate::model::{Application, Integration, Job, Outcome, Stage};
use crate::remote_data;

/// Kombo nulls every field of a deleted record this long after `remote_deleted_at`.
const DELETED_RETENTION_DAYS: i64 = 14;

/// Kombo's timestamp format: UTC, milliseconds, `Z`.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn optional_timestamp(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| Value::String(timestamp(at)))
}

fn stage_on_job(integration: &Integration, job: &Job, stage: &Stage) -> Value {
    let mut value = json!({
        "id": stage.id,
        "remote_id": stage.remote_id,
        "name": stage.name,
        "status": if stage.active { "ACTIVE" } else { "INACTIVE" },
        "custom_fields": {},
        "remote_data": remote_data::stage(integration, job, stage),
    });
    if integration.profile != AtsProfile::StagesWithoutIndex {
        value["index"] = json!(stage.index);
    }
    value
}

/// One application as `GET /ats/applications` serves it.
pub(crate) fn application(
    integration: &Integration,
    application: &Application,
    now: DateTime<Utc>,
) -> Value {
    if let Some(deleted_at) = application.deleted_at
        && now - deleted_at > TimeDelta::days(DELETED_RETENTION_DAYS)
    {
        return expired_application(application, deleted_at);
    }
    let job = &integration.jobs[application.job];
    let stage = job.stage(&application.stage_id);
    let outcome = match integration.profile {
        AtsProfile::OutcomeUnsupported => Value::Null,
        _ => Value::String(application.outcome.as_str().to_owned()),
    };
    let current_stage = stage.map_or(Value::Null, |stage| {
        json!({
            "id": stage.id,
            "remote_id": stage.remote_id,
            "name": stage.name,
            "status": if stage.active { "ACTIVE" } else { "INACTIVE" },
            "custom_fields": {},
            "index": if integration.profile == AtsProfile::StagesWithoutIndex { Value::Null } else { json!(stage.index) },
        })
    });
    let candidate = &application.candidate;
    json!({
        "id": application.id,
        "remote_id": application.remote_id,
        "outcome": outcome,
        "rejection_reason_name": application.rejection_reason,
        "rejected_at": optional_timestamp(application.rejected_at),
        "current_stage_id": application.stage_id,
        "job_id": job.id,
        "candidate_id": candidate.id,
        "custom_fields": {},
        "integration_fields": [],
        "remote_data": remote_data::application(integration, application),
        "remote_url": format!("https://{}.example.com/applications/{}", integration.tool, application.remote_id),
        "changed_at": timestamp(application.changed_at),
        "remote_deleted_at": optional_timestamp(application.deleted_at),
        "remote_created_at": timestamp(application.created_at),
        "remote_updated_at": timestamp(application.updated_at),
        "candidate": {
            "id": candidate.id,
            "remote_id": candidate.remote_id,
            "first_name": candidate.first_name,
            "last_name": candidate.last_name,
            "source": candidate.source,
            "remote_url": format!("https://{}.example.com/candidates/{}", integration.tool, candidate.remote_id),
            "email_addresses": [{"email_address": candidate.email, "type": "PERSONAL"}],
            "phone_numbers": candidate.phone.as_ref().map_or_else(Vec::new, |phone| vec![json!({"phone_number": phone, "type": "MOBILE"})]),
            "social_media": [],
            "tags": [],
        },
        "current_stage": current_stage,
        "job": {"id": job.id, "remote_id": job.remote_id, "name": job.name},
        "interviews": application.interviews.iter().map(|interview| json!({
            "id": interview.id,
            "remote_id": interview.remote_id,
            "title": interview.title,
            "starting_at": timestamp(interview.starting_at),
            "ending_at": timestamp(interview.starting_at + TimeDelta::hours(1)),
            "canceled": false,
        })).collect::<Vec<_>>(),
        "offers": if application.outcome == Outcome::Hired { vec![json!({"id": format!("{}-offer", application.id), "remote_id": null, "status": "ACCEPTED"})] } else { Vec::new() },
        "screening_question_answers": [],
    })
}

/// The application `POST /ats/jobs/{job_id}/applications` answers with: the read shape, with
/// the candidate expanded further (company, title, timestamps, ...).
pub(crate) fn created_application(
    integration: &Integration,
    application: &Application,
    now: DateTime<Utc>,
) -> Value {
    let mut value = self::application(integration, application, now);
    let created = timestamp(application.created_at);
    if let Some(candidate) = value.get_mut("candidate").and_then(Value::as_object_mut) {
        candidate.insert("company".to_owned(), Value::Null);
        candidate.insert("title".to_owned(), Value::Null);
        candidate.insert("confidential".to_owned(), Value::Bool(false));
        candidate.insert("custom_fields".to_owned(), json!({}));
        candidate.insert(
            "remote_created_at".to_owned(),
            Value::String(created.clone()),
        );
        candidate.insert(
            "remote_updated_at".to_owned(),
            Value::String(created.clone()),
        );
        candidate.insert("changed_at".to_owned(), Value::String(created));
        candidate.insert("remote_deleted_at".to_owned(), Value::Null);
        candidate.insert("integration_fields".to_owned(), json!([]));
        candidate.insert(
            "remote_data".to_owned(),
            remote_data::candidate(integration, application),
        );
    }
    value
}

/// What Kombo keeps of a record deleted long enough ago: ids and timestamps, nothing else.
fn expired_application(application: &Application, deleted_at: DateTime<Utc>) -> Value {
    json!({
        "id": application.id,
        "remote_id": null,
        "outcome": null,
        "rejection_reason_name": null,
        "rejected_at": null,
        "current_stage_id": null,
        "job_id": null,
        "candidate_id": null,
        "custom_fields": null,
        "integration_fields": [],
        "remote_data": null,
        "remote_url": null,
        "changed_at": timestamp(application.changed_at),
        "remote_deleted_at": timestamp(deleted_at),
        "remote_created_at": null,
        "remote_updated_at": null,
        "candidate": null,
        "current_stage": null,
        "job": null,
        "interviews": [],
        "offers": [],
        "screening_question_answers": null,
    })
}

/// One job as `GET /ats/jobs` serves it, with its own stages.
pub(crate) fn job(integration: &Integration, job: &Job) -> Value {
    json!({
        "id": job.id,
        "remote_id": job.remote_id,
        "name": job.name,
        "job_code": job.code,
        "description": format!("<p>Join our {} team.</p>", job.department),
        "confidential": false,
        "weekly_hours": 40,
        "category": null,
        "department": job.department,
        "post_url": format!("https://jobs.example.com/{}/{}", integration.tool, job.remote_id),
        "experience_level": null,
        "salary_amount": null,
        "salary_amount_from": null,
        "salary_amount_to": null,
        "salary_currency": null,
        "salary_period": null,
        "custom_fields": {},
        "integration_fields": [],
        "remote_data": remote_data::job(integration, job),
        "remote_url": format!("https://{}.example.com/jobs/{}", integration.tool, job.remote_id),
        "opened_at": timestamp(job.created_at),
        "closed_at": if job.open { Value::Null } else { Value::String(timestamp(job.changed_at)) },
        "remote_created_at": timestamp(job.created_at),
        "remote_updated_at": timestamp(job.updated_at),
        "contact_id": null,
        "changed_at": timestamp(job.changed_at),
        "remote_deleted_at": null,
        "status": if job.open { "OPEN" } else { "CLOSED" },
        "employment_type": job.employment_type,
        "visibility": job.visibility,
        "remote_work_status": null,
        "location": null,
        "stages": job.stages.iter().map(|stage| stage_on_job(integration, job, stage)).collect::<Vec<_>>(),
        "screening_questions": [],
        "job_postings": [],
        "hiring_team": [],
    })
}

fn coverage(supported: bool) -> &'static str {
    if supported {
        "SUPPORTED"
    } else {
        "UNSUPPORTED"
    }
}

fn model_field(id: &str, supported: bool) -> Value {
    json!({
        "id": id,
        "is_available": supported,
        "coverage_status": coverage(supported),
        "scope_config_setting": "ENABLED",
        "opted_out_by_customer": false,
    })
}

/// `GET /integrations/{id}`: state, setup status, `data_expired_at` and per-field coverage.
pub(crate) fn integration(integration: &Integration) -> Value {
    let applications_readable = integration.profile != AtsProfile::ApplicationsUnavailable;
    let outcome_supported = integration.profile == AtsProfile::Full
        || integration.profile == AtsProfile::StagesWithoutIndex;
    let label = {
        let mut chars = integration.tool.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_uppercase().chain(chars).collect()
        })
    };
    let write_action = |id: &str, label: &str| {
        json!({
            "id": id,
            "label": label,
            "is_available": true,
            "coverage_status": "SUPPORTED",
            "scope_config_setting": "ENABLED",
            "opted_out_by_customer": false,
            "fields": [],
        })
    };
    json!({
        "id": integration.id,
        "tool": {
            "id": integration.tool,
            "label": label,
            "internal_label": null,
            "logo_url": format!("https://storage.googleapis.com/kombo-assets/integrations/{}/logo.svg", integration.tool),
            "icon_url": format!("https://storage.googleapis.com/kombo-assets/integrations/{}/icon.svg", integration.tool),
        },
        "category": "ATS",
        "status": "ACTIVE",
        "setup_status": if integration.ready { "COMPLETED" } else { "FINAL_SYNC_PENDING" },
        "end_user": {
            "organization_name": integration.id.split('-').next().unwrap_or("customer"),
            "creator_email": null,
            "origin_id": integration.id,
        },
        "scope_config": {"id": "default-ats-scope", "name": "Default ATS scope"},
        "data_expired_at": optional_timestamp(integration.data_expired_at),
        "created_at": timestamp(integration.created_at),
        "beta": false,
        "read_models": [
            {
                "id": "ats_applications",
                "label": "Applications",
                "is_available": applications_readable,
                "coverage_status": coverage(applications_readable),
                "scope_config_setting": "ENABLED",
                "opted_out_by_customer": false,
                "fields": [
                    model_field("outcome", applications_readable && outcome_supported),
                    model_field("current_stage_id", applications_readable),
                    model_field("rejection_reason_name", applications_readable),
                ],
            },
            {
                "id": "ats_jobs",
                "label": "Jobs",
                "is_available": true,
                "coverage_status": "SUPPORTED",
                "scope_config_setting": "ENABLED",
                "opted_out_by_customer": false,
                "fields": [model_field("stages", true)],
            },
        ],
        "write_actions": [
            write_action("ats_create_application", "Create application"),
            write_action("ats_move_application_to_stage", "Move application to stage"),
            write_action("ats_reject_application", "Reject application"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IntegrationConfig;
    use crate::model::Random;

    fn page_is_valid(results: &[Value]) -> bool {
        let schema: Value =
            serde_json::from_str(kombo_schemas::get("get-ats-applications.response").unwrap())
                .unwrap();
        let page = json!({"status": "success", "data": {"next": null, "results": results}});
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap()
            .is_valid(&page)
    }

    #[test]
    fn fourteen_days_after_deletion_every_field_but_ids_and_timestamps_is_null() {
        let now = Utc::now();
        let config = IntegrationConfig::new("acme", "greenhouse", AtsProfile::Full).with_jobs(1, 2);
        let mut integration = Random::new(1).integration(&config, now);
        integration.applications[0].deleted_at = Some(now - TimeDelta::days(15));
        integration.applications[1].deleted_at = Some(now - TimeDelta::days(13));

        let expired = application(&integration, &integration.applications[0], now);
        assert!(expired["remote_deleted_at"].is_string());
        for field in [
            "remote_id",
            "outcome",
            "current_stage_id",
            "job_id",
            "candidate",
            "job",
        ] {
            assert!(expired[field].is_null(), "{field}");
        }
        let recent = application(&integration, &integration.applications[1], now);
        assert!(recent["current_stage_id"].is_string() && recent["candidate"].is_object());
        assert!(page_is_valid(&[expired, recent]));
    }
}
