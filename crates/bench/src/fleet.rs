//! Figure 6: many small integrations on one process, then on two replicas of one database.
//!
//! A sandbox serves `integrations` × 100 applications behind a Kombo rate limit
//! ([`KOMBO_RATE`] requests per second, in windows of [`FleetScale::kombo_window`], reported on
//! every answer as Kombo does). Each replica
//! is what `serve` runs for the sync, with the default settings except the Kombo client's
//! ceiling, raised above Kombo's limit so that the client paces itself on Kombo's `ratelimit-*`
//! headers: its own Kombo client, sync service, scheduler and pool. Four phases:
//!
//! 1. first passes: the time until every integration has finished one, with the request rate it
//!    drew from Kombo against Kombo's limit;
//! 2. steady state at a poll interval of [`FleetScale::steady_poll`]: passes per second against the demand,
//!    and the worst lateness of any integration beyond its due time (fairness);
//! 3. saturation: every integration due at once and again as soon as its pass ends; how close to Kombo's limit
//!    the replica runs, and the 429s of all three phases;
//! 4. capacity, against a sandbox without a binding limit (Kombo's would cap two replicas as it
//!    caps one): one replica, then two on the same database, with Kombo answering at once (the
//!    machine's cores the limit), then with every answer held as a remote Kombo's is (each
//!    replica's sync slots the limit).
//!
//! Passes are counted at the sandbox (every pass reads the integration once), lateness from the
//! integrations' `next_sync_at` in the store; [`pass_watch`] checks that no integration is
//! synced by two passes at once, across all four phases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_postgres::{NewIntegration, Store};
use anyhow::Context;
use app_server::config::{Secret, Settings};
use app_server::wiring;
use app_server::worker::Scheduler;
use kombo_sandbox::{
    AtsProfile, Endpoint, IntegrationConfig, RunningSandbox, Sandbox, SandboxConfig,
};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use tokio_util::sync::CancellationToken;

use crate::cpu::{CpuMeter, CpuUse};
use crate::database::BenchDatabase;
use crate::report::{Figure, progress};
use crate::{pass_watch, rig};

/// Kombo's rate limit in the sandbox, in requests per second (counted in windows of
/// [`FleetScale::kombo_window`]).
const KOMBO_RATE: u64 = 200;
/// The sandbox's limit in the capacity phase: far above what two replicas can ask.
const UNBOUND_LIMIT: u64 = 1_000_000;
/// How long the sandbox holds each answer in the second half of the capacity phase: a round
/// trip to a remote API and its own work (an assumption; the sandbox answers on loopback at once).
const KOMBO_ANSWER_TIME: Duration = Duration::from_millis(100);
/// The Kombo client's own ceiling: above Kombo's limit, so that Kombo's headers pace it.
const CLIENT_CEILING: u32 = 10_000;
/// Jobs × applications per job of each integration.
const JOBS: usize = 5;
const PER_JOB: usize = 20;
/// Longest wait for every first pass.
const FIRST_PASSES_WITHIN: Duration = Duration::from_secs(600);

/// How many integrations, and how long each phase lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FleetScale {
    pub(crate) integrations: usize,
    /// The poll interval of the steady phase.
    pub(crate) steady_poll: Duration,
    /// The length of Kombo's rate-limit windows.
    pub(crate) kombo_window: Duration,
    /// At least two of Kombo's windows, whose starts and ends the rate follows.
    pub(crate) saturate_for: Duration,
    pub(crate) capacity_for: Duration,
}

impl FleetScale {
    fn kombo_limit(&self) -> u64 {
        KOMBO_RATE * self.kombo_window.as_secs()
    }

    /// The steady phase's length: every integration comes due in it at least once, however
    /// late the scheduler's claim tick finds it.
    fn steady_for(&self) -> Duration {
        self.steady_poll + Duration::from_secs(10)
    }
}

pub(crate) async fn run(admin_url: &str, scale: FleetScale) -> anyhow::Result<Vec<Figure>> {
    BenchDatabase::around(admin_url, async |database| measure(database, scale).await).await
}

/// One replica: what `serve` runs for the sync, over its own pool and Kombo client.
struct Replica {
    shutdown: CancellationToken,
    workers: tokio::task::JoinHandle<()>,
    waker: Arc<tokio::sync::Notify>,
}

