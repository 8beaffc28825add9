//! A Python virtual environment under `target/`, for the tools that need Kombo's official SDK.
//! A fresh machine needs only `python3`.

use std::path::{Path, PathBuf};

use crate::run;

/// Kombo's Python SDK, pinned: the schemas and the conformance script are tied to this version.
pub(crate) const KOMBO_SDK: &str = "kombo==1.4.0";

/// The environment's folder.
pub(crate) fn venv_dir(root: &Path) -> PathBuf {
    root.join("target").join("python-venv")
}

/// Creates the environment when missing and installs `packages` into it; returns its Python.
pub(crate) fn ensure_venv(root: &Path, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let dir = venv_dir(root);
    let python = dir.join("bin").join("python");
    if !python.exists() {
        run(root, "python3", &["-m", "venv", &dir.to_string_lossy()])?;
    }
    let marker = dir.join(format!(
        "installed-{}",
        packages.join("+").replace(['=', '/'], "_")
    ));
    if !marker.exists() {
        let mut args = vec![
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ];
        args.extend_from_slice(packages);
        run(root, &python.to_string_lossy(), &args)?;
        std::fs::write(&marker, "")?;
    }
    Ok(python)
}
