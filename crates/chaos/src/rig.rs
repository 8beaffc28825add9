//! One scenario's world: its own database, a sandbox process posting signed Kombo webhooks, the
//! stagewatch replicas, the simulated activity; and the settling and checks at its end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use kombo_sandbox::{Endpoint, Fault, FaultRule, Trigger};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::checks;
use crate::clients::{Control, Stagewatch};
use crate::db::Database;
use crate::procs::{Replica, SandboxProc, SandboxSpec, free_port, run_once};
use crate::receiver::Receiver;

/// The counter of writes refused because the writer had lost its lease.
/// Tries of the final quiet pass of each integration, a second more apart each time (15 s in
/// all, longer than the scenarios' leases).
const FINAL_SYNC_ATTEMPTS: u64 = 6;
pub(crate) const FENCED_WRITES: &str = "stagewatch_fenced_writes_total";

/// What the whole run was asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) stagewatch: PathBuf,
    pub(crate) sandbox: PathBuf,
    /// `postgres://user@host:port`, no database.
    pub(crate) database: String,
    pub(crate) seed: u64,
    pub(crate) quick: bool,
    pub(crate) restart_postgres: bool,
    pub(crate) out_dir: PathBuf,
}

impl Options {
    /// `full` in a normal run, `quick` with `--quick`.
    pub(crate) fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// How a scenario's world is set up.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// Replicas defined (named `r0`, `r1`, ...); the sandbox posts Kombo's webhooks to `r0`.
    pub(crate) replicas: usize,
    /// The replicas started at once (the first one registers the integrations).
    pub(crate) start: Vec<usize>,
    /// Extra `STAGEWATCH_*` settings.
    pub(crate) env: Vec<(&'static str, String)>,
    /// Fault rules placed before the run's Kombo faults (the first matching rule fires).
    pub(crate) faults: Vec<FaultRule>,
    /// A webhook endpoint pointing there, created before any event exists.
    pub(crate) receiver_url: Option<String>,
}

impl Setup {
    pub(crate) fn replicas(count: usize) -> Self {
        Self {
            replicas: count,
            start: (0..count).collect(),
            env: Vec::new(),
            faults: Vec::new(),
            receiver_url: None,
        }
    }
}

/// Kombo's faults for the whole run: 10 % 5xx, 5 % 429 with a reset time, truncated bodies,
/// dropped connections, expired cursors, slow answers, and duplicated webhooks.
pub(crate) fn kombo_faults() -> Vec<FaultRule> {
    let reads = [
        Endpoint::Applications,
        Endpoint::Jobs,
        Endpoint::Integration,
    ];
    let mut rules: Vec<FaultRule> = [500, 502, 503, 504]
        .into_iter()
        .map(|status| FaultRule::new(Fault::Status(status), Trigger::Probability(0.025)).on(&reads))
        .collect();
    rules.extend([
        FaultRule::new(
            Fault::RateLimited {
                retry_after_secs: 1,
            },
            Trigger::Probability(0.05),
        )
        .on(&reads),
        FaultRule::new(Fault::TruncatedBody, Trigger::Probability(0.02)).on(&reads),
        FaultRule::new(Fault::ConnectionDrop, Trigger::Probability(0.02)).on(&reads),
        FaultRule::new(Fault::ExpiredCursor, Trigger::Probability(0.05)).on(&reads),
        FaultRule::new(
            Fault::Slow(Duration::from_millis(800)),
            Trigger::Probability(0.05),
        )
        .on(&reads),
        FaultRule::new(Fault::DuplicateWebhook, Trigger::Probability(0.3)),
    ]);
    rules
}

/// The simulated hiring activity: the sandbox advanced a few steps every `every`, each step
/// followed by its signed `data-changed` webhook.
#[derive(Debug)]
pub(crate) struct Activity {
    stop: Arc<AtomicBool>,
    changes: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl Activity {
    pub(crate) fn start(control: Control, every: Duration, steps: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let stop = stop.clone();
            let changes = changes.clone();
            async move {
                // Bounded: no scenario runs for ten minutes.
                let deadline = Instant::now() + Duration::from_secs(600);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if let Ok(made) = control.advance(steps).await {
                        changes.fetch_add(made, Ordering::Relaxed);
                    }
                    tokio::time::sleep(every).await;
                }
            }
        });
        Self {
            stop,
            changes,
            task: Some(task),
        }
    }

    /// Stops and answers how many changes the sandbox made.
    pub(crate) async fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.changes.load(Ordering::Relaxed)
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The result of one scenario, a row of the table.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) name: String,
    /// What the scenario did to the system (kills, freezes, outages, receiver phases).
    pub(crate) chaos: String,
    /// Kombo faults that fired, by kind.
    pub(crate) faults: BTreeMap<String, u64>,
    pub(crate) events: usize,
    /// Writes refused for a lost lease, summed over the processes scraped; `None` while no
    /// process exports the counter.
    pub(crate) refused_writes: Option<f64>,
    pub(crate) problems: Vec<String>,
    pub(crate) duration: Duration,
}

