//! `cargo xtask browser`: the console's browser test. Checks that Debian's Chromium and its
//! `WebDriver` are installed (`apt-get install chromium chromium-driver`), installs axe-core from
//! npm into `target/browser-tools` (pinned by `xtask/browser/package-lock.json`), and runs
//! `crates/app-server/tests/console_browser.rs`, which writes screenshots of every page to
//! `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub(crate) fn browser(root: &Path) -> anyhow::Result<()> {
    for (program, package) in [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ] {
        let found = Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            bail!(
                "`{program}` is not installed: the console's browser test needs Debian's package \
                 `{package}` (`apt-get install chromium chromium-driver`)"
            );
        }
    }
    let tools = target_dir(root).join("browser-tools");
    std::fs::create_dir_all(&tools).with_context(|| format!("creating {}", tools.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(root.join("xtask/browser").join(file), tools.join(file))
            .with_context(|| format!("copying {file}"))?;
    }
    let axe = tools.join("node_modules/axe-core/axe.min.js");
    if !axe.exists() {
        crate::run(
            &tools,
            "npm",
            &["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        )?;
    }
    crate::run(
        root,
        "cargo",
        &[
            "test",
            // The whole workspace's features, as `cargo test --workspace` built them: asking
            // for one package would build its dependencies again with fewer features.
            "--workspace",
            "--all-features",
            "--test",
            "console_browser",
            "--",
            "--ignored",
            "--nocapture",
        ],
    )
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}
