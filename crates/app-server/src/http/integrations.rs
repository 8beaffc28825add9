//! `/v1/integrations`: register, list, inspect, sync now, pause and resume, confirm held
//! deletions.

use std::time::Duration;

use adapters_postgres::{NewIntegration, Registered};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::IntegrationId;
use domain::ports::TrackerStore;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::extract::ApiJson;
use super::problem::Problem;
use super::views::{Accepted, DeletionsConfirmed, IntegrationList, IntegrationView};

/// Bounds of an integration's own poll interval.
const MIN_POLL_SECONDS: u64 = 10;
const MAX_POLL_SECONDS: u64 = 86_400;

/// A Kombo integration to track.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterIntegration {
    /// Kombo's integration id, e.g. `greenhouse:8Ft2nQ9cLuo7Wd`.
    pub id: String,
    /// The ATS; taken from the id's prefix when omitted.
    pub tool: Option<String>,
    /// A name for people.
    pub label: Option<String>,
    /// Seconds between passes, overriding `sync.poll_interval`: 10 to 86 400 (a day; a full pass
    /// runs daily anyway).
    #[schema(minimum = 10, maximum = 86_400)]
    #[serde(default, deserialize_with = "super::extract::whole_seconds")]
    pub poll_interval_seconds: Option<u64>,
}

pub(super) fn parse_integration_id(raw: String) -> Result<IntegrationId, Problem> {
    IntegrationId::parse(raw).map_err(|e| Problem::validation("integration_id", e.to_string()))
}

/// The registered integration, or `404`.
pub(super) async fn load(
    state: &AppState,
    id: &IntegrationId,
) -> Result<adapters_postgres::IntegrationRecord, Problem> {
    state
        .store
        .integration(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("integration {id} is not registered")))
}

/// Starts tracking a Kombo integration; its first (full) pass runs at once.
#[utoipa::path(post, path = "/v1/integrations", tag = "integrations",
    request_body = RegisterIntegration,
    responses(
        (status = 201, description = "Registered", body = IntegrationView),
        (status = 200, description = "Already registered", body = IntegrationView),
        (status = 422, description = "Invalid input", body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterIntegration>,
) -> Result<(StatusCode, Json<IntegrationView>), Problem> {
    let id = IntegrationId::parse(body.id).map_err(|e| Problem::validation("id", e.to_string()))?;
    if let Some(seconds) = body.poll_interval_seconds
        && !(MIN_POLL_SECONDS..=MAX_POLL_SECONDS).contains(&seconds)
    {
        return Err(Problem::validation(
            "poll_interval_seconds",
            format!("{seconds} is out of range; {MIN_POLL_SECONDS} to {MAX_POLL_SECONDS} seconds"),
        ));
    }
    let new = NewIntegration {
        tool: body.tool.or_else(|| id.tool().map(str::to_owned)),
        id,
        label: body.label,
        poll_interval: body.poll_interval_seconds.map(Duration::from_secs),
    };
    let registered = state
        .store
        .register_integration(&new, state.clock.now())
        .await?;
    state.sync_waker.notify_one();
    Ok(match registered {
        Registered::Created(record) => (StatusCode::CREATED, Json(IntegrationView::from(&record))),
        Registered::AlreadyRegistered(record) => {
            (StatusCode::OK, Json(IntegrationView::from(&record)))
        }
    })
}

/// Every tracked integration.
#[utoipa::path(get, path = "/v1/integrations", tag = "integrations",
    responses((status = 200, body = IntegrationList)),
    security(("api_key" = [])))]
pub(super) async fn list(State(state): State<AppState>) -> Result<Json<IntegrationList>, Problem> {
    let records = state.store.list_integrations().await?;
    Ok(Json(IntegrationList {
        integrations: records.iter().map(IntegrationView::from).collect(),
    }))
}

/// One integration with its status, capabilities and sync health.
#[utoipa::path(get, path = "/v1/integrations/{integration_id}", tag = "integrations",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    responses((status = 200, body = IntegrationView), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn get(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
) -> Result<Json<IntegrationView>, Problem> {
    let id = parse_integration_id(integration_id)?;
    Ok(Json(IntegrationView::from(&load(&state, &id).await?)))
}

/// Makes the integration due now: a pass starts within moments.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/sync", tag = "integrations",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    responses((status = 202, body = Accepted), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn trigger_sync(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let id = parse_integration_id(integration_id)?;
    if !state.store.make_due(&id, state.clock.now()).await? {
        return Err(Problem::not_found(format!(
            "integration {id} is not registered"
        )));
    }
    state.sync_waker.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: format!("a sync pass of {id} starts as soon as a worker is free"),
        }),
    ))
}

/// Confirms the deletions the mass-deletion guard holds for this integration: they enter the
/// feed (and webhooks) now. Once held, deletions leave only this way, or when a newer sync
/// shows the application back.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/deletions/confirm", tag = "integrations",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    responses(
        (status = 200, description = "Released (0 when nothing was held)", body = DeletionsConfirmed),
        (status = 404, body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn confirm_deletions(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
) -> Result<Json<DeletionsConfirmed>, Problem> {
    let id = parse_integration_id(integration_id)?;
    let released = TrackerStore::release_held(&state.store, &id, None).await?;
    tracing::info!(integration = %id, released, "held deletions confirmed through the API");
    Ok(Json(DeletionsConfirmed { released }))
}

/// Stops syncing the integration until resumed; its data stays readable.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/pause", tag = "integrations",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    responses((status = 200, body = IntegrationView), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn pause(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
) -> Result<Json<IntegrationView>, Problem> {
    set_paused(state, integration_id, true).await
}

/// Resumes syncing a paused integration.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/resume", tag = "integrations",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    responses((status = 200, body = IntegrationView), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn resume(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
) -> Result<Json<IntegrationView>, Problem> {
    set_paused(state, integration_id, false).await
}

async fn set_paused(
    state: AppState,
    integration_id: String,
    paused: bool,
) -> Result<Json<IntegrationView>, Problem> {
    let id = parse_integration_id(integration_id)?;
    if !state.store.set_paused(&id, paused).await? {
        return Err(Problem::not_found(format!(
            "integration {id} is not registered"
        )));
    }
    if !paused {
        state.sync_waker.notify_one();
    }
    Ok(Json(IntegrationView::from(&load(&state, &id).await?)))
}
