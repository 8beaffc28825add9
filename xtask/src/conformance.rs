//! `cargo xtask conformance`: Kombo's official Python SDK reads from and writes to the sandbox,
//! and fails on any response its models reject; then every kind of answer the sandbox gives,
//! with and without raw `remote_data`, is validated against Kombo's public OpenAPI document
//! (which marks more fields required than the SDK).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::python;

/// Validates JSON against Kombo's OpenAPI document, pinned.
const JSONSCHEMA: &str = "jsonschema==4.26.0";

pub(crate) fn conformance(root: &Path) -> anyhow::Result<()> {
    let python = python::ensure_venv(root, &[python::KOMBO_SDK, JSONSCHEMA])?;
    crate::build_workspace(root)?;
    let scripts = root.join("crates/kombo-sandbox/conformance");
    let (sandbox, environment) = crate::fuzz::start_sandbox(root, &[])?;
    run_script(
        root,
        &python,
        &scripts.join("sdk_conformance.py"),
        &environment,
    )?;
    run_script(
        root,
        &python,
        &scripts.join("openapi_conformance.py"),
        &environment,
    )?;
    drop(sandbox);
    let (sandbox, environment) = crate::fuzz::start_sandbox(root, &["--remote-data"])?;
    run_script(
        root,
        &python,
        &scripts.join("openapi_conformance.py"),
        &environment,
    )?;
    drop(sandbox);
    Ok(())
}

fn run_script(
    root: &Path,
    python: &Path,
    script: &Path,
    environment: &[(String, String)],
) -> anyhow::Result<()> {
    eprintln_command(script);
    let status = Command::new(python)
        .arg(script)
        .envs(environment.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .status()
        .with_context(|| format!("could not run {}", script.display()))?;
    if !status.success() {
        bail!("{} failed with {status}", script.display());
    }
    Ok(())
}

#[allow(clippy::print_stderr)] // xtask talks to a developer's terminal
fn eprintln_command(script: &Path) {
    eprintln!("$ python {}", script.display());
}
