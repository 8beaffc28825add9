//! Funnel analytics: per stage of a job's pipeline (or, across jobs, per stage name), how many
//! applications are there now, entered it, reached it or a later one, converted to the next
//! stage, how long they stayed, and how many were hired or declined there. The definitions are
//! in `docs/console.md` ("Funnel analytics") and `domain::funnel`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::{Funnel, FunnelQuery, IntegrationId, JobId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::ApiQuery;
use super::integrations::{load, parse_integration_id};
use super::problem::Problem;

/// The creation-time window of a funnel.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FunnelParams {
    /// Only applications created at or after this time (RFC 3339). An application's creation
    /// time is the ATS's, else when stagewatch first saw it.
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Only applications created before this time (RFC 3339); not before `since`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
}

/// The applications of the funnel's cohort.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohortView {
    /// Every application of the cohort, deleted ones included.
    pub total: u64,
    /// Not deleted, outcome `PENDING` or unknown.
    pub active: u64,
    /// Not deleted, outcome `HIRED`.
    pub hired: u64,
    /// Not deleted, outcome `DECLINED`.
    pub declined: u64,
    /// Deleted in the ATS.
    pub deleted: u64,
    /// Not deleted, with no current stage or one that is not a listed stage of its job.
    pub without_known_stage: u64,
}

/// A rejection reason and how many applications it declined.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonCountView {
    pub reason: String,
    pub count: u64,
}

/// One stage of a funnel; across jobs, the stages of one name.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelStageView {
    /// The stage's id in a job's funnel; null when stages are grouped by name.
    pub stage_id: Option<String>,
    pub name: Option<String>,
    /// Position in the pipeline (across jobs, the lowest of the group).
    pub position: i32,
    /// Applications here now: not deleted, outcome `PENDING` or unknown.
    pub current: u64,
    /// Applications with at least one stay here (once each, however often they came back).
    pub entered: u64,
    /// Applications that entered this stage or a later one (a skipped stage counts as passed).
    pub reached: u64,
    /// `reached` of the next stage / `reached` of this one; null for the last stage or when
    /// none reached this one.
    pub conversion_to_next: Option<f64>,
    /// Nearest-rank median of the time per application here (the sum of its closed stays
    /// whose entry and exit are known), in whole seconds. Exact for a cohort of fewer than
    /// 2 000 applications; for a larger one read from buckets, within 1.6 %.
    pub median_seconds: Option<i64>,
    /// Nearest-rank 90th percentile of the same times.
    pub p90_seconds: Option<i64>,
    /// Applications whose time here is known: the samples behind the percentiles.
    pub completed_stays: u64,
    /// Not deleted applications hired while here.
    pub hired: u64,
    /// Not deleted applications declined while here.
    pub declined: u64,
    /// The most frequent rejection reasons of `declined`, at most three, by count then name.
    pub top_rejection_reasons: Vec<ReasonCountView>,
}

/// A funnel: the cohort and its stages in pipeline order.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelView {
    pub applications: CohortView,
    pub stages: Vec<FunnelStageView>,
}

impl From<Funnel> for FunnelView {
    fn from(funnel: Funnel) -> Self {
        let a = funnel.applications;
        Self {
            applications: CohortView {
                total: a.total,
                active: a.active,
                hired: a.hired,
                declined: a.declined,
                deleted: a.deleted,
                without_known_stage: a.without_known_stage,
            },
            stages: funnel
                .stages
                .into_iter()
                .map(|s| FunnelStageView {
                    stage_id: s.stage_id,
                    name: s.name,
                    position: s.position,
                    current: s.current,
                    entered: s.entered,
                    reached: s.reached,
                    conversion_to_next: s.conversion_to_next,
                    median_seconds: s.median_seconds,
                    p90_seconds: s.p90_seconds,
                    completed_stays: s.completed_stays,
                    hired: s.hired,
                    declined: s.declined,
                    top_rejection_reasons: s
                        .top_rejection_reasons
                        .into_iter()
                        .map(|r| ReasonCountView {
                            reason: r.reason,
                            count: r.count,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A 400 naming the parameter.
fn bad_window(field: &str, detail: impl Into<String>) -> Problem {
    Problem {
        status: StatusCode::BAD_REQUEST,
        ..Problem::validation(field, detail)
    }
}

fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, Problem> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| bad_window(field, format!("{raw:?} is not an RFC 3339 time: {e}")))
    })
    .transpose()
}

/// The query for a scope and window; a bad window is a 400.
fn query(
    integration: Option<IntegrationId>,
    job: Option<JobId>,
    params: &FunnelParams,
) -> Result<FunnelQuery, Problem> {
    let query = FunnelQuery {
        integration,
        job,
        since: parse_time("since", params.since.as_deref())?,
        until: parse_time("until", params.until.as_deref())?,
    };
    query
        .check()
        .map_err(|e| bad_window("since", e.to_string()))?;
    Ok(query)
}

const BAD_WINDOW: &str = "`since` or `until` is not an RFC 3339 time";

/// One job's funnel: its pipeline in order, without inactive stages nobody is in.
#[utoipa::path(get, path = "/v1/integrations/{integration_id}/jobs/{job_id}/funnel",
    tag = "analytics",
    params(
        ("integration_id" = String, Path, description = "Kombo integration id"),
        ("job_id" = String, Path, description = "Kombo job id"),
        FunnelParams,
    ),
    responses(
        (status = 200, body = FunnelView),
        (status = 400, description = BAD_WINDOW, body = super::problem::ProblemBody),
        (status = 404, description = "The integration is not registered, or has no such job", body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn job_funnel(
    State(state): State<AppState>,
    Path((integration_id, job_id)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<FunnelParams>,
) -> Result<Json<FunnelView>, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let job = JobId::parse(job_id).map_err(|e| Problem::validation("job_id", e.to_string()))?;
    let query = query(Some(integration.clone()), Some(job.clone()), &params)?;
    load(&state, &integration).await?;
    if !state.store.job_known(&integration, &job).await? {
        return Err(Problem::not_found(format!(
            "integration {integration} has no job {job}"
        )));
    }
    Ok(Json(state.store.funnel(&query).await?.into()))
}

/// The funnel of all an integration's jobs, stages grouped by name (trimmed, case-insensitive)
/// and ordered by their lowest position, then name.
#[utoipa::path(get, path = "/v1/integrations/{integration_id}/funnel", tag = "analytics",
    params(("integration_id" = String, Path, description = "Kombo integration id"), FunnelParams),
    responses(
        (status = 200, body = FunnelView),
        (status = 400, description = BAD_WINDOW, body = super::problem::ProblemBody),
        (status = 404, description = "The integration is not registered", body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn integration_funnel(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    ApiQuery(params): ApiQuery<FunnelParams>,
) -> Result<Json<FunnelView>, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let query = query(Some(integration.clone()), None, &params)?;
    load(&state, &integration).await?;
    Ok(Json(state.store.funnel(&query).await?.into()))
}

/// The funnel across every integration, stages grouped by name as for one integration.
#[utoipa::path(get, path = "/v1/funnel", tag = "analytics", params(FunnelParams),
    responses(
        (status = 200, body = FunnelView),
        (status = 400, description = BAD_WINDOW, body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn funnel(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FunnelParams>,
) -> Result<Json<FunnelView>, Problem> {
    let query = query(None, None, &params)?;
    Ok(Json(state.store.funnel(&query).await?.into()))
}
