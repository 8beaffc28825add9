//! The janitor: purges bookkeeping that would otherwise grow forever — handled Kombo webhook
//! ids, idempotency keys, attempts of finished deliveries, and (when configured) old events of
//! the feed — and trims the Kombo client's per-integration state, on a schedule.

use std::sync::Arc;
use std::time::Duration;

use adapters_kombo::KomboClient;
use adapters_postgres::Store;
use chrono::{DateTime, Utc};
use domain::ports::{Clock, StoreError};
use tokio_util::sync::CancellationToken;

use crate::config::RetentionSettings;

/// What one round of the janitor removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    pub kombo_webhooks: u64,
    pub idempotency_keys: u64,
    pub delivery_attempts: u64,
    pub events: u64,
}

/// Runs the purges of [`RetentionSettings`] every `retention.every`.
pub struct Janitor {
    store: Store,
    kombo: Option<Arc<KomboClient>>,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
}

impl std::fmt::Debug for Janitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Janitor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Janitor {
    pub fn new(
        store: Store,
        kombo: Option<Arc<KomboClient>>,
        clock: Arc<dyn Clock>,
        settings: RetentionSettings,
    ) -> Self {
        Self {
            store,
            kombo,
            clock,
            settings,
        }
    }

    /// Purges once at start and then every `retention.every`, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.purge_once().await {
                Ok(purged) => tracing::info!(
                    kombo_webhooks = purged.kombo_webhooks,
                    idempotency_keys = purged.idempotency_keys,
                    delivery_attempts = purged.delivery_attempts,
                    events = purged.events,
                    "retention purge done"
                ),
                // The next round tries again; nothing is lost by waiting.
                Err(error) => tracing::warn!(%error, "retention purge failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.every) => {}
            }
        }
    }

    /// One round of every purge.
    pub async fn purge_once(&self) -> Result<Purged, StoreError> {
        let now = self.clock.now();
        let settings = &self.settings;
        let purged = Purged {
            kombo_webhooks: self
                .store
                .purge_kombo_webhooks(before(now, settings.kombo_webhooks))
                .await?,
            idempotency_keys: self
                .store
                .purge_idempotency_keys(before(now, settings.idempotency_keys))
                .await?,
            delivery_attempts: self
                .store
                .purge_delivery_attempts(before(now, settings.delivery_attempts))
                .await?,
            events: if settings.feed_max_age.is_zero() {
                0
            } else {
                self.store
                    .prune_feed(before(now, settings.feed_max_age))
                    .await?
            },
        };
        for (kind, count) in [
            ("kombo_webhooks", purged.kombo_webhooks),
            ("idempotency_keys", purged.idempotency_keys),
            ("delivery_attempts", purged.delivery_attempts),
            ("events", purged.events),
        ] {
            metrics::counter!("stagewatch_retention_purged_total", "kind" => kind).increment(count);
        }
        if let Some(kombo) = &self.kombo {
            let kept = kombo.prune_idle();
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            metrics::gauge!("stagewatch_kombo_integrations_tracked").set(kept as f64);
        }
        Ok(purged)
    }
}

fn before(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    now - super::schedule::chrono_duration(age)
}
