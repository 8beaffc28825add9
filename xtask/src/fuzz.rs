//! `cargo xtask fuzz-api`: schemathesis, a property-based API
//! fuzzer, generates requests from `docs/openapi.json` for every operation, valid and invalid,
//! and sends them to a real `stagewatch serve` (debug build, SQLite in a temporary folder, a
//! known API key) in front of a `kombo-sandbox`. Every one of its checks runs: no server error,
//! and every answer's status, content type, headers and body as documented, valid input
//! accepted, invalid input refused. Bounded by a number of examples per operation.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::python;

/// The fuzzer, pinned: its checks and generators change between versions.
pub(crate) const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Generated cases per operation and phase: enough to find a missing status or limit, small
/// enough for about three minutes on two cores.
const MAX_EXAMPLES: &str = "25";
/// The fuzzer's seed, so that a failure can be reproduced.
const SEED: &str = "20261202";
const API_KEY: &str = "sw_fuzz_key";

/// A child process, killed when dropped so that a failure leaves nothing behind.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kombo-sandbox` (with `extra` arguments) and returns it with the `KEY=value` lines it
/// printed (its URL, API key and integration ids).
pub(crate) fn start_sandbox(
    root: &Path,
    extra: &[&str],
) -> anyhow::Result<(Running, Vec<(String, String)>)> {
    let mut child = Command::new(crate::workspace_binary(root, "kombo-sandbox"))
        .args(["--seed", "7", "--jobs", "6", "--applications", "15"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start kombo-sandbox")?;
    let stdout = child.stdout.take().context("kombo-sandbox has no stdout")?;
    let sandbox = Running(child);
    // The binary prints KEY=value lines; the last one names the integrations.
    let mut environment = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading kombo-sandbox's output")?;
        if let Some((key, value)) = line.split_once('=') {
            environment.push((key.to_owned(), value.to_owned()));
        }
        if line.starts_with("KOMBO_INTEGRATION_IDS=") {
            break;
        }
    }
    if environment.len() < 4 {
        bail!("kombo-sandbox stopped before printing where it listens");
    }
    Ok((sandbox, environment))
}

pub(crate) fn value<'a>(environment: &'a [(String, String)], key: &str) -> anyhow::Result<&'a str> {
    environment
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .with_context(|| format!("kombo-sandbox did not print {key}"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `serve` answers `/readyz`, at most a minute.
fn wait_until_ready(python: &Path, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let probe = format!(
        "import sys, urllib.request\ntry:\n    urllib.request.urlopen('{base}/readyz', timeout=2)\nexcept Exception:\n    sys.exit(1)\n"
    );
    while started.elapsed() < Duration::from_secs(60) {
        let ready = Command::new(python)
            .args(["-c", &probe])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("stagewatch serve did not become ready at {base} within a minute")
}

pub(crate) fn fuzz_api(root: &Path) -> anyhow::Result<()> {
    let python = python::ensure_venv(root, &[SCHEMATHESIS])?;
    crate::build_workspace(root)?;
    let (_sandbox, environment) = start_sandbox(root, &[])?;
    let scratch = tempfile::Builder::new()
        .prefix("stagewatch-fuzz-")
        .tempdir()
        .context("could not create a temporary folder")?;
    let stagewatch = crate::workspace_binary(root, "stagewatch");
    let mut hasher = Command::new(&stagewatch)
        .args(["api-key", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not run stagewatch api-key hash")?;
    std::io::Write::write_all(
        &mut hasher.stdin.take().context("no stdin")?,
        API_KEY.as_bytes(),
    )?;
    let hash = String::from_utf8(hasher.wait_with_output()?.stdout)?
        .trim()
        .to_owned();
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(scratch.path().join("serve.log"))?;
    let database = format!(
        "sqlite://{}?mode=rwc",
        scratch.path().join("stagewatch.db").display()
    );
    let server = Running(
        Command::new(&stagewatch)
            .arg("serve")
            .current_dir(scratch.path())
            .env("STAGEWATCH_DATABASE__URL", database)
            .env("STAGEWATCH_API__LISTEN", format!("127.0.0.1:{port}"))
            .env("STAGEWATCH_API__KEY_HASHES", format!("[\"{hash}\"]"))
            // A long-polling read may not hold a fuzzing worker for long.
            .env("STAGEWATCH_API__MAX_FEED_WAIT", "1s")
            .env(
                "STAGEWATCH_KOMBO__BASE_URL",
                value(&environment, "KOMBO_SANDBOX_URL")?,
            )
            .env(
                "STAGEWATCH_KOMBO__API_KEY",
                value(&environment, "KOMBO_API_KEY")?,
            )
            .env(
                "STAGEWATCH_KOMBO__WEBHOOK_SECRET",
                "fuzz-kombo-webhook-secret",
            )
            // Generated endpoint URLs are never called: traffic stays on this machine.
            .env("STAGEWATCH_WEBHOOKS__WORKERS", "false")
            .env("STAGEWATCH_LOG__FORMAT", "json")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("could not start stagewatch serve")?,
    );
    wait_until_ready(&python, &base)?;

    let schemathesis = python.with_file_name("schemathesis");
    let document = root.join("docs").join("openapi.json");
    let report = scratch.path().join("report");
    let config = root.join("xtask").join("schemathesis.toml");
    let arguments = [
        "--config-file",
        &config.to_string_lossy(),
        "run",
        &document.to_string_lossy(),
        "--url",
        &base,
        "--checks",
        "all",
        "--header",
        &format!("Authorization: Bearer {API_KEY}"),
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        // One worker: CPython 3.11's parser is not safe for the fuzzer's threads ("AST
        // constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        &report.to_string_lossy(),
    ];
    crate::eprint_command(&schemathesis.to_string_lossy(), &arguments);
    let started = Instant::now();
    let status = Command::new(&schemathesis)
        .args(arguments)
        .current_dir(root)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .status()
        .context("could not run schemathesis")?;
    drop(server);
    crate::eprint_line(&format!(
        "schemathesis ran for {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    if !status.success() {
        let log = std::fs::read_to_string(scratch.path().join("serve.log")).unwrap_or_default();
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("\"level\":\"ERROR\""))
            .take(20)
            .collect();
        if !errors.is_empty() {
            crate::eprint_line(&format!("server errors:\n{}", errors.join("\n")));
        }
        bail!("schemathesis found answers that do not match docs/openapi.json ({status})");
    }
    Ok(())
}
