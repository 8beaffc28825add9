//! `cargo xtask bench`: measures stagewatch against the figures of its design — the rate of a
//! first ingest against a raw `COPY`, the cost of incremental passes, the detection latency
//! after a Kombo webhook, memory while ingesting, and the API's latency under load — and prints
//! a table of measured values and targets (also written as JSON). Each benchmark runs against an
//! in-process Kombo sandbox and a PostgreSQL database of its own, dropped afterwards.

mod database;
mod ingest;
mod memory;
mod raw_copy;
mod report;
mod rig;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use report::{Report, progress};

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

/// How much each benchmark does.
#[derive(Debug, Clone, Copy)]
struct Scale {
    name: &'static str,
    applications: usize,
}

impl Scale {
    fn from_args(args: &Args) -> Self {
        let mut scale = if args.quick {
            Self {
                name: "quick",
                applications: 5_000,
            }
        } else {
            Self {
                name: "medium",
                applications: 100_000,
            }
        };
        if let Some(applications) = args.applications {
            scale.applications = applications;
        }
        scale
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let scale = Scale::from_args(&args);
    let mut report = Report {
        scale: format!("{} ({} applications)", scale.name, scale.applications),
        started_at: chrono::Utc::now(),
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        figures: Vec::new(),
    };
    progress(&format!("stagewatch benchmarks, {} scale", report.scale));
    report
        .figures
        .extend(ingest::run(&args.postgres, scale.applications).await?);
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

#[allow(clippy::print_stdout)] // the report is the program's output
fn print_report(report: &Report) {
    println!("{}", report.table());
}
