//! Project automation as a plain Rust program, run with `cargo xtask <command>`.

mod boundaries;
mod browser;
mod codegen;
mod conformance;
mod deploy;
mod fuzz;
mod python;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "stagewatch's project automation")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Everything CI checks: formatting, the dependency rule, clippy with warnings denied, the
    /// whole test suite, generated code up to date, the Kombo conformance run, the API fuzzer,
    /// the console in a real browser and the checks of deploy/.
    Test,
    /// Drives the web console in Debian's headless Chromium (sign-in, live events, funnels,
    /// timelines, held deletions, replays, a narrow screen, a cross-site form) with an
    /// accessibility check of every page; screenshots go to target/console-screenshots/.
    Browser,
    /// Checks that dependencies point inward (the domain depends on no adapter, runtime, HTTP
    /// or SQL crate; the adapters not on each other).
    Boundaries,
    /// Runs Kombo's official Python SDK against the sandbox and fails on any response it
    /// rejects; then validates the sandbox's answers against Kombo's OpenAPI document.
    Conformance,
    /// Fuzzes every operation of docs/openapi.json against a running server with schemathesis,
    /// and fails on any answer the document does not describe.
    FuzzApi,
    /// Measures the figures of the design (ingest, incremental passes, detection latency,
    /// memory, API latency) against a sandbox and PostgreSQL; never part of `test`.
    Bench {
        /// A small scale that finishes in about a minute.
        #[arg(long)]
        quick: bool,
        /// Applications in the ingested integration.
        #[arg(long)]
        applications: Option<usize>,
        /// Further options of the benchmark binary, e.g. `--only fleet --integrations 500`
        /// (`cargo run -p bench -- --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        options: Vec<String>,
    },
    /// Runs the built `stagewatch` binary under SIGKILLs, several replicas, a frozen replica, a
    /// PostgreSQL outage, Kombo's faults and a flapping webhook receiver, then checks the feed
    /// against the sandbox (docs/reliability.md). Needs PostgreSQL at 127.0.0.1:5432.
    Chaos {
        /// Smaller and shorter scenarios, for development.
        #[arg(long)]
        quick: bool,
        /// Restart the whole PostgreSQL cluster instead of cutting off the scenario's database
        /// (on by default when `CI=true`; never on a server others are using).
        #[arg(long)]
        restart_postgres: bool,
        /// Run only these scenarios (comma-separated).
        #[arg(long)]
        only: Option<String>,
        /// Seed of the kill moments and the simulated activity.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Regenerates crates/kombo-schemas/schemas/ from Kombo's official Python SDK and Kombo's
    /// OpenAPI document.
    Schemas,
    /// Checks deploy/ offline: hadolint, the compose schema, the Helm chart rendered and
    /// validated against Kubernetes' schemas, every STAGEWATCH_* variable, and the runtime
    /// contract of the binary.
    Deploy,
    /// Generates the Kombo adapter's wire types from the schemas, and docs/openapi.json from the
    /// server's code.
    Codegen {
        /// Fail when the checked-in code is stale instead of rewriting it.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Task::Test => test(&root),
        Task::Boundaries => boundaries::boundaries(&root),
        Task::Browser => browser::browser(&root),
        Task::Schemas => schemas(&root),
        Task::Codegen { check } => codegen::run(&root, check),
        Task::Conformance => conformance::conformance(&root),
        Task::Deploy => deploy::deploy(&root),
        Task::FuzzApi => fuzz::fuzz_api(&root),
        Task::Bench {
            quick,
            applications,
            options,
        } => bench(&root, quick, applications, &options),
        Task::Chaos {
            quick,
            restart_postgres,
            only,
            seed,
        } => chaos(&root, quick, restart_postgres, only, seed),
    }
}

fn test(root: &Path) -> anyhow::Result<()> {
    run(root, "cargo", &["fmt", "--all", "--", "--check"])?;
    boundaries::boundaries(root)?;
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run(root, "cargo", &["test", "--workspace", "--all-features"])?;
    // After the tests, whose build the generators and the conformance run reuse.
    codegen::run(root, true)?;
    conformance::conformance(root)?;
    fuzz::fuzz_api(root)?;
    browser::browser(root)?;
    deploy::deploy(root)
}

/// Builds every target of the workspace with the features the test run uses, so that after
/// `cargo test` this costs nothing and the binaries in `target/debug` are current.
pub(crate) fn build_workspace(root: &Path) -> anyhow::Result<()> {
    run(
        root,
        "cargo",
        &[
            "build",
            "--quiet",
            "--workspace",
            "--all-features",
            "--all-targets",
        ],
    )
}

/// A binary built by [`build_workspace`].
pub(crate) fn workspace_binary(root: &Path, name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target
        .join("debug")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn bench(
    root: &Path,
    quick: bool,
    applications: Option<usize>,
    options: &[String],
) -> anyhow::Result<()> {
    let mut args = vec!["run", "--release", "--package", "bench", "--"];
    if quick {
        args.push("--quick");
    }
    let applications = applications.map(|count| count.to_string());
    if let Some(count) = &applications {
        args.extend(["--applications", count]);
    }
    args.extend(options.iter().map(String::as_str));
    // A missed target is a result, not an error: the table and its one-line summary say it,
    // and the exit status carries it.
    let status = Command::new("cargo")
        .args(&args)
        .current_dir(root)
        .status()
        .context("could not run cargo")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

fn chaos(
    root: &Path,
    quick: bool,
    restart_postgres: bool,
    only: Option<String>,
    seed: Option<u64>,
) -> anyhow::Result<()> {
    // After `cargo xtask test` this builds nothing.
    build_workspace(root)?;
    let stagewatch = workspace_binary(root, "stagewatch");
    let sandbox = workspace_binary(root, "kombo-sandbox");
    let out = workspace_binary(root, "chaos")
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| root.join("target/chaos"), |target| target.join("chaos"));
    let mut args = vec![
        "--stagewatch".to_owned(),
        stagewatch.to_string_lossy().into_owned(),
        "--sandbox".to_owned(),
        sandbox.to_string_lossy().into_owned(),
        "--out".to_owned(),
        out.to_string_lossy().into_owned(),
    ];
    if quick {
        args.push("--quick".to_owned());
    }
    if restart_postgres {
        args.push("--restart-postgres".to_owned());
    }
    if let Some(only) = only {
        args.extend(["--only".to_owned(), only]);
    }
    if let Some(seed) = seed {
        args.extend(["--seed".to_owned(), seed.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(
        root,
        &workspace_binary(root, "chaos").to_string_lossy(),
        &args,
    )
}

fn schemas(root: &Path) -> anyhow::Result<()> {
    let python = python::ensure_venv(root, &[python::KOMBO_SDK])?;
    let script = root.join("crates/kombo-schemas/extract-schemas.py");
    run(
        root,
        &python.to_string_lossy(),
        &[&script.to_string_lossy()],
    )
}

/// Echoes a command about to run.
#[allow(clippy::print_stderr)] // xtask talks to a developer's terminal
pub(crate) fn eprint_command(program: &str, args: &[&str]) {
    eprintln!("$ {program} {}", args.join(" "));
}

/// Prints a line of progress.
#[allow(clippy::print_stderr)] // xtask talks to a developer's terminal
pub(crate) fn eprint_line(line: &str) {
    eprintln!("{line}");
}

/// Runs a command in `dir`, echoing it first, and fails when it fails.
#[allow(clippy::print_stderr)] // xtask talks to a developer's terminal
pub(crate) fn run(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("could not start {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
