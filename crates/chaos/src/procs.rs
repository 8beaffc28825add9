//! The child processes of a scenario: the sandbox and the stagewatch replicas. Every child is
//! held by a [`Proc`], which kills it when dropped, so an error or a panic leaves nothing running.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running child, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
}

impl Proc {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let child = command
            .stdin(Stdio::null())
            .stdout(append(log)?)
            .stderr(append(log)?)
            .spawn()
            .with_context(|| format!("could not start {command:?}"))?;
        Ok(Self { child })
    }

    /// Starts `command` with stdout piped to the caller and stderr appended to `log`.
    pub(crate) fn spawn_piped(
        mut command: Command,
        log: &Path,
    ) -> anyhow::Result<(Self, ChildStdout)> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append(log)?)
            .spawn()
            .with_context(|| format!("could not start {command:?}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok((Self { child }, stdout))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) with `kill(1)`, which needs no unsafe code.
    pub(crate) fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .context("could not run kill")?;
        if !status.success() {
            bail!("kill -s {name} {} failed", self.pid());
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("could not open {}", path.display()))
}

/// A free loopback port (bound, read, released; the child binds it right after).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Where the sandbox listens, as it prints it.
#[derive(Debug, Clone)]
pub(crate) struct SandboxInfo {
    pub(crate) base_url: String,
    pub(crate) control_url: String,
    pub(crate) api_key: String,
    pub(crate) integrations: Vec<String>,
}

/// The `kombo-sandbox` process.
#[derive(Debug)]
pub(crate) struct SandboxProc {
    pub(crate) info: SandboxInfo,
    _proc: Proc,
    // Kept open: the sandbox writes nothing more, but a closed pipe could kill it on a write.
    _stdout: BufReader<ChildStdout>,
}

/// The sandbox's size and where it posts its webhooks.
#[derive(Debug, Clone)]
pub(crate) struct SandboxSpec {
    pub(crate) seed: u64,
    pub(crate) integrations: usize,
    pub(crate) jobs: usize,
    pub(crate) applications: usize,
    pub(crate) webhook_url: String,
    pub(crate) webhook_secret: String,
}

impl SandboxProc {
    pub(crate) fn start(binary: &Path, spec: &SandboxSpec, log: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .args(["--seed", &spec.seed.to_string()])
            .args(["--integrations", &spec.integrations.to_string()])
            .args(["--jobs", &spec.jobs.to_string()])
            .args(["--applications", &spec.applications.to_string()])
            .args(["--webhook-url", &spec.webhook_url])
            .env("KOMBO_SANDBOX_WEBHOOK_SECRET", &spec.webhook_secret)
            .env("RUST_LOG", "warn");
        let (proc, stdout) = Proc::spawn_piped(command, log)?;
        let mut stdout = BufReader::new(stdout);
        let mut values = std::collections::HashMap::new();
        let mut line = String::new();
        // Four lines, then it is ready; bounded by the count of lines it prints.
        for _ in 0..8 {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                break;
            }
            if let Some((key, value)) = line.trim().split_once('=') {
                values.insert(key.to_owned(), value.to_owned());
            }
            if values.contains_key("KOMBO_INTEGRATION_IDS") {
                break;
            }
        }
        let get = |key: &str| {
            values
                .get(key)
                .cloned()
                .with_context(|| format!("kombo-sandbox did not print {key}"))
        };
        let info = SandboxInfo {
            base_url: get("KOMBO_SANDBOX_URL")?,
            control_url: get("KOMBO_SANDBOX_CONTROL_URL")?,
            api_key: get("KOMBO_API_KEY")?,
            integrations: get("KOMBO_INTEGRATION_IDS")?
                .split(',')
                .map(str::to_owned)
                .collect(),
        };
        Ok(Self {
            info,
            _proc: proc,
            _stdout: stdout,
        })
    }
}

/// One `stagewatch serve` replica: a fixed port and environment, restarted as often as a
/// scenario kills it.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) name: String,
    pub(crate) port: u16,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    proc: Option<Proc>,
    pub(crate) starts: u32,
}

impl Replica {
    pub(crate) fn new(
        name: &str,
        binary: &Path,
        env: Vec<(String, String)>,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            port: free_port()?,
            binary: binary.to_owned(),
            env,
            log: log_dir.join(format!("{name}.log")),
            proc: None,
            starts: 0,
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// Starts `serve` and waits (at most 30 s) until it answers `/healthz`.
    pub(crate) async fn start(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        if self.proc.is_some() {
            return Ok(());
        }
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .envs(self.env.iter().cloned())
            .env("STAGEWATCH_API__LISTEN", format!("127.0.0.1:{}", self.port))
            .env("STAGEWATCH_SYNC__WORKER_ID", &self.name);
        let proc = Proc::spawn(command, &self.log)?;
        self.proc = Some(proc);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let answer = http
                .get(format!("{}/healthz", self.url()))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "{} did not answer /healthz within 30 s (log: {})",
            self.name,
            self.log.display()
        )
    }

    /// SIGKILL: no shutdown hook, no graceful finish.
    pub(crate) fn kill(&mut self) {
        self.proc = None;
    }

    pub(crate) fn signal(&self, name: &str) -> anyhow::Result<()> {
        self.proc
            .as_ref()
            .with_context(|| format!("{} is not running", self.name))?
            .signal(name)
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub(crate) async fn stop(&mut self, grace: Duration) {
        if let Some(proc) = &mut self.proc {
            let _ = proc.signal("TERM");
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if matches!(proc.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.proc = None;
    }
}

/// Runs a one-shot stagewatch command (`migrate`, `sync ...`) with a time limit (killed after
/// it); its output goes to `log`. Answers whether it succeeded.
pub(crate) async fn run_once(
    binary: &Path,
    args: &[&str],
    env: &[(String, String)],
    log: &Path,
    limit: Duration,
) -> anyhow::Result<bool> {
    let mut command = Command::new(binary);
    command.args(args).envs(env.iter().cloned());
    let mut proc = Proc::spawn(command, log)?;
    let deadline = Instant::now() + limit;
    let mut result = false;
    while Instant::now() < deadline {
        if let Some(status) = proc.child.try_wait()? {
            result = status.success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(proc);
    Ok(result)
}