impl Replica {
    async fn start(
        database: &BenchDatabase,
        sandbox: &RunningSandbox,
        name: &str,
    ) -> anyhow::Result<Self> {
        let mut settings = Settings::default();
        settings.kombo.base_url = sandbox.base_url();
        settings.kombo.api_key = Secret::new(sandbox.api_key());
        settings.kombo.requests_per_second = CLIENT_CEILING;
        settings.sync.worker_id = name.to_owned();
        // The sandbox shares this process's clock: without a margin, a pass after the first
        // reads only what changed since (nothing, the sandbox's clock being stopped), as
        // figure 2's idle passes do.
        settings.sync.watermark_margin = Duration::ZERO;
        let store = database.store(settings.database.max_connections).await?;
        let kombo = Arc::new(wiring::kombo(&settings, true)?);
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            wiring::sync_service(&settings, kombo, &store),
            wiring::clock(),
            wiring::scheduler_settings(&settings),
        ));
        let shutdown = CancellationToken::new();
        let workers = tokio::spawn(Arc::clone(&scheduler).run(shutdown.clone()));
        let waker = scheduler.waker();
        waker.notify_one();
        Ok(Self {
            shutdown,
            workers,
            waker,
        })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.workers.await;
    }
}

#[derive(Debug, FromQueryResult)]
struct Lateness {
    late_ms: Option<f64>,
}

/// Requests that reached the sandbox's read endpoints.
fn kombo_requests(sandbox: &RunningSandbox) -> u64 {
    [
        Endpoint::Integration,
        Endpoint::Applications,
        Endpoint::Jobs,
        Endpoint::RejectionReasons,
    ]
    .into_iter()
    .map(|endpoint| sandbox.handle().request_count(endpoint))
    .sum()
}

/// Passes started so far: each reads its integration from Kombo once.
fn passes(sandbox: &RunningSandbox) -> u64 {
    sandbox.handle().request_count(Endpoint::Integration)
}

/// The fleet's sandbox: the same integrations and data whatever the rate limit.
fn sandbox_config(integrations: usize, rate_limit: (u64, Duration)) -> SandboxConfig {
    let mut config = SandboxConfig::new("bench-fleet-key")
        .with_seed(31)
        .with_manual_clock()
        .with_rate_limit(rate_limit.0, rate_limit.1);
    for i in 0..integrations {
        config = config.with_integration(
            IntegrationConfig::new(format!("fleet-{i:04}"), "greenhouse", AtsProfile::Full)
                .with_jobs(JOBS, PER_JOB),
        );
    }
    config
}

async fn measure(database: &BenchDatabase, scale: FleetScale) -> anyhow::Result<Vec<Figure>> {
    let n = scale.integrations;
    progress(&format!(
        "fleet: seeding {n} integrations of {} applications",
        JOBS * PER_JOB
    ));
    let sandbox =
        Sandbox::start(sandbox_config(n, (scale.kombo_limit(), scale.kombo_window))).await?;
    let store = database.store(4).await?;
    for id in sandbox.integration_ids() {
        store
            .register_integration(
                &NewIntegration {
                    id: domain::IntegrationId::parse(&id)?,
                    tool: Some("greenhouse".into()),
                    label: None,
                    poll_interval: Some(scale.steady_poll),
                },
                chrono::Utc::now(),
            )
            .await?;
    }
    let passes_before = pass_watch::count();
    let limited = under_kombo_limit(database, &store, &sandbox, scale).await;
    sandbox.shutdown().await;
    let mut figures = limited?;
    figures.extend(capacity(database, &store, scale).await?);
    let passes = pass_watch::count();
    let twice = passes.twice_at_once - passes_before.twice_at_once;
    let watched = passes.started - passes_before.started;
    // No pass watched would mean the watch lost sight of the passes' spans, not that none
    // overlapped.
    figures.push(
        Figure::reported(
            "6 many integrations",
            format!("integrations synced twice at once, in {watched} passes of all four phases"),
            count_f64(twice),
            "passes",
        )
        .judged("0, of passes watched", twice == 0 && watched > 0),
    );
    Ok(figures)
}

