//! `cargo xtask bench`: measures stagewatch against the figures of its design — the rate of a
//! first ingest against a raw `COPY`, the cost of incremental passes, the detection latency
//! after a Kombo webhook, memory while ingesting, the API's latency under load, many small
//! integrations on one process and on two replicas, outbound webhook deliveries per second, and
//! the funnel over the ingested integration — and prints
//! a table of measured values and targets (also written as JSON). Each benchmark runs against an
//! in-process Kombo sandbox and a PostgreSQL database of its own, dropped afterwards.

// The same allocator as the `stagewatch` binary, so that the figures measure what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api_load;
mod cpu;
mod database;
mod deliveries;
mod fair_copy;
mod fleet;
mod ingest;
mod job_funnel;
mod latency;
mod memory;
mod pass_watch;
mod raw_copy;
mod report;
mod rig;
mod server;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use database::BenchDatabase;
use report::{Figure, Report, progress};
use server::LiveServer;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Measures stagewatch against the figures of its design"
)]
struct Args {
    /// A small scale that finishes in about a minute.
    #[arg(long)]
    quick: bool,
    /// Applications in the ingested integration (overrides the scale's).
    #[arg(long)]
    applications: Option<usize>,
    /// Integrations of figure 6 (overrides the scale's).
    #[arg(long)]
    integrations: Option<usize>,
    /// Run only these parts (all when omitted).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// A PostgreSQL database on the server to use, where the user may create databases.
    #[arg(
        long,
        env = "STAGEWATCH_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench/report.json")]
    output: PathBuf,
}

/// The benchmark's parts, each with its own database and sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Figures 1, 2 and 4: the first pass of a large integration, incremental and idle
    /// passes, memory; and the funnel of that whole integration.
    Ingest,
    /// Figures 3 and 5: detection latency and the API under load, over the running product.
    Live,
    /// Figure 6: many small integrations, one replica then two.
    Fleet,
    /// Figure 7: outbound webhook deliveries with 1, 10 and 100 endpoints.
    Webhooks,
    /// Figure 8: one job's funnel over as many applications as the ingest.
    Funnel,
}

/// How much each benchmark does.
#[derive(Debug, Clone, Copy)]
struct Scale {
    name: &'static str,
    applications: usize,
    /// Changes timed by the detection benchmark.
    changes: usize,
    /// Changes timed again while another integration's first pass runs: few enough to end
    /// before it does.
    changes_under_load: usize,
    /// How long each API endpoint is loaded.
    load_for: Duration,
    /// Figure 6: the many small integrations.
    fleet: fleet::FleetScale,
    /// Webhook deliveries (events × endpoints) timed for each endpoint count of figure 7.
    deliveries: usize,
}

