//! Kombo's wire objects, rendered from the simulated data (field sets per the JSON Schemas in
//! `kombo-schemas`).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use serde::ser::SerializeMap;
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

/// One application as `GET /ats/applications` serves it. Rendered through borrowed, typed views
/// rather than a `Value` tree: pages of 250 real-sized records are the sandbox's hottest path,
/// and the benchmarks run it on the same cores as what they measure.
pub(crate) fn application<'a>(
    integration: &'a Integration,
    application: &'a Application,
    now: DateTime<Utc>,
) -> ApplicationWire<'a> {
    if let Some(deleted_at) = application.deleted_at
        && now - deleted_at > TimeDelta::days(DELETED_RETENTION_DAYS)
    {
        return ApplicationWire::Expired(expired_application(application, deleted_at));
    }
    let job = &integration.jobs[application.job];
    let candidate = &application.candidate;
    let tool = integration.tool.as_str();
    ApplicationWire::Live(Box::new(LiveApplication {
        id: &application.id,
        remote_id: &application.remote_id,
        outcome: (integration.profile != AtsProfile::OutcomeUnsupported)
            .then(|| application.outcome.as_str()),
        rejection_reason_name: application.rejection_reason.as_deref(),
        rejected_at: application.rejected_at.map(timestamp),
        current_stage_id: &application.stage_id,
        job_id: &job.id,
        candidate_id: &candidate.id,
        custom_fields: EmptyObject,
        integration_fields: [],
        remote_data: remote_data::application(integration, application),
        remote_url: format!(
            "https://{tool}.example.com/applications/{}",
            application.remote_id
        ),
        changed_at: timestamp(application.changed_at),
        remote_deleted_at: application.deleted_at.map(timestamp),
        remote_created_at: timestamp(application.created_at),
        remote_updated_at: timestamp(application.updated_at),
        candidate: CandidateWire {
            id: &candidate.id,
            remote_id: &candidate.remote_id,
            first_name: &candidate.first_name,
            last_name: &candidate.last_name,
            source: candidate.source.as_deref(),
            remote_url: format!(
                "https://{tool}.example.com/candidates/{}",
                candidate.remote_id
            ),
            email_addresses: [EmailWire {
                email_address: &candidate.email,
                kind: "PERSONAL",
            }],
            phone_numbers: candidate
                .phone
                .as_deref()
                .map(|phone| PhoneWire {
                    phone_number: phone,
                    kind: "MOBILE",
                })
                .into_iter()
                .collect(),
            social_media: [],
            tags: [],
        },
        current_stage: job.stage(&application.stage_id).map(|stage| StageWire {
            id: &stage.id,
            remote_id: &stage.remote_id,
            name: &stage.name,
            status: if stage.active { "ACTIVE" } else { "INACTIVE" },
            custom_fields: EmptyObject,
            index: (integration.profile != AtsProfile::StagesWithoutIndex).then_some(stage.index),
        }),
        job: JobRef {
            id: &job.id,
            remote_id: &job.remote_id,
            name: &job.name,
        },
        interviews: application
            .interviews
            .iter()
            .map(|interview| InterviewWire {
                id: &interview.id,
                remote_id: &interview.remote_id,
                title: &interview.title,
                starting_at: timestamp(interview.starting_at),
                ending_at: timestamp(interview.starting_at + TimeDelta::hours(1)),
                canceled: false,
            })
            .collect(),
        offers: (application.outcome == Outcome::Hired)
            .then(|| OfferWire {
                id: format!("{}-offer", application.id),
                remote_id: (),
                status: "ACCEPTED",
            })
            .into_iter()
            .collect(),
        screening_question_answers: [],
    }))
}

/// An application on the wire: live, or what Kombo keeps of it long after its deletion.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum ApplicationWire<'a> {
    Live(Box<LiveApplication<'a>>),
    Expired(Value),
}

impl ApplicationWire<'_> {
    pub(crate) fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an application renders as JSON")
    }
}

/// `{}`.
#[derive(Debug)]
pub(crate) struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }
}

/// `[]`.
type EmptyList = [(); 0];

#[derive(Debug, Serialize)]
pub(crate) struct LiveApplication<'a> {
    id: &'a str,
    remote_id: &'a str,
    outcome: Option<&'static str>,
    rejection_reason_name: Option<&'a str>,
    rejected_at: Option<String>,
    current_stage_id: &'a str,
    job_id: &'a str,
    candidate_id: &'a str,
    custom_fields: EmptyObject,
    integration_fields: EmptyList,
    remote_data: Option<remote_data::ApplicationRecord<'a>>,
    remote_url: String,
    changed_at: String,
    remote_deleted_at: Option<String>,
    remote_created_at: String,
    remote_updated_at: String,
    candidate: CandidateWire<'a>,
    current_stage: Option<StageWire<'a>>,
    job: JobRef<'a>,
    interviews: Vec<InterviewWire<'a>>,
    offers: Vec<OfferWire>,
    screening_question_answers: EmptyList,
}

#[derive(Debug, Serialize)]
struct CandidateWire<'a> {
    id: &'a str,
    remote_id: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    source: Option<&'a str>,
    remote_url: String,
    email_addresses: [EmailWire<'a>; 1],
    phone_numbers: Vec<PhoneWire<'a>>,
    social_media: EmptyList,
    tags: EmptyList,
}

#[derive(Debug, Serialize)]
struct EmailWire<'a> {
    email_address: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct PhoneWire<'a> {
    phone_number: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct StageWire<'a> {
    id: &'a str,
    remote_id: &'a str,
    name: &'a str,
    status: &'static str,
    custom_fields: EmptyObject,
    index: Option<usize>,
}

#[derive(Debug, Serialize)]
struct JobRef<'a> {
    id: &'a str,
    remote_id: &'a str,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct InterviewWire<'a> {
    id: &'a str,
    remote_id: &'a str,
    title: &'a str,
    starting_at: String,
    ending_at: String,
    canceled: bool,
}

#[derive(Debug, Serialize)]
struct OfferWire {
    id: String,
    remote_id: (),
    status: &'static str,
}

/// The application `POST /ats/jobs/{job_id}/applications` answers with: the read shape, with
/// the candidate expanded further (company, title, timestamps, ...).
pub(crate) fn created_application(
    integration: &Integration,
    application: &Application,
    now: DateTime<Utc>,
) -> Value {
    let mut value = self::application(integration, application, now).to_value();
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

        let expired = application(&integration, &integration.applications[0], now).to_value();
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
        let recent = application(&integration, &integration.applications[1], now).to_value();
        assert!(recent["current_stage_id"].is_string() && recent["candidate"].is_object());
        assert!(page_is_valid(&[expired, recent]));
    }
}
