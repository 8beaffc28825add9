//! `remote_data`: the raw record Kombo fetched from the ATS, keyed by the ATS endpoint it came
//! from. Kombo's OpenAPI document makes the field required (`null` where the plan or scope
//! config leaves it out, which is the sandbox's default). With
//! [`SandboxConfig::with_remote_data`](crate::SandboxConfig::with_remote_data) every record
//! carries a raw object shaped like Greenhouse's, about a kilobyte per application, so that
//! the adapter and the benchmarks see pages of the size a real customer's are.

use serde_json::{Value, json};

use crate::model::{Application, Integration, Job, Stage};
use crate::wire::timestamp;

/// An application as the ATS's own API returns it.
pub(crate) fn application(integration: &Integration, application: &Application) -> Value {
    if !integration.remote_data {
        return Value::Null;
    }
    let job = &integration.jobs[application.job];
    let stage = job.stage(&application.stage_id);
    let candidate = &application.candidate;
    let key = format!("/v1/applications/{}", application.remote_id);
    json!({ key: {
        "id": application.remote_id,
        "candidate_id": candidate.remote_id,
        "prospect": false,
        "applied_at": timestamp(application.created_at),
        "rejected_at": application.rejected_at.map(timestamp),
        "last_activity_at": timestamp(application.updated_at),
        "location": { "address": "Berlin, Germany" },
        "source": { "id": 4_000_123, "public_name": candidate.source.as_deref().unwrap_or("Job board") },
        "credited_to": { "id": 4_080_456, "first_name": "Alex", "last_name": "Recruiter", "name": "Alex Recruiter", "employee_id": "E-1042" },
        "rejection_reason": application.rejection_reason.as_ref().map(|name| json!({
            "id": 9_100_001, "name": name, "type": { "id": 1, "name": "We rejected them" }
        })),
        "rejection_details": application.rejection_reason.as_ref().map(|_| json!({
            "custom_fields": { "notes": null }, "keyed_custom_fields": {}
        })),
        "jobs": [{ "id": job.remote_id, "name": job.name }],
        "job_post_id": format!("{}-post", job.remote_id),
        "status": application.outcome.as_str().to_lowercase(),
        "current_stage": stage.map(|stage| json!({ "id": stage.remote_id, "name": stage.name })),
        "answers": [
            { "question": "Are you authorised to work in the EU?", "answer": "Yes" },
            { "question": "How did you hear about us?", "answer": "A friend told me about the role." },
            { "question": "What are your salary expectations?", "answer": "In line with the posted range." }
        ],
        "prospective_office": null,
        "prospective_department": null,
        "prospect_detail": { "prospect_pool": null, "prospect_stage": null, "prospect_owner": null },
        "custom_fields": { "referral_bonus_eligible": false, "notice_period": "3 months" },
        "keyed_custom_fields": {
            "notice_period": { "name": "Notice period", "type": "short_text", "value": "3 months" }
        },
        "attachments": [{
            "filename": format!("{}_{}_CV.pdf", candidate.first_name, candidate.last_name),
            "url": format!("https://{}-attachments.example.com/{}/cv.pdf", integration.tool, application.remote_id),
            "type": "resume",
            "created_at": timestamp(application.created_at)
        }]
    }})
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
