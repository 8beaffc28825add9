//! `chaos`, run by `cargo xtask chaos`: the built `stagewatch` binary as OS processes against a
//! `kombo-sandbox` process and PostgreSQL, under SIGKILLs, several replicas, a frozen replica,
//! a database outage, Kombo's faults and a flapping webhook receiver. Each scenario runs on a
//! database of its own and ends by checking the feed against the sandbox's truth. Prints a
//! table, writes it to `<out>/report.md`, and fails when any check found a problem.
//!
//! Nothing depends on this crate; it depends on no product crate (only on the sandbox's fault
//! types), so it sees stagewatch exactly as an operator does: a binary, its configuration, its
//! HTTP API and its database.

mod checks;
mod clients;
mod db;
mod procs;
mod receiver;
mod rig;
mod scenarios;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::rig::{Options, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "Kills, freezes and starves stagewatch, then checks its feed against the sandbox"
)]
struct Args {
    /// The `stagewatch` binary.
    #[arg(long)]
    stagewatch: PathBuf,
    /// The `kombo-sandbox` binary.
    #[arg(long)]
    sandbox: PathBuf,
    /// PostgreSQL server (no database name); each scenario creates and drops its own database.
    #[arg(
        long,
        env = "CHAOS_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    database: String,
    /// Seed of every random choice (kill moments, simulated activity).
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Smaller and shorter scenarios, for development.
    #[arg(long)]
    quick: bool,
    /// Stop the PostgreSQL cluster for 2 s (`pg_ctlcluster ... stop`, then `start`) instead of
    /// cutting off the scenario's database; on by default when `CI=true`. Never on a server
    /// others are using.
    #[arg(long)]
    restart_postgres: bool,
    /// Run only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where logs and the report go.
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    let options = Options {
        stagewatch: args.stagewatch,
        sandbox: args.sandbox,
        database: args.database,
        seed: args.seed,
        quick: args.quick,
        restart_postgres: args.restart_postgres || in_ci,
        out_dir: args.out,
    };
    std::fs::create_dir_all(&options.out_dir)?;
    let names: Vec<String> = if args.only.is_empty() {
        scenarios::ALL
            .iter()
            .map(|name| (*name).to_owned())
            .collect()
    } else {
        args.only
    };

    let started = Instant::now();
    let mut outcomes = Vec::new();
    for name in &names {
        say(&format!("chaos: {name} ..."));
        let outcome = match scenarios::run(&options, name).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome {
                name: name.clone(),
                chaos: String::new(),
                faults: std::collections::BTreeMap::new(),
                events: 0,
                refused_writes: None,
                problems: vec![format!("the scenario could not run: {error:#}")],
                duration: Duration::ZERO,
            },
        };
        say(&format!(
            "chaos: {name}: {} events, {} problems, {:.0} s",
            outcome.events,
            outcome.problems.len(),
            outcome.duration.as_secs_f64()
        ));
        outcomes.push(outcome);
    }
    let report = report(&outcomes, &options, started.elapsed());
    say(&report);
    std::fs::write(options.out_dir.join("report.md"), &report)?;
    let problems: usize = outcomes.iter().map(|outcome| outcome.problems.len()).sum();
    if problems > 0 {
        anyhow::bail!(
            "{problems} problems (logs under {})",
            options.out_dir.display()
        );
    }
    Ok(())
}

#[allow(clippy::print_stdout)] // the runner's output is its report
fn say(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

fn faults_cell(outcome: &Outcome) -> String {
    let total: u64 = outcome.faults.values().sum();
    let kinds = outcome
        .faults
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{total}: {kinds}")
}

fn refused_cell(outcome: &Outcome) -> String {
    outcome.refused_writes.map_or_else(
        || "unknown (no counter)".to_owned(),
        |count| format!("{count:.0}"),
    )
}

/// The table, then every problem.
fn report(outcomes: &[Outcome], options: &Options, total: Duration) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "scenario",
        "harm done",
        "Kombo faults injected",
        "events",
        "refused writes",
        "problems",
        "time",
    ]);
    let mut markdown = String::from(
        "| scenario | harm done | Kombo faults injected | events | refused writes | problems | time |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for outcome in outcomes {
        let cells = [
            outcome.name.clone(),
            outcome.chaos.clone(),
            faults_cell(outcome),
            outcome.events.to_string(),
            refused_cell(outcome),
            outcome.problems.len().to_string(),
            format!("{:.0} s", outcome.duration.as_secs_f64()),
        ];
        let _ = writeln!(markdown, "| {} |", cells.join(" | "));
        table.add_row(cells);
    }
    let mut text = format!(
        "{table}\n\nseed {}, {}, whole run {:.0} s\n\n{markdown}",
        options.seed,
        if options.quick { "quick" } else { "full size" },
        total.as_secs_f64()
    );
    for outcome in outcomes {
        for problem in &outcome.problems {
            let _ = writeln!(text, "PROBLEM {}: {problem}", outcome.name);
        }
    }
    text
}
