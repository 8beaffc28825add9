//! `docs/openapi.json`: the HTTP API's OpenAPI document, generated from the server's code
//! (utoipa) by running `stagewatch openapi`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub(crate) const DOCUMENT: &str = "docs/openapi.json";

/// Writes `docs/openapi.json`, or with `check` fails when it differs from the code's document.
#[allow(clippy::print_stderr)] // xtask talks to a developer's terminal
pub(crate) fn run(root: &Path, check: bool) -> anyhow::Result<()> {
    crate::build_workspace(root)?;
    let output = Command::new(crate::workspace_binary(root, "stagewatch"))
        .arg("openapi")
        .current_dir(root)
        .output()
        .context("could not run `stagewatch openapi`")?;
    if !output.status.success() {
        bail!(
            "`stagewatch openapi` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let generated = String::from_utf8(output.stdout).context("the document is not UTF-8")?;
    let path = root.join(DOCUMENT);
    if check {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != generated {
            bail!("{DOCUMENT} is stale (run `cargo xtask codegen`)");
        }
        eprintln!("{DOCUMENT} is up to date");
        return Ok(());
    }
    std::fs::write(&path, generated).with_context(|| format!("could not write {DOCUMENT}"))?;
    eprintln!("wrote {DOCUMENT}");
    Ok(())
}
