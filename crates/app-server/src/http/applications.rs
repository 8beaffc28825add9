//! Applications: create through Kombo, import into tracking, list, read with a timeline; jobs
//! with their pipelines.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::ports::{ImportRequest, JobQuery, NewApplication, NewCandidate};
use domain::{IntegrationId, JobId, Pipeline, StageId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{ApiJson, parse_json};
use super::idempotency::{WriteFailure, run_once};
use super::integrations::parse_integration_id;
use super::problem::Problem;
use crate::tracking::track_created;

/// The candidate of a new application.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateInput {
    pub first_name: String,
    pub last_name: String,
    pub email_address: String,
    pub phone_number: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
}

/// An application to create in the customer's ATS through Kombo.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    /// Kombo job id (or `remote:<ATS job id>`).
    pub job_id: String,
    pub candidate: CandidateInput,
    /// The stage to start in; the job's first stage when omitted.
    pub stage_id: Option<String>,
    /// Further fields of Kombo's request body (attachments, `remote_fields`,
    /// `screening_question_answers`, …), passed through unchanged.
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The answer to a create: the application Kombo created and its `application.created` event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApplication {
    /// Kombo's application id.
    pub id: String,
    pub integration_id: String,
    pub job_id: Option<String>,
    pub remote_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub current_stage: Option<serde_json::Value>,
    pub outcome: Option<String>,
    /// The `application.created` event, as the feed and webhooks carry it. `null` when a sync
    /// pass recorded the application first (its `application.discovered` event announced it),
    /// or when it could not be stored at once: the application exists in the ATS all the same,
    /// and the next sync pass announces it as `application.discovered`.
    #[schema(value_type = Option<Object>)]
    pub event: Option<serde_json::Value>,
}

fn validate_create(body: CreateApplication) -> Result<NewApplication, Problem> {
    let job_id =
        JobId::parse(body.job_id).map_err(|e| Problem::validation("job_id", e.to_string()))?;
    let stage_id = body
        .stage_id
        .map(StageId::parse)
        .transpose()
        .map_err(|e| Problem::validation("stage_id", e.to_string()))?;
    let c = body.candidate;
    for (field, value) in [
        ("candidate.first_name", &c.first_name),
        ("candidate.last_name", &c.last_name),
    ] {
        if value.trim().is_empty() {
            return Err(Problem::validation(field, "must not be empty"));
        }
    }
    let email = c.email_address.trim();
    if !email
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
    {
        return Err(Problem::validation(
            "candidate.email_address",
            format!("`{email}` is not an email address"),
        ));
    }
    Ok(NewApplication {
        job_id,
        candidate: NewCandidate {
            first_name: c.first_name.trim().to_owned(),
            last_name: c.last_name.trim().to_owned(),
            email_address: email.to_owned(),
            phone_number: c.phone_number,
            company: c.company,
            title: c.title,
        },
        stage_id,
        extra: body.extra.unwrap_or_default(),
    })
}

/// Creates an application in the ATS through Kombo and tracks it at once.
///
/// Kombo has no idempotency of its own: send an `Idempotency-Key` header (any unique string per
/// intended application) and a retried request returns the first answer instead of creating a
/// second application.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/applications", tag = "applications",
    params(
        ("integration_id" = String, Path, description = "Kombo integration id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first result"),
    ),
    request_body = CreateApplication,
    responses(
        (status = 201, body = CreatedApplication),
        (status = 404, body = super::problem::ProblemBody),
        (status = 409, description = "Already exists in the ATS; or the Idempotency-Key is in use, or its first request's outcome is unknown", body = super::problem::ProblemBody),
        (status = 422, body = super::problem::ProblemBody),
        (status = 502, description = "Kombo failed; `kombo-outcome-unknown` when its answer was lost and the application may exist", body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn create(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let integration = parse_integration_id(integration_id)?;
    require_json(&headers)?;
    let input: CreateApplication = parse_json(&body)?;
    let application = validate_create(input)?;
    if state.store.integration(&integration).await?.is_none() {
        return Err(Problem::not_found(format!(
            "integration {integration} is not registered"
        )));
    }
    let scope = format!("create-application:{integration}");
    run_once(
        &state,
        &headers,
        scope,
        &body,
        "created the application",
        || async {
            let created = create_and_track(&state, &integration, &application).await?;
            Ok((
                StatusCode::CREATED,
                serde_json::to_value(&created).expect("serializable"),
            ))
        },
    )
    .await
}

/// Refuses a body that is not declared as JSON.
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or_default().trim() == "application/json");
    if is_json {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        ))
    }
}

