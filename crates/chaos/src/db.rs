//! The scenario's own PostgreSQL database, created fresh and dropped after, driven with `psql`
//! (no database driver to build; the statements are few and small).

use std::process::Command;

use anyhow::{Context, bail};

/// A database of its own for one scenario, dropped when this is dropped.
#[derive(Debug)]
pub(crate) struct Database {
    /// `postgres://user@host:port` without a database name.
    server: String,
    pub(crate) name: String,
}

impl Database {
    pub(crate) fn create(server: &str, name: &str) -> anyhow::Result<Self> {
        let database = Self {
            server: server.trim_end_matches('/').to_owned(),
            name: name.to_owned(),
        };
        database.admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))?;
        database.admin(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(database)
    }

    /// The URL stagewatch connects with.
    pub(crate) fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Runs SQL on the maintenance database `postgres`.
    pub(crate) fn admin(&self, sql: &str) -> anyhow::Result<String> {
        psql(&format!("{}/postgres", self.server), sql)
    }

    /// Runs SQL on the scenario's database; answers its unaligned, tuples-only output.
    pub(crate) fn query(&self, sql: &str) -> anyhow::Result<String> {
        psql(&self.url(), sql)
    }

    /// Cuts the database off: no new connections, every open one terminated. Only this
    /// database's sessions are touched; other users of the server go on.
    pub(crate) fn cut_off(&self) -> anyhow::Result<u32> {
        self.admin(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS false",
            self.name
        ))?;
        self.terminate_backends()
    }

    pub(crate) fn terminate_backends(&self) -> anyhow::Result<u32> {
        let terminated = self.admin(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ))?;
        Ok(terminated.trim().parse().unwrap_or(0))
    }

    pub(crate) fn reconnect(&self) -> anyhow::Result<()> {
        self.admin(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
            self.name
        ))?;
        Ok(())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.reconnect();
        let _ = self.admin(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ));
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let output = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .context("could not run psql (the PostgreSQL client)")?;
    if !output.status.success() {
        bail!(
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Restarts the whole PostgreSQL cluster, as a real outage does: stopped, left down for
/// `down_for` (a bare `restart` can be quicker than a readiness probe's interval, so the outage
/// would go unseen), then started. Only in CI or on request: other users of a developer's
/// server would lose their connections.
pub(crate) fn restart_cluster(down_for: std::time::Duration) -> anyhow::Result<()> {
    let versions = std::fs::read_dir("/etc/postgresql")
        .context("no /etc/postgresql: cannot find the cluster to restart")?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    let version = versions
        .first()
        .context("no PostgreSQL version under /etc/postgresql")?;
    let pg_ctlcluster = |action: &str| -> anyhow::Result<()> {
        let status = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", version, "main", action])
            .status()
            .context("could not run pg_ctlcluster")?;
        if !status.success() {
            bail!("pg_ctlcluster {version} main {action} failed with {status}");
        }
        Ok(())
    };
    pg_ctlcluster("stop")?;
    std::thread::sleep(down_for);
    pg_ctlcluster("start")
}
