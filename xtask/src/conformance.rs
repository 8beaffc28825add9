//! `cargo xtask conformance`: Kombo's official Python SDK reads from and writes to the sandbox,
//! and fails on any response its models reject.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

use crate::python;

/// The sandbox process, stopped when dropped so a failing script leaves nothing behind.
struct RunningSandbox(Child);

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn conformance(root: &Path) -> anyhow::Result<()> {
    let python = python::ensure_venv(root, &[python::KOMBO_SDK])?;
    crate::build_workspace(root)?;
    let mut child = Command::new(crate::workspace_binary(root, "kombo-sandbox"))
        .args(["--seed", "7", "--jobs", "6", "--applications", "15"])
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start kombo-sandbox")?;
    let stdout = child.stdout.take().context("kombo-sandbox has no stdout")?;
    let sandbox = RunningSandbox(child);

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
