//! Project automation as a plain Rust program, run with `cargo xtask <command>`.

mod codegen;
mod conformance;
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
    /// Everything CI checks: formatting, generated code up to date, clippy with warnings denied,
    /// the whole test suite, and the Kombo SDK conformance run.
    Test,
    /// Runs Kombo's official Python SDK against the sandbox and fails on any response it rejects.
    Conformance,
    /// Measures the figures of the design (ingest, incremental passes, detection latency,
    /// memory, API latency) against a sandbox and PostgreSQL; never part of `test`.
    Bench {
        /// A small scale that finishes in about a minute.
        #[arg(long)]
        quick: bool,
        /// Applications in the ingested integration.
        #[arg(long)]
        applications: Option<usize>,
    },
    /// Regenerates crates/kombo-schemas/schemas/ from Kombo's official Python SDK.
    Schemas,
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
        Task::Schemas => schemas(&root),
        Task::Codegen { check } => codegen::run(&root, check),
        Task::Conformance => conformance::conformance(&root),
        Task::Bench {
            quick,
            applications,
        } => bench(&root, quick, applications),
    }
}

fn test(root: &Path) -> anyhow::Result<()> {
    run(root, "cargo", &["fmt", "--all", "--", "--check"])?;
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
    conformance::conformance(root)
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

fn bench(root: &Path, quick: bool, applications: Option<usize>) -> anyhow::Result<()> {
    let mut args = vec!["run", "--release", "--package", "bench", "--"];
    if quick {
        args.push("--quick");
    }
    let applications = applications.map(|count| count.to_string());
    if let Some(count) = &applications {
        args.extend(["--applications", count]);
    }
    run(root, "cargo", &args)
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
