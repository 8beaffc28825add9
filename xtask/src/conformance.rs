//! `cargo xtask conformance`: Kombo's official Python SDK reads from and writes to the sandbox,
//! and fails on any response its models reject.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::python;

pub(crate) fn conformance(root: &Path) -> anyhow::Result<()> {
    let python = python::ensure_venv(root, &[python::KOMBO_SDK])?;
    crate::build_workspace(root)?;
    let (sandbox, environment) = crate::fuzz::start_sandbox(root)?;

    let script = root.join("crates/kombo-sandbox/conformance/sdk_conformance.py");
    eprintln_command(&script);
    let status = Command::new(&python)
        .arg(&script)
        .envs(environment)
        .current_dir(root)
        .status()
        .context("could not run the conformance script")?;
    drop(sandbox);
    if !status.success() {
        bail!("the Kombo SDK conformance script failed with {status}");
    }
    Ok(())
}

#[allow(clippy::print_stderr)] // xtask talks to a developer's terminal
fn eprintln_command(script: &Path) {
    eprintln!("$ python {}", script.display());
}