/// Phases 1 to 3, against Kombo's limit.
async fn under_kombo_limit(
    database: &BenchDatabase,
    store: &Store,
    sandbox: &RunningSandbox,
    scale: FleetScale,
) -> anyhow::Result<Vec<Figure>> {
    let n = scale.integrations;
    #[allow(clippy::cast_precision_loss)] // a few hundred
    let kombo_rate = KOMBO_RATE as f64;
    let mut figures = Vec::new();

    // 1. First passes.
    progress(&format!(
        "fleet: first passes of {n} integrations, one replica"
    ));
    let started = Instant::now();
    let requests_before = kombo_requests(sandbox);
    let limited_before = sandbox.handle().rate_limited_count();
    let since = chrono::Utc::now();
    let first = Replica::start(database, sandbox, "fleet-a").await?;
    if let Err(error) =
        rig::wait_for_passes(store, "%", since, n, "first passes", FIRST_PASSES_WITHIN).await
    {
        first.stop().await;
        return Err(error);
    }
    let took = started.elapsed().as_secs_f64();
    let requests = kombo_requests(sandbox) - requests_before;
    let limited = sandbox.handle().rate_limited_count() - limited_before;
    let drawn = count_f64(requests) / took;
    progress(&format!(
        "fleet: every first pass in {took:.1} s, {requests} Kombo requests ({drawn:.0}/s against \
         Kombo's {kombo_rate:.0}/s), {limited} answered 429"
    ));
    figures.push(Figure::reported(
        "6 many integrations",
        format!(
            "{n} integrations × {} applications: every first pass done, one replica",
            JOBS * PER_JOB
        ),
        took,
        "s",
    ));
    figures.push(
        Figure::reported(
            "6 many integrations",
            format!(
                "first passes: Kombo requests per second against Kombo's limit of {kombo_rate:.0}/s"
            ),
            100.0 * drawn / kombo_rate,
            "%",
        )
        .judged("<= 100 %", drawn <= kombo_rate * 1.01),
    );
    figures.push(
        Figure::reported(
            "6 many integrations",
            "first passes: requests answered 429 (rate limited)",
            count_f64(limited),
            "requests",
        )
        .judged("0", limited == 0),
    );

    // 2. Steady state at the poll interval.
    progress(&format!(
        "fleet: steady state for {} s at a poll interval of {} s",
        scale.steady_for().as_secs(),
        scale.steady_poll.as_secs()
    ));
    let before = passes(sandbox);
    let (_, worst_late) = window(store, sandbox, scale.steady_for()).await?;
    let steady_passes = passes(sandbox) - before;
    figures.push(
        Figure::reported(
            "6 many integrations",
            format!(
                "steady state: passes in {} s, where each of the {n} integrations is due at least \
                 once (polled every {} s)",
                scale.steady_for().as_secs(),
                scale.steady_poll.as_secs()
            ),
            count_f64(steady_passes),
            "passes",
        )
        .judged(
            format!(">= {n}"),
            steady_passes >= u64::try_from(n).unwrap_or(u64::MAX),
        ),
    );
    figures.push(
        Figure::reported(
            "6 many integrations",
            "steady state: worst lateness of a due integration (fairness)",
            worst_late,
            "ms",
        )
        .judged(
            "< poll interval",
            worst_late < scale.steady_poll.as_secs_f64() * 1000.0,
        ),
    );

    // 3. Saturation: everything always due, as much as Kombo allows.
    make_everything_due(store).await?;
    first.waker.notify_one();
    progress(&format!(
        "fleet: saturation for {} s, one replica",
        scale.saturate_for.as_secs()
    ));
    let requests_before = kombo_requests(sandbox);
    let saturated_from = Instant::now();
    let (saturated, _) = window(store, sandbox, scale.saturate_for).await?;
    let drawn = count_f64(kombo_requests(sandbox) - requests_before)
        / saturated_from.elapsed().as_secs_f64();
    let limited = sandbox.handle().rate_limited_count() - limited_before;
    first.stop().await;
    figures.push(Figure::reported(
        "6 many integrations",
        "saturated (every integration always due), one replica: passes per second",
        saturated,
        "passes/s",
    ));
    figures.push(
        Figure::reported(
            "6 many integrations",
            format!(
                "saturated: Kombo requests per second against Kombo's limit of {kombo_rate:.0}/s"
            ),
            100.0 * drawn / kombo_rate,
            "%",
        )
        .judged(
            "80–100 %",
            (0.8 * kombo_rate..=1.01 * kombo_rate).contains(&drawn),
        ),
    );
    figures.push(
        Figure::reported(
            "6 many integrations",
            "requests answered 429 (rate limited), all phases",
            count_f64(limited),
            "requests",
        )
        .judged("0", limited == 0),
    );
    Ok(figures)
}

