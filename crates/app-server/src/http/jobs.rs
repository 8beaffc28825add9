//! Jobs: each with its pipeline and the number of tracked applications per stage.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::integrations::{load, parse_integration_id};
use super::problem::Problem;

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
    load(&state, &integration).await?;
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