async fn create_and_track(
    state: &AppState,
    integration: &IntegrationId,
    application: &NewApplication,
) -> Result<CreatedApplication, WriteFailure> {
    let snapshot = match state.ats.create_application(integration, application).await {
        Ok(snapshot) => snapshot,
        Err(error) if error.may_have_been_applied() => {
            metrics::counter!("stagewatch_create_outcome_unknown_total").increment(1);
            tracing::warn!(integration = %integration, %error, "Kombo's answer to a create was lost");
            return Err(WriteFailure::OutcomeUnknown(Problem::new(
                StatusCode::BAD_GATEWAY,
                "kombo-outcome-unknown",
                "Outcome unknown",
                format!(
                    "Kombo's answer was lost ({error}): the application may have been created. \
                     If it was, the next sync pass announces it as `application.discovered`. A \
                     retry with the same Idempotency-Key does not create it again"
                ),
            )));
        }
        Err(error) => return Err(WriteFailure::Refused(error.into())),
    };
    // From here on the ATS holds the application: whatever fails now, the answer is 201.
    let pipeline = pipeline_of(state, integration, snapshot.job_id.as_ref()).await;
    let event = match track_created(
        &state.store,
        &snapshot,
        pipeline.as_ref(),
        state.clock.now(),
    )
    .await
    {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(
                integration = %integration,
                application = %snapshot.id,
                %error,
                "could not store a created application; the next sync pass records it"
            );
            None
        }
    };
    Ok(CreatedApplication {
        id: snapshot.id.to_string(),
        integration_id: integration.to_string(),
        job_id: snapshot.job_id.as_ref().map(ToString::to_string),
        remote_id: snapshot.remote_id.as_ref().map(ToString::to_string),
        current_stage: snapshot
            .current_stage
            .as_ref()
            .map(|s| serde_json::to_value(s.to_ref()).expect("serializable")),
        outcome: snapshot.outcome.as_ref().map(|o| o.as_str().to_owned()),
        event: event.map(|event| serde_json::to_value(&event).expect("serializable")),
    })
}

/// The job's pipeline: stored, or fetched from Kombo; `None` when neither has it (the sync
/// fills it in later).
async fn pipeline_of(
    state: &AppState,
    integration: &IntegrationId,
    job: Option<&JobId>,
) -> Option<Pipeline> {
    use domain::ports::TrackerStore as _;
    let job = job?;
    if let Ok(mut stored) = state
        .store
        .load_pipelines(integration, std::slice::from_ref(job))
        .await
        && let Some(pipeline) = stored.pop()
    {
        return Some(pipeline);
    }
    let query = JobQuery {
        ids: vec![job.clone()],
        ..JobQuery::default()
    };
    let page = state.ats.fetch_jobs(integration, &query, None).await.ok()?;
    let pipeline = page.items.into_iter().find(|p| &p.job_id == job)?;
    let _ = state
        .store
        .save_pipelines(integration, std::slice::from_ref(&pipeline))
        .await;
    Some(pipeline)
}

/// An existing ATS application to track (Kombo's import-tracked-application).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportApplication {
    /// The tool key of Kombo's body, e.g. `greenhouse`.
    pub tool: String,
    /// The identifiers for that tool, including `id_type`.
    #[schema(value_type = Object)]
    pub identifiers: serde_json::Map<String, serde_json::Value>,
    /// When the application was handed to the ATS; now when omitted.
    pub tracked_at: Option<DateTime<Utc>>,
}

/// The answer to an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedApplication {
    /// Kombo's application id.
    pub id: String,
    pub tracked_at: Option<DateTime<Utc>>,
    pub message: String,
}

/// Starts tracking an application that already exists in the ATS; its data (and its
/// `application.discovered` event) arrives with the next sync pass, which starts at once.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/applications/import", tag = "applications",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    request_body = ImportApplication,
    responses(
        (status = 202, body = ImportedApplication),
        (status = 404, body = super::problem::ProblemBody),
        (status = 422, body = super::problem::ProblemBody),
        (status = 502, body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn import(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    ApiJson(body): ApiJson<ImportApplication>,
) -> Result<(StatusCode, Json<ImportedApplication>), Problem> {
    let integration = parse_integration_id(integration_id)?;
    if body.tool.trim().is_empty() {
        return Err(Problem::validation("tool", "must not be empty"));
    }
    if state.store.integration(&integration).await?.is_none() {
        return Err(Problem::not_found(format!(
            "integration {integration} is not registered"
        )));
    }
    let imported = state
        .ats
        .import_tracked_application(
            &integration,
            &ImportRequest {
                // Kombo requires it; "now" is when the product hands the application over.
                tracked_at: Some(body.tracked_at.unwrap_or_else(|| state.clock.now())),
                tool: body.tool,
                identifiers: body.identifiers,
            },
        )
        .await?;
    if state
        .store
        .make_due(&integration, state.clock.now())
        .await?
    {
        state.sync_waker.notify_one();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ImportedApplication {
            id: imported.id.to_string(),
            tracked_at: imported.tracked_at,
            message: "tracked; its data arrives with the sync pass that starts now".to_owned(),
        }),
    ))
}

