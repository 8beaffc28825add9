//! The one place that sets up logs and metrics.

use std::io::IsTerminal;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

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

/// Installs the Prometheus recorder and returns the handle that renders `/metrics`.
pub fn init_metrics() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new().build_recorder();
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
    metrics::describe_histogram!("stagewatch_sync_pass_seconds", "Duration of sync passes");
    metrics::describe_gauge!(
        "stagewatch_integrations_syncing",
        "Integrations being synced by this process"
    );
}
