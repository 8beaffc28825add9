//! Gauges of the stored state, set when `/metrics` is scraped: every replica reports the same
//! values from the shared database, so dashboards and alerts aggregate them with `max`.

use std::time::Duration;

use adapters_postgres::Store;
use chrono::{DateTime, Utc};
use domain::ports::TrackerStore as _;

/// Sets the state gauges. When the database does not answer, only `stagewatch_database_up`
/// changes (to 0): the other gauges keep their last values rather than pretending all is well.
pub async fn record_state_gauges(store: &Store, now: DateTime<Utc>, default_poll: Duration) {
    let up = store.ping().await.is_ok();
    metrics::gauge!("stagewatch_database_up").set(if up { 1.0 } else { 0.0 });
    if !up {
        return;
    }
    if let Ok(integrations) = store.list_integrations().await {
        let mut failing = 0_u32;
        for integration in &integrations {
            let id = integration.id.to_string();
            let since = |at: DateTime<Utc>| (now - at).to_std().unwrap_or_default().as_secs_f64();
            let failing_for = integration.failing_since.map_or(0.0, since);
            if integration.failing_since.is_some() {
                failing += 1;
            }
            // A paused integration is not expected to sync.
            let lag = if integration.paused {
                0.0
            } else {
                integration
                    .failing_since
                    .or(integration.last_pass_finished_at)
                    .map_or_else(|| since(integration.created_at), since)
            };
            let held = if integration.deletions_held {
                store
                    .hold_stats(&integration.id)
                    .await
                    .map_or(0, |stats| stats.held)
            } else {
                0
            };
            let poll = integration.poll_interval.unwrap_or(default_poll);
            metrics::gauge!("stagewatch_integration_sync_lag_seconds", "integration" => id.clone())
                .set(lag);
            metrics::gauge!("stagewatch_integration_failing_seconds", "integration" => id.clone())
                .set(failing_for);
            metrics::gauge!("stagewatch_integration_poll_interval_seconds", "integration" => id.clone())
                .set(poll.as_secs_f64());
            #[allow(clippy::cast_precision_loss)] // a count of held rows
            metrics::gauge!("stagewatch_integration_held_deletions", "integration" => id)
                .set(held as f64);
        }
        metrics::gauge!("stagewatch_integrations_failing").set(f64::from(failing));
    }
    if let Ok(endpoints) = store.list_endpoints().await {
        for endpoint in endpoints {
            metrics::gauge!("stagewatch_webhook_endpoint_disabled", "endpoint" => endpoint.id)
                .set(if endpoint.enabled { 0.0 } else { 1.0 });
        }
    }
}