/// Largest page of the application list.
const MAX_LIST_LIMIT: u32 = 500;

/// Filters and paging of the application list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this integration.
    pub integration: Option<String>,
    /// Only this job (Kombo job id).
    pub job: Option<String>,
    /// Only applications currently in this stage (Kombo stage id).
    pub stage: Option<String>,
    /// Only this outcome: `PENDING`, `HIRED` or `DECLINED`.
    #[param(pattern = r"^(PENDING|HIRED|DECLINED)(?![\s\S])")]
    pub outcome: Option<String>,
    /// Only applications changed at or after this time (RFC 3339).
    pub changed_since: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Applications per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A tracked application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub integration_id: String,
    pub remote_id: Option<String>,
    pub job_id: Option<String>,
    pub job_name: Option<String>,
    pub candidate_name: Option<String>,
    /// `{stage_id, name, index}`; the last known stage.
    #[schema(value_type = Option<Object>)]
    pub current_stage: Option<serde_json::Value>,
    /// Set when the ATS stopped telling the stage: `current_stage` is the last known one.
    pub stage_unknown_since: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub outcome_unknown_since: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub rejected_at: Option<DateTime<Utc>>,
    /// When Kombo last saw the application change.
    pub changed_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// `created_here` (through stagewatch) or `discovered` (seen first in a sync).
    pub origin: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub entered_current_stage_at: Option<DateTime<Utc>>,
}

impl From<&domain::TrackedApplication> for ApplicationView {
    fn from(a: &domain::TrackedApplication) -> Self {
        Self {
            id: a.id.to_string(),
            integration_id: a.integration_id.to_string(),
            remote_id: a.remote_id.as_ref().map(ToString::to_string),
            job_id: a.job_id.as_ref().map(ToString::to_string),
            job_name: a.job_name.clone(),
            candidate_name: a.candidate_name.clone(),
            current_stage: a
                .current_stage
                .as_ref()
                .map(|s| serde_json::to_value(s).expect("serializable")),
            stage_unknown_since: a.stage_unknown_since,
            outcome: a.outcome.as_ref().map(|o| o.as_str().to_owned()),
            outcome_unknown_since: a.outcome_unknown_since,
            rejection_reason: a.rejection_reason_name.clone(),
            rejected_at: a.rejected_at,
            changed_at: a.changed_at,
            deleted_at: a.deleted_at,
            origin: a.origin.as_str().to_owned(),
            first_seen_at: a.first_seen_at,
            last_seen_at: a.last_seen_at,
            entered_current_stage_at: a.entered_current_stage_at,
        }
    }
}

/// A page of applications, most recently changed first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationPage {
    pub applications: Vec<ApplicationView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Lists tracked applications, most recently changed first.
#[utoipa::path(get, path = "/v1/applications", tag = "applications", params(ListParams),
    responses((status = 200, body = ApplicationPage), (status = 422, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    super::extract::ApiQuery(params): super::extract::ApiQuery<ListParams>,
) -> Result<Json<ApplicationPage>, Problem> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(Problem::validation(
            "limit",
            format!("{limit} is out of range; 1 to {MAX_LIST_LIMIT}"),
        ));
    }
    let filter = adapters_postgres::ApplicationFilter {
        integration: params.integration.map(parse_integration_id).transpose()?,
        job: params
            .job
            .map(JobId::parse)
            .transpose()
            .map_err(|e| Problem::validation("job", e.to_string()))?,
        current_stage: params
            .stage
            .map(StageId::parse)
            .transpose()
            .map_err(|e| Problem::validation("stage", e.to_string()))?,
        outcome: params.outcome.as_deref().map(parse_outcome).transpose()?,
        changed_since: params.changed_since,
    };
    let cursor = params.cursor.as_deref().map(decode_cursor).transpose()?;
    // One more than asked tells whether another page follows.
    let mut records = state
        .store
        .list_applications(&filter, cursor, limit + 1)
        .await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more.then(|| records.last().map(encode_cursor)).flatten();
    Ok(Json(ApplicationPage {
        applications: records.iter().map(ApplicationView::from).collect(),
        next_cursor,
    }))
}

