//! The HTTP API: axum handlers over the store and the Kombo client, one module per resource.
//! Errors are problem bodies ([`problem`]); every route but health, metrics, the OpenAPI
//! document and Kombo's webhooks needs an API key ([`auth`]).

pub mod actions;
pub mod app;
pub mod auth;
mod console;
pub mod events;
pub mod extract;
pub mod funnel;
pub mod health;
mod idempotency;
mod input_rules;
pub mod integrations;
pub mod jobs;
pub mod kombo_webhooks;
pub mod openapi;
pub mod problem;
pub mod refused;
pub use app::{ApiParts, start};
pub use idempotency::IDEMPOTENCY_KEY;
pub mod applications;
pub mod views;
pub mod webhook_endpoints;
mod webhook_url;

use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::Store;
use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::routing::{get, post, put};
use domain::ports::{AtsGateway, Clock};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Secret;

/// The header carrying each request's id, in requests and responses.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub ats: Arc<dyn AtsGateway>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the sync scheduler when an integration became due now.
    pub sync_waker: Arc<Notify>,
    /// Secret of Kombo's webhooks; the receiver refuses everything while it is empty.
    pub kombo_webhook_secret: Secret,
    pub max_feed_wait: Duration,
    /// Accept webhook endpoints on loopback and private networks.
    pub allow_private_webhook_urls: bool,
    /// How long a rotated-out endpoint secret still signs deliveries.
    pub secret_rotation_overlap: Duration,
    /// `sync.poll_interval`, for integrations without their own (the metrics report it).
    pub default_poll_interval: Duration,
    pub metrics: Option<PrometheusHandle>,
    /// The ATS's rejection reasons per integration, read from Kombo at most every ten minutes.
    pub rejection_reasons: Arc<crate::rejection_reasons::RejectionReasonCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
}

/// The whole API.
pub fn router(state: AppState, keys: auth::ApiKeys, limits: &HttpLimits) -> Router {
    let keys_for_console = keys.clone();
    let authenticated = Router::new()
        .route(
            "/v1/integrations",
            post(integrations::register).get(integrations::list),
        )
        .route("/v1/integrations/{integration_id}", get(integrations::get))
        .route(
            "/v1/integrations/{integration_id}/sync",
            post(integrations::trigger_sync),
        )
        .route(
            "/v1/integrations/{integration_id}/deletions/confirm",
            post(integrations::confirm_deletions),
        )
        .route(
            "/v1/integrations/{integration_id}/pause",
            post(integrations::pause),
        )
        .route(
            "/v1/integrations/{integration_id}/resume",
            post(integrations::resume),
        )
        .route(
            "/v1/integrations/{integration_id}/jobs",
            get(jobs::list_jobs),
        )
        .route(
            "/v1/integrations/{integration_id}/jobs/{job_id}/funnel",
            get(funnel::job_funnel),
        )
        .route(
            "/v1/integrations/{integration_id}/funnel",
            get(funnel::integration_funnel),
        )
        .route("/v1/funnel", get(funnel::funnel))
        .route(
            "/v1/integrations/{integration_id}/applications",
            post(actions::create),
        )
        .route(
            "/v1/integrations/{integration_id}/applications/import",
            post(actions::import),
        )
        .route(
            "/v1/integrations/{integration_id}/applications/{application_id}",
            get(applications::get),
        )
        .route(
            "/v1/integrations/{integration_id}/applications/{application_id}/stage",
            put(actions::move_to_stage),
        )
        .route(
            "/v1/integrations/{integration_id}/applications/{application_id}/reject",
            post(actions::reject),
        )
        .route(
            "/v1/integrations/{integration_id}/rejection-reasons",
            get(actions::rejection_reasons),
        )
        .route("/v1/applications", get(applications::list))
        .route(
            "/v1/webhook-endpoints",
            post(webhook_endpoints::create).get(webhook_endpoints::list),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}",
            get(webhook_endpoints::get)
                .patch(webhook_endpoints::update)
                .delete(webhook_endpoints::delete),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            post(webhook_endpoints::rotate_secret),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/attempts",
            get(webhook_endpoints::attempts),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/replay",
            post(webhook_endpoints::replay),
        )
        .route("/v1/events", get(events::read))
        .layer(axum::middleware::from_fn_with_state(
            keys,
            auth::require_api_key,
        ));
    let open = Router::new()
        .route("/v1/kombo/webhooks", post(kombo_webhooks::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve));
    authenticated
        .merge(open)
        .fallback(|| async {
            problem::Problem::not_found("no such route; see /openapi.json for the API")
        })
        .with_state(state.clone())
        .merge(console::router(state, keys_for_console))
        .layer(RequestBodyLimitLayer::new(limits.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // Outside the limit and timeout layers, whose own answers are plain text.
        .layer(axum::middleware::from_fn(problem::bare_errors_as_problems))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
