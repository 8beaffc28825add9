//! Building and starting the API server from the configuration.

use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::Store;
use domain::ports::{AtsGateway, Clock};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::auth::ApiKeys;
use super::{AppState, HttpLimits, router};
use crate::config::Settings;

/// What the API needs from the rest of the process.
#[derive(Clone)]
pub struct ApiParts {
    pub store: Store,
    pub ats: Arc<dyn AtsGateway>,
    pub clock: Arc<dyn Clock>,
    pub sync_waker: Arc<Notify>,
    pub metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for ApiParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiParts").finish_non_exhaustive()
    }
}

/// Binds `api.listen` (or `listen` when given) and serves until `shutdown`; returns the bound
/// address and the server task.
pub async fn start(
    settings: &Settings,
    parts: ApiParts,
    listen: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
) -> anyhow::Result<(
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let address = listen.unwrap_or(settings.api.listen);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("could not listen on {address} (api.listen): {e}"))?;
    let bound = listener.local_addr()?;
    if settings.api.key_hashes.is_empty() {
        tracing::warn!(
            "api.key_hashes is empty: every API call is refused; create a key with `stagewatch api-key new`"
        );
    }
    // A long-polling feed read ends before the request timeout does.
    let max_feed_wait = settings.api.max_feed_wait.min(
        settings
            .api
            .request_timeout
            .saturating_sub(Duration::from_secs(1)),
    );
    let state = AppState {
        store: parts.store,
        ats: parts.ats,
        clock: parts.clock,
        sync_waker: parts.sync_waker,
        kombo_webhook_secret: settings.kombo.webhook_secret.clone(),
        max_feed_wait,
        allow_private_webhook_urls: settings.webhooks.allow_private_urls,
        secret_rotation_overlap: settings.webhooks.secret_rotation_overlap,
        default_poll_interval: settings.sync.poll_interval,
        metrics: parts.metrics,
        rejection_reasons: Arc::default(),
    };
    let app = router(
        state,
        ApiKeys::from_hex(&settings.api.key_hashes),
        &HttpLimits {
            body_limit_bytes: settings.api.body_limit_bytes,
            request_timeout: settings.api.request_timeout,
        },
    );
    tracing::info!(address = %bound, "HTTP API listening");
    let task = tokio::spawn(super::serve(listener, app, shutdown));
    Ok((bound, task))
}