fn parse_outcome(raw: &str) -> Result<domain::Outcome, Problem> {
    match raw {
        "PENDING" => Ok(domain::Outcome::Pending),
        "HIRED" => Ok(domain::Outcome::Hired),
        "DECLINED" => Ok(domain::Outcome::Declined),
        _ => Err(Problem::validation(
            "outcome",
            format!("`{raw}` is not an outcome; PENDING, HIRED or DECLINED"),
        )),
    }
}

fn encode_cursor(record: &domain::TrackedApplication) -> String {
    use base64::Engine;
    let raw = serde_json::json!([
        record.changed_at,
        record.integration_id.as_str(),
        record.id.as_str()
    ]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
}

fn decode_cursor(raw: &str) -> Result<adapters_postgres::ApplicationCursor, Problem> {
    use base64::Engine;
    let invalid = || Problem::validation("cursor", "not a cursor this API returned");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| invalid())?;
    let (changed_at, integration, application): (DateTime<Utc>, String, String) =
        serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(adapters_postgres::ApplicationCursor {
        changed_at,
        integration_id: IntegrationId::parse(integration).map_err(|_| invalid())?,
        application_id: domain::ApplicationId::parse(application).map_err(|_| invalid())?,
    })
}

/// One stay in a stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageVisitView {
    #[schema(value_type = Object)]
    pub stage: serde_json::Value,
    /// Null when the application was already there before tracking began.
    pub entered_at: Option<DateTime<Utc>>,
    /// Null while it is still there.
    pub left_at: Option<DateTime<Utc>>,
    /// Time spent, when both ends are known.
    pub seconds: Option<i64>,
}

/// An application with its stage timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationDetail {
    #[serde(flatten)]
    pub application: ApplicationView,
    /// Every stage the application was seen in, oldest first.
    pub timeline: Vec<StageVisitView>,
}

/// One application with its stage timeline.
#[utoipa::path(get, path = "/v1/integrations/{integration_id}/applications/{application_id}", tag = "applications",
    params(
        ("integration_id" = String, Path, description = "Kombo integration id"),
        ("application_id" = String, Path, description = "Kombo application id"),
    ),
    responses((status = 200, body = ApplicationDetail), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn get(
    State(state): State<AppState>,
    Path((integration_id, application_id)): Path<(String, String)>,
) -> Result<Json<ApplicationDetail>, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let id = domain::ApplicationId::parse(application_id)
        .map_err(|e| Problem::validation("application_id", e.to_string()))?;
    let record = state
        .store
        .application(&integration, &id)
        .await?
        .ok_or_else(|| {
            Problem::not_found(format!("application {id} of {integration} is not tracked"))
        })?;
    let timeline = state.store.application_timeline(&integration, &id).await?;
    Ok(Json(ApplicationDetail {
        application: ApplicationView::from(&record),
        timeline: timeline
            .into_iter()
            .map(|visit| StageVisitView {
                stage: serde_json::to_value(&visit.stage).expect("serializable"),
                entered_at: visit.entered_at,
                left_at: visit.left_at,
                seconds: visit.seconds,
            })
            .collect(),
    }))
}

/// A stage of a job with its tracked applications.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageCountView {
    pub stage_id: String,
    pub name: Option<String>,
    pub index: Option<i32>,
    /// `ACTIVE`, `INACTIVE` or null.
    pub status: Option<String>,
    pub tracked_applications: u64,
}

/// A job with its pipeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub remote_id: Option<String>,
    pub name: Option<String>,
    pub stages: Vec<StageCountView>,
    pub tracked_applications: u64,
}

/// The jobs of an integration.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

/// The integration's jobs with their pipelines and tracked applications per stage.
#[utoipa::path(get, path = "/v1/integrations/{integration_id}/jobs", tag = "applications",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    responses((status = 200, body = JobList), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn list_jobs(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
) -> Result<Json<JobList>, Problem> {
    let integration = parse_integration_id(integration_id)?;
    if state.store.integration(&integration).await?.is_none() {
        return Err(Problem::not_found(format!(
            "integration {integration} is not registered"
        )));
    }
    let jobs = state.store.list_jobs(&integration).await?;
    Ok(Json(JobList {
        jobs: jobs
            .into_iter()
            .map(|job| JobView {
                id: job.job_id.to_string(),
                remote_id: job.remote_id.map(|r| r.to_string()),
                name: job.name,
                tracked_applications: job.tracked,
                stages: job
                    .stages
                    .into_iter()
                    .map(|count| StageCountView {
                        stage_id: count.stage.id.to_string(),
                        name: count.stage.name,
                        index: count.stage.index,
                        status: count
                            .stage
                            .status
                            .and_then(|s| serde_json::to_value(s).ok())
                            .and_then(|v| v.as_str().map(str::to_owned)),
                        tracked_applications: count.tracked,
                    })
                    .collect(),
            })
            .collect(),
    }))
}
