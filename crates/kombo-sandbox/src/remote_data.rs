//! `remote_data`: the raw record Kombo fetched from the ATS, keyed by the ATS endpoint it came
//! from. Kombo's OpenAPI document makes the field required (`null` where the plan or scope
//! config leaves it out, which is the sandbox's default). With
//! [`SandboxConfig::with_remote_data`](crate::SandboxConfig::with_remote_data) every record
//! carries a raw object shaped like Greenhouse's, about a kilobyte per application, so that
//! the adapter and the benchmarks see pages of the size a real customer's are.

use std::sync::LazyLock;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};

use crate::model::{Application, Integration, Job, Stage};
use crate::wire::timestamp;

/// An application as the ATS's own API returns it: `None` (`null`) unless the integration sends
/// raw records.
pub(crate) fn application<'a>(
    integration: &'a Integration,
    application: &'a Application,
) -> Option<ApplicationRecord<'a>> {
    if !integration.remote_data {
        return None;
    }
    let job = &integration.jobs[application.job];
    let candidate = &application.candidate;
    let tool = integration.tool.as_str();
    Some(ApplicationRecord {
        endpoint: format!("/v1/applications/{}", application.remote_id),
        record: GreenhouseApplication {
            id: &application.remote_id,
            candidate_id: &candidate.remote_id,
            prospect: false,
            applied_at: timestamp(application.created_at),
            rejected_at: application.rejected_at.map(timestamp),
            last_activity_at: timestamp(application.updated_at),
            location: &APPLICATION_LOCATION,
            source: Source {
                id: 4_000_123,
                public_name: candidate.source.as_deref().unwrap_or("Job board"),
            },
            credited_to: &CREDITED_TO,
            rejection_reason: application
                .rejection_reason
                .as_deref()
                .map(|name| RejectionReason {
                    id: 9_100_001,
                    name,
                    kind: &REJECTION_TYPE,
                }),
            rejection_details: application
                .rejection_reason
                .as_ref()
                .map(|_| &*REJECTION_DETAILS),
            jobs: [NamedRef {
                id: &job.remote_id,
                name: &job.name,
            }],
            job_post_id: format!("{}-post", job.remote_id),
            status: application.outcome.as_str().to_lowercase(),
            current_stage: job.stage(&application.stage_id).map(|stage| NamedRef {
                id: &stage.remote_id,
                name: &stage.name,
            }),
            answers: &ANSWERS,
            prospective_office: (),
            prospective_department: (),
            prospect_detail: &PROSPECT_DETAIL,
            custom_fields: &CUSTOM_FIELDS,
            keyed_custom_fields: &KEYED_CUSTOM_FIELDS,
            attachments: [Attachment {
                filename: format!("{}_{}_CV.pdf", candidate.first_name, candidate.last_name),
                url: format!(
                    "https://{tool}-attachments.example.com/{}/cv.pdf",
                    application.remote_id
                ),
                kind: "resume",
                created_at: timestamp(application.created_at),
            }],
        },
    })
}

// The parts of a raw application that are the same on every record.
static APPLICATION_LOCATION: LazyLock<Value> =
    LazyLock::new(|| json!({ "address": "Berlin, Germany" }));
static CREDITED_TO: LazyLock<Value> = LazyLock::new(
    || json!({ "id": 4_080_456, "first_name": "Alex", "last_name": "Recruiter", "name": "Alex Recruiter", "employee_id": "E-1042" }),
);
static REJECTION_TYPE: LazyLock<Value> =
    LazyLock::new(|| json!({ "id": 1, "name": "We rejected them" }));
static REJECTION_DETAILS: LazyLock<Value> =
    LazyLock::new(|| json!({ "custom_fields": { "notes": null }, "keyed_custom_fields": {} }));
static ANSWERS: LazyLock<Value> = LazyLock::new(|| {
    json!([
        { "question": "Are you authorised to work in the EU?", "answer": "Yes" },
        { "question": "How did you hear about us?", "answer": "A friend told me about the role." },
        { "question": "What are your salary expectations?", "answer": "In line with the posted range." }
    ])
});
static PROSPECT_DETAIL: LazyLock<Value> = LazyLock::new(
    || json!({ "prospect_pool": null, "prospect_stage": null, "prospect_owner": null }),
);
static CUSTOM_FIELDS: LazyLock<Value> =
    LazyLock::new(|| json!({ "referral_bonus_eligible": false, "notice_period": "3 months" }));
static KEYED_CUSTOM_FIELDS: LazyLock<Value> = LazyLock::new(
    || json!({ "notice_period": { "name": "Notice period", "type": "short_text", "value": "3 months" } }),
);