/// Phase 4: what the replicas themselves can do, against a sandbox whose limit is far above
/// them: one replica, then two on the same database, first with Kombo answering at once (the
/// machine's cores are the limit), then with each answer held [`KOMBO_ANSWER_TIME`] (each
/// replica's sync slots are the limit, waiting on Kombo as against the real API): two, then one.
async fn capacity(
    database: &BenchDatabase,
    store: &Store,
    scale: FleetScale,
) -> anyhow::Result<Vec<Figure>> {
    let sandbox = Sandbox::start(sandbox_config(
        scale.integrations,
        (UNBOUND_LIMIT, scale.kombo_window),
    ))
    .await?;
    let measured = async {
        // A new sandbox: each integration's first pass over it reads its applications again.
        make_everything_due(store).await?;
        let warm_from = chrono::Utc::now();
        let first = Replica::start(database, &sandbox, "fleet-a").await?;
        let windows = async {
            rig::wait_for_passes(
                store,
                "%",
                warm_from,
                scale.integrations,
                "passes over the new sandbox",
                FIRST_PASSES_WITHIN,
            )
            .await?;
            let length = scale.capacity_for;
            let one = busy_window(
                store,
                &sandbox,
                length,
                &format!("one replica, {ANSWERING_AT_ONCE}"),
            )
            .await?;
            let second = Replica::start(database, &sandbox, "fleet-b").await?;
            let with_second = async {
                let two = busy_window(
                    store,
                    &sandbox,
                    length,
                    &format!("two replicas, {ANSWERING_AT_ONCE}"),
                )
                .await?;
                sandbox.handle().set_answer_time(KOMBO_ANSWER_TIME);
                let waiting_two = busy_window(
                    store,
                    &sandbox,
                    length,
                    &format!("two replicas, {}", answering_late()),
                )
                .await?;
                anyhow::Ok((two, waiting_two))
            }
            .await;
            second.stop().await;
            let (two, waiting_two) = with_second?;
            let waiting_one = busy_window(
                store,
                &sandbox,
                length,
                &format!("one replica, {}", answering_late()),
            )
            .await?;
            anyhow::Ok([one, two, waiting_one, waiting_two])
        }
        .await;
        first.stop().await;
        let [one, two, waiting_one, waiting_two] = windows?;
        Ok(capacity_figures(one, two, waiting_one, waiting_two))
    }
    .await;
    sandbox.shutdown().await;
    measured
}

const ANSWERING_AT_ONCE: &str = "Kombo answering at once";

/// The capacity windows' words for [`KOMBO_ANSWER_TIME`].
fn answering_late() -> String {
    format!("Kombo answering in {} ms", KOMBO_ANSWER_TIME.as_millis())
}

/// Passes per second, and the cores busy, over one capacity window.
#[derive(Clone, Copy)]
struct Busy {
    passes_per_second: f64,
    cpu: Option<CpuUse>,
}

async fn busy_window(
    store: &Store,
    sandbox: &RunningSandbox,
    length: Duration,
    during: &str,
) -> anyhow::Result<Busy> {
    progress(&format!(
        "fleet: capacity for {} s, {during}",
        length.as_secs()
    ));
    let cpu = CpuMeter::start();
    let (passes_per_second, _) = window(store, sandbox, length).await?;
    Ok(Busy {
        passes_per_second,
        cpu: cpu.stop(),
    })
}

