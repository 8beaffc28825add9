//! `cargo xtask boundaries`: the dependency rule of the architecture, checked on the real
//! dependency graph (`cargo tree`). Dependencies point inward: the domain depends on no other
//! crate of the workspace and on no runtime, HTTP or SQL crate; the adapters depend on the
//! domain, never on each other or on the binary.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// What each crate must not depend on (normal dependencies, transitively).
const RULES: &[(&str, &[&str])] = &[
    (
        "domain",
        &[
            "adapters-kombo",
            "adapters-postgres",
            "app-server",
            "kombo-sandbox",
            "tokio",
            "reqwest",
            "hyper",
            "axum",
            "sqlx",
            "sea-orm",
            "tracing",
        ],
    ),
    (
        "adapters-kombo",
        &["adapters-postgres", "app-server", "sqlx", "sea-orm", "axum"],
    ),
    (
        "adapters-postgres",
        &["adapters-kombo", "app-server", "reqwest", "axum"],
    ),
    (
        "kombo-sandbox",
        &[
            "domain",
            "adapters-kombo",
            "adapters-postgres",
            "app-server",
        ],
    ),
];

/// The names of every crate `package` depends on, directly or not (normal dependencies only).
fn dependencies(root: &Path, package: &str) -> anyhow::Result<Vec<String>> {
    let output = Command::new("cargo")
        .args([
            "tree", "--quiet", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .current_dir(root)
        .output()
        .context("could not run cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree -p {package} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1) // the package itself
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Every broken rule of `rules` as `crate → dependency`.
fn violations(root: &Path, rules: &[(&str, &[&str])]) -> anyhow::Result<Vec<String>> {
    let mut broken = Vec::new();
    for (package, forbidden) in rules {
        let found = dependencies(root, package)?;
        for name in *forbidden {
            if found.iter().any(|dependency| dependency == name) {
                broken.push(format!("{package} → {name}"));
            }
        }
    }
    Ok(broken)
}

#[allow(clippy::print_stderr)] // xtask talks to a developer's terminal
pub(crate) fn boundaries(root: &Path) -> anyhow::Result<()> {
    let broken = violations(root, RULES)?;
    if !broken.is_empty() {
        bail!(
            "dependencies that point outward (docs/architecture.md): {}",
            broken.join(", ")
        );
    }
    eprintln!(
        "dependency rule holds for {}",
        RULES
            .iter()
            .map(|(package, _)| *package)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        crate::workspace_root()
    }

    #[test]
    fn the_workspace_keeps_the_rule() {
        assert_eq!(violations(&root(), RULES).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_dependency_the_rule_forbids_is_reported() {
        let rules: &[(&str, &[&str])] = &[("domain", &["serde", "no-such-crate"])];
        assert_eq!(violations(&root(), rules).unwrap(), ["domain → serde"]);
    }
}