/// A raw record keyed by the ATS endpoint it came from: `{ "<endpoint>": { ... } }`.
#[derive(Debug)]
pub(crate) struct ApplicationRecord<'a> {
    endpoint: String,
    record: GreenhouseApplication<'a>,
}

impl Serialize for ApplicationRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.endpoint, &self.record)?;
        map.end()
    }
}

#[derive(Debug, Serialize)]
struct GreenhouseApplication<'a> {
    id: &'a str,
    candidate_id: &'a str,
    prospect: bool,
    applied_at: String,
    rejected_at: Option<String>,
    last_activity_at: String,
    location: &'static Value,
    source: Source<'a>,
    credited_to: &'static Value,
    rejection_reason: Option<RejectionReason<'a>>,
    rejection_details: Option<&'static Value>,
    jobs: [NamedRef<'a>; 1],
    job_post_id: String,
    status: String,
    current_stage: Option<NamedRef<'a>>,
    answers: &'static Value,
    prospective_office: (),
    prospective_department: (),
    prospect_detail: &'static Value,
    custom_fields: &'static Value,
    keyed_custom_fields: &'static Value,
    attachments: [Attachment; 1],
}

#[derive(Debug, Serialize)]
struct Source<'a> {
    id: u64,
    public_name: &'a str,
}

#[derive(Debug, Serialize)]
struct RejectionReason<'a> {
    id: u64,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static Value,
}

#[derive(Debug, Serialize)]
struct NamedRef<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct Attachment {
    filename: String,
    url: String,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: String,
}

/// The candidate of an application as the ATS's own API returns it.
pub(crate) fn candidate(integration: &Integration, application: &Application) -> Value {
    if !integration.remote_data {
        return Value::Null;
    }
    let candidate = &application.candidate;
    let key = format!("/v1/candidates/{}", candidate.remote_id);
    json!({ key: {
        "id": candidate.remote_id,
        "first_name": candidate.first_name,
        "last_name": candidate.last_name,
        "company": null,
        "title": null,
        "created_at": timestamp(application.created_at),
        "updated_at": timestamp(application.updated_at),
        "is_private": false,
        "phone_numbers": candidate.phone.as_ref().map_or_else(Vec::new, |phone| vec![json!({ "value": phone, "type": "mobile" })]),
        "email_addresses": [{ "value": candidate.email, "type": "personal" }],
        "addresses": [],
        "tags": [],
        "application_ids": [application.remote_id]
    }})
}

/// A job as the ATS's own API returns it.
pub(crate) fn job(integration: &Integration, job: &Job) -> Value {
    if !integration.remote_data {
        return Value::Null;
    }
    let key = format!("/v1/jobs/{}", job.remote_id);
    json!({ key: {
        "id": job.remote_id,
        "name": job.name,
        "requisition_id": job.code,
        "notes": null,
        "confidential": false,
        "status": if job.open { "open" } else { "closed" },
        "created_at": timestamp(job.created_at),
        "opened_at": timestamp(job.created_at),
        "updated_at": timestamp(job.updated_at),
        "is_template": false,
        "departments": [{ "id": 7_001, "name": job.department, "parent_id": null, "child_ids": [] }],
        "offices": [{ "id": 8_001, "name": "Berlin", "location": { "name": "Berlin, Germany" } }],
        "hiring_team": {
            "hiring_managers": [{ "id": 4_080_111, "first_name": "Sam", "last_name": "Manager", "name": "Sam Manager", "employee_id": "E-0007", "responsible": false }],
            "recruiters": [{ "id": 4_080_456, "first_name": "Alex", "last_name": "Recruiter", "name": "Alex Recruiter", "employee_id": "E-1042", "responsible": true }],
            "coordinators": [],
            "sourcers": []
        },
        "openings": [{ "id": 9_300_001, "opening_id": format!("{}-1", job.code), "status": if job.open { "open" } else { "closed" }, "application_id": null, "close_reason": null }],
        "custom_fields": { "employment_type": job.employment_type, "salary_range": null }
    }})
}

/// A stage of a job as the ATS's own API returns it.
pub(crate) fn stage(integration: &Integration, job: &Job, stage: &Stage) -> Value {
    if !integration.remote_data {
        return Value::Null;
    }
    let key = format!("/v1/jobs/{}/stages", job.remote_id);
    json!({ key: {
        "id": stage.remote_id,
        "name": stage.name,
        "created_at": timestamp(job.created_at),
        "updated_at": timestamp(job.updated_at),
        "job_id": job.remote_id,
        "priority": stage.index,
        "active": stage.active,
        "interviews": []
    }})
}
