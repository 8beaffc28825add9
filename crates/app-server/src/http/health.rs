//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::problem::Problem;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database is reachable and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = super::problem::ProblemBody)))]
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    state
        .store
        .ping()
        .await
        .map_err(|e| Problem::unavailable(format!("the database is not reachable: {e}")))?;
    let pending = state.store.pending_migrations().await?;
    if !pending.is_empty() {
        return Err(Problem::unavailable(format!(
            "{} database migrations are pending; run `stagewatch migrate`",
            pending.len()
        )));
    }
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    crate::telemetry::record_state_gauges(
        &state.store,
        state.clock.now(),
        state.default_poll_interval,
    )
    .await;
    if let Ok(lag) = state.store.outbox_lag(state.clock.now()).await {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("stagewatch_outbox_lag_seconds").set(lag.as_secs_f64());
    }
    let body = state
        .metrics
        .as_ref()
        .map(metrics_exporter_prometheus::PrometheusHandle::render)
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
}
