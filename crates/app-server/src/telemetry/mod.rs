//! The one place that sets up logs and metrics.

mod state;

use std::io::IsTerminal;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

pub use state::record_state_gauges;

/// Installs the global tracing subscriber. `RUST_LOG`, when set, overrides `log.level`.
pub fn init_tracing(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    // A second initialisation (tests, the demo inside a test) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

/// Buckets of every `*_seconds` histogram: from a rate-limit wait of a millisecond to a first
/// pass of an hour.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
];

/// Installs the Prometheus recorder and returns the handle that renders `/metrics`.
pub fn init_metrics() -> PrometheusHandle {
    // Histograms, not summaries: quantiles over several replicas and over time need buckets.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .expect("the buckets are not empty")
        .build_recorder();
    let handle = recorder.handle();
    // Only the first recorder installed in a process receives the metrics; later calls (tests
    // starting several servers) render an empty but valid page instead of failing.
    let _ = metrics::set_global_recorder(recorder);
    describe_metrics();
    handle
}

fn describe_metrics() {
    metrics::describe_counter!("stagewatch_sync_passes_total", "Sync passes by outcome");
    metrics::describe_counter!(
        "stagewatch_applications_seen_total",
        "Applications read from Kombo by sync passes"
    );
    metrics::describe_counter!("stagewatch_events_total", "Events appended, by type");
    metrics::describe_counter!(
        "stagewatch_fenced_writes_total",
        "Writes of a pass refused because another claim took its integration, by operation"
    );
    // Exported from the start, so that a scrape tells "none refused" from "not counted".
    for operation in [
        "update_integration",
        "apply_page",
        "release_held",
        "complete_pass",
        "record_failure",
    ] {
        metrics::counter!("stagewatch_fenced_writes_total", "operation" => operation).increment(0);
    }
    metrics::describe_counter!(
        "stagewatch_http_refused_total",
        "Requests refused to protect the service (bad API keys, forged Kombo webhooks, oversized or too deep bodies, non-public webhook addresses), by reason"
    );
    metrics::describe_histogram!("stagewatch_sync_pass_seconds", "Duration of sync passes");
    metrics::describe_gauge!(
        "stagewatch_integrations_syncing",
        "Integrations being synced by this process"
    );
    metrics::describe_gauge!(
        "stagewatch_database_up",
        "1 when the database answered at the last scrape, else 0"
    );
    metrics::describe_gauge!(
        "stagewatch_integration_sync_lag_seconds",
        "Time since the integration's last successful pass (or since it was registered)"
    );
    metrics::describe_gauge!(
        "stagewatch_integration_failing_seconds",
        "How long the integration's passes have been failing; 0 when they succeed"
    );
    metrics::describe_gauge!(
        "stagewatch_integration_poll_interval_seconds",
        "The integration's poll interval"
    );
    metrics::describe_gauge!(
        "stagewatch_integration_held_deletions",
        "Deletions held back by the mass-deletion guard, waiting for an operator"
    );
    metrics::describe_gauge!(
        "stagewatch_integrations_failing",
        "Integrations whose passes are failing"
    );
    metrics::describe_gauge!(
        "stagewatch_webhook_endpoint_disabled",
        "1 for a disabled webhook endpoint, else 0"
    );
}