fn capacity_figures(one: Busy, two: Busy, waiting_one: Busy, waiting_two: Busy) -> Vec<Figure> {
    let late = answering_late();
    let machine = [
        (
            one.cpu,
            format!("capacity, one replica, {ANSWERING_AT_ONCE}"),
        ),
        (
            two.cpu,
            format!("capacity, two replicas, {ANSWERING_AT_ONCE}"),
        ),
        (waiting_one.cpu, format!("capacity, one replica, {late}")),
        (waiting_two.cpu, format!("capacity, two replicas, {late}")),
    ]
    .into_iter()
    .filter_map(|(used, during)| Some(used?.figure("6 many integrations", &during)));
    let per_core = |busy: &Busy| {
        busy.cpu
            .map(|cpu| busy.passes_per_second / cpu.busy.max(f64::EPSILON))
    };
    let per_core = match (per_core(&one), per_core(&two)) {
        (Some(one), Some(two)) => Some(Figure::reported(
            "6 many integrations",
            format!("capacity, {ANSWERING_AT_ONCE}: passes per core busy, two replicas / one"),
            two / one.max(f64::EPSILON),
            "x",
        )),
        _ => None,
    };
    let (one, two) = (one.passes_per_second, two.passes_per_second);
    let (waiting_one, waiting_two) = (waiting_one.passes_per_second, waiting_two.passes_per_second);
    machine
        .chain([
            Figure::reported(
                "6 many integrations",
                format!("capacity, {ANSWERING_AT_ONCE}: passes per second, one replica"),
                one,
                "passes/s",
            ),
            Figure::reported(
                "6 many integrations",
                format!("capacity, {ANSWERING_AT_ONCE}: passes per second, two replicas"),
                two,
                "passes/s",
            ),
            Figure::reported(
                "6 many integrations",
                format!("capacity, {ANSWERING_AT_ONCE} (the cores the limit): two replicas / one"),
                two / one.max(f64::EPSILON),
                "x",
            ),
        ])
        .chain(per_core)
        .chain([
            Figure::reported(
                "6 many integrations",
                format!("capacity, {late}: passes per second, one replica"),
                waiting_one,
                "passes/s",
            ),
            Figure::reported(
                "6 many integrations",
                format!("capacity, {late}: passes per second, two replicas"),
                waiting_two,
                "passes/s",
            ),
            Figure::reported(
                "6 many integrations",
                format!("capacity, {late}: two replicas / one"),
                waiting_two / waiting_one.max(f64::EPSILON),
                "x",
            )
            .judged(">= 1.8 x", waiting_two >= 1.8 * waiting_one),
        ])
        .collect()
}

/// Every integration due now, and again as soon as each pass ends: the scheduler claims
/// whenever a slot frees, so its slots never wait for its claim tick.
async fn make_everything_due(store: &Store) -> anyhow::Result<()> {
    store
        .connection()
        .execute_unprepared(
            "UPDATE integrations SET poll_interval_seconds = 0, next_sync_at = now()",
        )
        .await?;
    Ok(())
}

/// Passes per second over `length`, and the worst lateness seen (milliseconds) of an
/// integration that was due and not yet claimed, sampled every 100 ms.
async fn window(
    store: &Store,
    sandbox: &RunningSandbox,
    length: Duration,
) -> anyhow::Result<(f64, f64)> {
    let before = passes(sandbox);
    let requests_before = kombo_requests(sandbox);
    let started = Instant::now();
    let mut worst: f64 = 0.0;
    while started.elapsed() < length {
        let late = query_one::<Lateness>(
            store,
            "SELECT CAST(EXTRACT(EPOCH FROM MAX(now() - next_sync_at)) * 1000 AS DOUBLE PRECISION) \
             AS late_ms FROM integrations WHERE NOT paused AND next_sync_at <= now() \
             AND (lease_owner IS NULL OR lease_expires_at < now())",
        )
        .await?;
        worst = worst.max(late.late_ms.unwrap_or(0.0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let passes = passes(sandbox) - before;
    let requests = kombo_requests(sandbox) - requests_before;
    let seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "fleet: {passes} passes and {requests} Kombo requests in {seconds:.1} s ({:.1} passes/s, \
         {:.0} requests/s), worst lateness {worst:.0} ms",
        count_f64(passes) / seconds,
        count_f64(requests) / seconds
    ));
    Ok((count_f64(passes) / seconds, worst))
}

async fn query_one<T: FromQueryResult>(store: &Store, sql: &str) -> anyhow::Result<T> {
    T::find_by_statement(Statement::from_string(
        store.connection().get_database_backend(),
        sql,
    ))
    .one(store.connection())
    .await?
    .context("a row")
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn count_f64(count: u64) -> f64 {
    count as f64
}