impl Scale {
    fn from_args(args: &Args) -> Self {
        let mut scale = if args.quick {
            Self {
                name: "quick",
                applications: 5_000,
                changes: 30,
                changes_under_load: 10,
                load_for: Duration::from_secs(3),
                // Shorter polls and Kombo windows, so that every phase still sees what it
                // measures in about a minute for the whole run.
                fleet: fleet::FleetScale {
                    integrations: 100,
                    steady_poll: Duration::from_secs(10),
                    kombo_window: Duration::from_secs(5),
                    saturate_for: Duration::from_secs(10),
                    capacity_for: Duration::from_secs(3),
                },
                deliveries: 2_000,
            }
        } else {
            Self {
                name: "medium",
                applications: 30_000,
                changes: 100,
                changes_under_load: 30,
                load_for: Duration::from_secs(10),
                fleet: fleet::FleetScale {
                    integrations: 1_000,
                    steady_poll: Duration::from_secs(30),
                    kombo_window: Duration::from_secs(10),
                    saturate_for: Duration::from_secs(30),
                    capacity_for: Duration::from_secs(15),
                },
                deliveries: 6_000,
            }
        };
        if let Some(applications) = args.applications {
            scale.applications = applications;
        }
        if let Some(integrations) = args.integrations {
            scale.fleet.integrations = integrations;
        }
        scale
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    // Warnings of the code under measurement (a retried Kombo read, a refused write) belong in
    // the run's output; `RUST_LOG` shows more.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "warn".into()),
                ),
        )
        .with(pass_watch::layer())
        .init();
    let args = Args::parse();
    let scale = Scale::from_args(&args);
    let mut report = Report {
        scale: format!("{} ({} applications)", scale.name, scale.applications),
        started_at: chrono::Utc::now(),
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        figures: Vec::new(),
    };
    progress(&format!("stagewatch benchmarks, {} scale", report.scale));
    let runs = |part: Part| args.only.is_empty() || args.only.contains(&part);
    if runs(Part::Ingest) {
        report
            .figures
            .extend(ingest::run(&args.postgres, scale.applications).await?);
    }
    if runs(Part::Live) {
        report.figures.extend(live(&args.postgres, scale).await?);
    }
    if runs(Part::Webhooks) {
        report
            .figures
            .extend(deliveries::run(&args.postgres, scale.deliveries).await?);
        report
            .figures
            .extend(deliveries::run_during_pass(&args.postgres, scale.applications).await?);
    }
    if runs(Part::Funnel) {
        report
            .figures
            .extend(job_funnel::run(&args.postgres, scale.applications).await?);
    }
    if runs(Part::Fleet) {
        report
            .figures
            .extend(fleet::run(&args.postgres, scale.fleet).await?);
    }
    print_report(&report);
    report.write_json(&args.output)?;
    progress(&format!("report written to {}", args.output.display()));
    if report.failures() > 0 {
        progress(&format!(
            "{} figure(s) missed their target",
            report.failures()
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Figures 3 and 5, over the running product.
async fn live(admin_url: &str, scale: Scale) -> anyhow::Result<Vec<Figure>> {
    BenchDatabase::around(admin_url, async |database| {
        progress("live: starting the API and the workers over 1000 applications");
        let server = LiveServer::start(
            database.store(10).await?,
            20,
            50,
            scale.applications,
            scale.fleet.integrations,
        )
        .await?;
        let measured = async {
            let mut figures = latency::run(&server, scale.changes, "").await?;
            figures.extend(api_load::run(&server, scale.load_for).await?);
            // Again while another integration's first pass runs, for as long as it lasts.
            let large = server.start_large_pass().await?;
            let during = format!(
                " during a first pass of {} applications",
                scale.applications
            );
            figures.extend(latency::run(&server, scale.changes_under_load, &during).await?);
            let finished = server
                .store
                .integration(&large)
                .await?
                .and_then(|record| record.last_full_pass_at);
            progress(&format!(
                "latency: the large first pass {}",
                if finished.is_some() {
                    "finished before the last change was timed: the figure covers its end and \
                     what followed; fewer changes (`changes_under_load`) keep it inside"
                } else {
                    "was still running after the last change"
                }
            ));
            // Again beside many small integrations, polled as `serve` polls them.
            server
                .wait_for_pass(&large, Duration::from_secs(600))
                .await?;
            progress(&format!(
                "live: registering {} more integrations of 10 applications, each synced every \
                 {} s",
                scale.fleet.integrations,
                server::FLEET_POLL.as_secs()
            ));
            let fleet = server.register_fleet().await?;
            let beside = format!(
                " with {fleet} more integrations registered (each synced every {} s)",
                server::FLEET_POLL.as_secs()
            );
            figures.extend(latency::run(&server, scale.changes_under_load, &beside).await?);
            anyhow::Ok(figures)
        }
        .await;
        server.stop().await;
        measured
    })
    .await
}

#[allow(clippy::print_stdout)] // the report is the program's output
fn print_report(report: &Report) {
    println!("{}", report.table());
}
