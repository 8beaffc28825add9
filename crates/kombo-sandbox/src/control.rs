//! The control API under `/_sandbox`, for driving a sandbox from another process: advance the
//! simulation, read the ground truth, end initial syncs, mass-delete, set faults.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::SandboxConfig;
use crate::faults::{Endpoint, FaultRule};
use crate::server::SandboxHandle;

pub(crate) fn router(handle: SandboxHandle) -> Router {
    Router::new()
        .route("/_sandbox/integrations", get(integrations))
        .route("/_sandbox/advance", post(advance))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/truth/{integration}", get(truth))
        .route("/_sandbox/applications/{integration}", get(applications))
        .route("/_sandbox/untracked/{integration}", get(untracked))
        .route("/_sandbox/integrations/{integration}/ready", post(ready))
        .route(
            "/_sandbox/integrations/{integration}/mass-delete",
            post(mass_delete),
        )
        .route(
            "/_sandbox/faults",
            get(faults)
                .put(set_faults)
                .post(add_fault)
                .delete(clear_faults),
        )
        .route("/_sandbox/faults/fired", get(fired_faults))
        .route("/_sandbox/requests", get(requests))
        .with_state(handle)
}

#[derive(Debug, Deserialize)]
struct AdvanceRequest {
    #[serde(default = "one")]
    steps: usize,
}

fn one() -> usize {
    1
}

/// A new seed and scale: without `integrations`, one integration per ATS profile.
#[derive(Debug, Deserialize)]
struct ResetRequest {
    seed: u64,
    integrations: Option<usize>,
    jobs: usize,
    applications: usize,
}

#[derive(Debug, Deserialize)]
struct MassDeleteRequest {
    fraction: f64,
}

fn known(handle: &SandboxHandle, integration: &str) -> Result<(), Box<Response>> {
    if handle.integration_ids().iter().any(|id| id == integration) {
        Ok(())
    } else {
        Err(Box::new(
            (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("no integration {integration}") })),
            )
                .into_response(),
        ))
    }
}

async fn integrations(State(handle): State<SandboxHandle>) -> Response {
    Json(handle.integration_ids()).into_response()
}

async fn advance(
    State(handle): State<SandboxHandle>,
    Json(request): Json<AdvanceRequest>,
) -> Response {
    Json(handle.advance(request.steps)).into_response()
}

async fn reset(State(handle): State<SandboxHandle>, Json(request): Json<ResetRequest>) -> Response {
    let config = match request.integrations {
        Some(count) => {
            SandboxConfig::uniform(request.seed, count, request.jobs, request.applications)
        }
        None => SandboxConfig::showcase(request.seed, request.jobs, request.applications),
    };
    handle.reset(&config);
    Json(handle.integration_ids()).into_response()
}

async fn truth(State(handle): State<SandboxHandle>, Path(integration): Path<String>) -> Response {
    if let Err(response) = known(&handle, &integration) {
        return *response;
    }
    Json(handle.truth(&integration)).into_response()
}

async fn applications(
    State(handle): State<SandboxHandle>,
    Path(integration): Path<String>,
) -> Response {
    if let Err(response) = known(&handle, &integration) {
        return *response;
    }
    Json(handle.current_applications(&integration)).into_response()
}

async fn untracked(
    State(handle): State<SandboxHandle>,
    Path(integration): Path<String>,
) -> Response {
    if let Err(response) = known(&handle, &integration) {
        return *response;
    }
    Json(handle.untracked_remote_ids(&integration)).into_response()
}

async fn ready(State(handle): State<SandboxHandle>, Path(integration): Path<String>) -> Response {
    if let Err(response) = known(&handle, &integration) {
        return *response;
    }
    handle.mark_ready(&integration);
    StatusCode::NO_CONTENT.into_response()
}

async fn mass_delete(
    State(handle): State<SandboxHandle>,
    Path(integration): Path<String>,
    Json(request): Json<MassDeleteRequest>,
) -> Response {
    if let Err(response) = known(&handle, &integration) {
        return *response;
    }
    Json(json!({ "deleted": handle.mass_delete(&integration, request.fraction) })).into_response()
}

async fn faults(State(handle): State<SandboxHandle>) -> Response {
    Json(handle.faults()).into_response()
}

async fn set_faults(
    State(handle): State<SandboxHandle>,
    Json(rules): Json<Vec<FaultRule>>,
) -> Response {
    handle.set_faults(rules);
    StatusCode::NO_CONTENT.into_response()
}

async fn add_fault(State(handle): State<SandboxHandle>, Json(rule): Json<FaultRule>) -> Response {
    handle.add_fault(rule);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(handle): State<SandboxHandle>) -> Response {
    handle.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn fired_faults(State(handle): State<SandboxHandle>) -> Response {
    Json(handle.fired_faults()).into_response()
}

async fn requests(State(handle): State<SandboxHandle>) -> Response {
    let counts: BTreeMap<String, u64> = Endpoint::ALL
        .iter()
        .map(|endpoint| (format!("{endpoint:?}"), handle.request_count(*endpoint)))
        .collect();
    Json(counts).into_response()
}