/// A scenario's running world.
#[derive(Debug)]
pub(crate) struct Rig {
    pub(crate) options: Options,
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) database: Database,
    pub(crate) control: Control,
    pub(crate) integrations: Vec<String>,
    pub(crate) replicas: Vec<Replica>,
    pub(crate) http: reqwest::Client,
    pub(crate) rng: StdRng,
    pub(crate) problems: Vec<String>,
    pub(crate) chaos: Vec<String>,
    /// The `whsec_…` secret of the endpoint created for `Setup::receiver_url`.
    pub(crate) endpoint_secret: Option<String>,
    api_key: String,
    env: Vec<(String, String)>,
    refused_writes: Option<f64>,
    started: Instant,
    // Last: dropped after the replicas, so no replica outlives its sandbox.
    _sandbox: SandboxProc,
}

impl Rig {
    pub(crate) async fn new(options: &Options, name: &str, setup: &Setup) -> anyhow::Result<Self> {
        let started = Instant::now();
        let dir = options.out_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let seed = options.seed ^ hash_name(name);
        let http = reqwest::Client::builder().no_proxy().build()?;
        let database = Database::create(
            &options.database,
            &format!("chaos_{}_{}", name.replace('-', "_"), std::process::id()),
        )?;

        let api_key = format!("chaos-key-{seed}");
        let key_hash =
            Sha256::digest(api_key.as_bytes())
                .iter()
                .fold(String::new(), |mut hex, byte| {
                    let _ = write!(hex, "{byte:02x}");
                    hex
                });
        let webhook_secret = format!("kombo-secret-{seed}");

        let first_port = free_port()?;
        let sandbox = SandboxProc::start(
            &options.sandbox,
            &SandboxSpec {
                seed,
                integrations: 2,
                jobs: 4,
                applications: options.pick(10, 6),
                webhook_url: format!("http://127.0.0.1:{first_port}/v1/kombo/webhooks"),
                webhook_secret: webhook_secret.clone(),
            },
            &dir.join("sandbox.log"),
        )?;
        let control = Control {
            http: http.clone(),
            url: sandbox.info.control_url.clone(),
        };
        let mut faults = setup.faults.clone();
        faults.extend(kombo_faults());
        control.set_faults(&faults).await?;

        let mut env: Vec<(String, String)> = [
            ("STAGEWATCH_DATABASE__URL", database.url()),
            ("STAGEWATCH_DATABASE__MIGRATE_ON_START", "false".into()),
            ("STAGEWATCH_DATABASE__MAX_CONNECTIONS", "5".into()),
            ("STAGEWATCH_KOMBO__BASE_URL", sandbox.info.base_url.clone()),
            ("STAGEWATCH_KOMBO__API_KEY", sandbox.info.api_key.clone()),
            ("STAGEWATCH_KOMBO__WEBHOOK_SECRET", webhook_secret),
            ("STAGEWATCH_KOMBO__TIMEOUT", "5s".into()),
            ("STAGEWATCH_KOMBO__MAX_RETRIES", "6".into()),
            ("STAGEWATCH_KOMBO__REQUESTS_PER_SECOND", "500".into()),
            ("STAGEWATCH_SYNC__POLL_INTERVAL", "1s".into()),
            ("STAGEWATCH_SYNC__JITTER", "0.2".into()),
            ("STAGEWATCH_SYNC__FULL_PASS_EVERY", "10s".into()),
            ("STAGEWATCH_SYNC__LEASE", "5s".into()),
            ("STAGEWATCH_SYNC__CLAIM_EVERY", "1s".into()),
            ("STAGEWATCH_SYNC__PAGE_SIZE", "20".into()),
            // The mass-deletion guard is tested elsewhere; here deletions must flow.
            (
                "STAGEWATCH_SYNC__DELETION_GUARD_MIN_COUNT",
                "1000000".into(),
            ),
            ("STAGEWATCH_API__KEY_HASHES", format!("[\"{key_hash}\"]")),
            ("STAGEWATCH_WEBHOOKS__ALLOW_PRIVATE_URLS", "true".into()),
            ("STAGEWATCH_WEBHOOKS__TIMEOUT", "1s".into()),
            (
                "STAGEWATCH_WEBHOOKS__RETRY_WAITS",
                r#"["1s", "1s", "2s", "2s", "3s", "3s", "3s", "3s", "3s", "3s", "3s", "3s"]"#
                    .into(),
            ),
            ("STAGEWATCH_LOG__FORMAT", "json".into()),
            ("STAGEWATCH_LOG__LEVEL", "info".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        for (key, value) in &setup.env {
            env.retain(|(existing, _)| existing != key);
            env.push(((*key).to_owned(), value.clone()));
        }

        let migrated = run_once(
            &options.stagewatch,
            &["migrate"],
            &env,
            &dir.join("migrate.log"),
            Duration::from_secs(60),
        )
        .await?;
        anyhow::ensure!(
            migrated,
            "stagewatch migrate failed (see {})",
            dir.display()
        );

        let mut replicas = Vec::new();
        for index in 0..setup.replicas {
            let mut replica =
                Replica::new(&format!("r{index}"), &options.stagewatch, env.clone(), &dir)?;
            if index == 0 {
                replica.port = first_port;
            }
            replicas.push(replica);
        }
        let mut rig = Self {
            options: options.clone(),
            name: name.to_owned(),
            dir,
            database,
            control,
            integrations: sandbox.info.integrations.clone(),
            replicas,
            http,
            rng: StdRng::seed_from_u64(seed),
            problems: Vec::new(),
            chaos: Vec::new(),
            endpoint_secret: None,
            api_key,
            env,
            refused_writes: None,
            started,
            _sandbox: sandbox,
        };
        for &index in &setup.start {
            rig.replicas[index].start(&rig.http).await?;
        }
        let first = *setup.start.first().context("no replica to start")?;
        let api = rig.api(first);
        if let Some(url) = &setup.receiver_url {
            let secret = api.create_endpoint(url).await?;
            rig.endpoint_secret = Some(secret);
        }
        for integration in &rig.integrations {
            api.register_integration(integration).await?;
        }
        Ok(rig)
    }

    pub(crate) fn api(&self, replica: usize) -> Stagewatch {
        Stagewatch {
            http: self.http.clone(),
            url: self.replicas[replica].url(),
            api_key: self.api_key.clone(),
        }
    }

    /// Adds the refused writes a process reports to the scenario's count.
    pub(crate) async fn scrape_refused_writes(&mut self, replica: usize) {
        if !self.replicas[replica].is_running() {
            return;
        }
        if let Some(count) = self.api(replica).counter(FENCED_WRITES).await {
            *self.refused_writes.get_or_insert(0.0) += count;
        }
    }

    /// SIGKILL, after reading the process's refused-write counter.
    pub(crate) async fn kill(&mut self, replica: usize) {
        self.scrape_refused_writes(replica).await;
        self.replicas[replica].kill();
    }

    pub(crate) async fn start(&mut self, replica: usize) -> anyhow::Result<()> {
        self.replicas[replica].start(&self.http).await
    }

    /// A one-shot `stagewatch sync --integration ID --full` in the background.
    pub(crate) fn spawn_full_sync(&self, integration: &str, tag: &str) -> JoinHandle<bool> {
        let binary = self.options.stagewatch.clone();
        let env = self.env.clone();
        let log = self.dir.join(format!("sync-{tag}.log"));
        let integration = integration.to_owned();
        tokio::spawn(async move {
            run_once(
                &binary,
                &["sync", "--integration", &integration, "--full"],
                &env,
                &log,
                Duration::from_secs(120),
            )
            .await
            .unwrap_or(false)
        })
    }

    /// Ends the scenario: replicas stopped, faults cleared, a quiet full pass per integration,
    /// then the feed read through a fresh replica and checked against the sandbox.
    pub(crate) async fn finish(mut self, receiver: Option<&Receiver>) -> anyhow::Result<Outcome> {
        for index in 0..self.replicas.len() {
            self.scrape_refused_writes(index).await;
        }
        let keep_delivering = receiver.is_some();
        for replica in &mut self.replicas {
            replica.stop(Duration::from_secs(10)).await;
        }
        let fired = self.control.fired_faults().await.unwrap_or_default();
        self.control.set_faults(&[]).await?;

        for integration in self.integrations.clone() {
            // A replica killed after the stop's grace (a pass asleep in a long Kombo backoff)
            // keeps its lease until it expires: the attempts span more than a lease.
            let mut synced = false;
            for attempt in 0..FINAL_SYNC_ATTEMPTS {
                synced = run_once(
                    &self.options.stagewatch,
                    &["sync", "--integration", &integration, "--full"],
                    &self.env,
                    &self.dir.join("final-sync.log"),
                    Duration::from_secs(120),
                )
                .await?;
                if synced {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(attempt + 1)).await;
            }
            if !synced {
                self.problems.push(format!(
                    "the final quiet `sync --full` of {integration} failed \
                     {FINAL_SYNC_ATTEMPTS} times"
                ));
            }
        }

        // A reader that syncs nothing (and delivers webhooks when the scenario has a receiver).
        let mut reader_env = self.env.clone();
        reader_env.push(("STAGEWATCH_SYNC__WORKERS".into(), "false".into()));
        reader_env.push((
            "STAGEWATCH_WEBHOOKS__WORKERS".into(),
            keep_delivering.to_string(),
        ));
        let mut reader = Replica::new("reader", &self.options.stagewatch, reader_env, &self.dir)?;
        reader.start(&self.http).await?;
        let api = Stagewatch {
            http: self.http.clone(),
            url: reader.url(),
            api_key: self.api_key.clone(),
        };
        let events = api.feed().await?;
        let mut served = BTreeMap::new();
        for integration in &self.integrations {
            served.insert(
                integration.clone(),
                self.control.applications(integration).await?,
            );
        }
        self.problems.extend(checks::check_feed(&events, &served));
        if let Some(receiver) = receiver {
            self.check_deliveries(receiver, &events).await;
        }
        if let Some(count) = api.counter(FENCED_WRITES).await {
            *self.refused_writes.get_or_insert(0.0) += count;
        }
        reader.stop(Duration::from_secs(5)).await;

        Ok(Outcome {
            name: self.name.clone(),
            chaos: self.chaos.join(", "),
            faults: fired,
            events: events.len(),
            refused_writes: self.refused_writes,
            problems: std::mem::take(&mut self.problems),
            duration: self.started.elapsed(),
        })
    }

    /// Every event of the feed acknowledged by the receiver at least once (waiting up to a
    /// minute for the retries), every delivery signed correctly.
    async fn check_deliveries(&mut self, receiver: &Receiver, events: &[serde_json::Value]) {
        let wanted: Vec<String> = events
            .iter()
            .filter_map(|event| event["id"].as_str().map(str::to_owned))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut missing = wanted.clone();
        while Instant::now() < deadline {
            let tally = receiver.tally();
            missing.retain(|id| !tally.acknowledged.contains_key(id));
            if missing.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let tally = receiver.tally();
        let redelivered = tally
            .acknowledged
            .values()
            .filter(|count| **count > 1)
            .count();
        self.chaos.push(format!(
            "{} delivery requests for {} event ids, {} failed on purpose, {} events acknowledged \
             more than once",
            tally.requests, tally.seen, tally.refused, redelivered
        ));
        if !missing.is_empty() {
            self.problems.push(format!(
                "{} of {} events never acknowledged by the receiver, e.g. {:?}",
                missing.len(),
                wanted.len(),
                missing.iter().take(3).collect::<Vec<_>>()
            ));
        }
        if tally.bad_signatures > 0 {
            self.problems.push(format!(
                "{} deliveries failed Standard Webhooks verification (or carried another id)",
                tally.bad_signatures
            ));
        }
    }
}

fn hash_name(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}
