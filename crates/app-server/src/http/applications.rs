//! Tracked applications: listed with filters and cursor paging, and read one at a time with
//! their stage timeline. Acting on them (create, import, move, reject) is in [`super::actions`];
//! jobs with their pipelines in [`super::jobs`].

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use domain::{IntegrationId, JobId, StageId};

use super::AppState;
use super::integrations::parse_integration_id;
use super::problem::Problem;

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
    let id = parse_application_id(application_id)?;
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

pub(super) fn parse_application_id(raw: String) -> Result<domain::ApplicationId, Problem> {
    domain::ApplicationId::parse(raw)
        .map_err(|e| Problem::validation("application_id", e.to_string()))
}
