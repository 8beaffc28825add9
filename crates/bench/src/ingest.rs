//! Figures 1, 2, 4 and 6: the first full pass from the sandbox into PostgreSQL against a `COPY`
//! of exactly the rows it wrote (and a one-table `COPY` of as many applications), the peak
//! memory while it runs, the funnel over what it wrote, incremental passes after it, and idle
//! passes.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::IntegrationId;
use domain::ports::LeaseEpoch;
use domain::sync::{PassMode, PassObserver, PassReport, SyncService};
use kombo_sandbox::{
    AtsProfile, Endpoint, IntegrationConfig, Sandbox, SandboxConfig, SandboxHandle,
};

use crate::cpu::CpuMeter;
use crate::database::BenchDatabase;
use crate::job_funnel::CALLS;
use crate::report::{Figure, format_value, progress};
use crate::{fair_copy, memory, raw_copy, rig};

/// The integration whose first pass is measured.
const LARGE: &str = "bench-large-greenhouse";
/// An integration a tenth of its size, to show that an incremental pass costs the same per
/// changed application whatever the number tracked.
const SMALL: &str = "bench-small-greenhouse";
const APPLICATIONS_PER_JOB: usize = 100;
/// Sandbox steps before each incremental pass.
const STEPS: [usize; 3] = [10, 100, 1000];
const MIB: f64 = 1024.0 * 1024.0;
/// The one-table `COPY` runs this often; the figure is the median.
const COPY_RUNS: usize = 3;
/// The first pass runs this often, each time into a fresh database and followed at once by a
/// `COPY` of the rows it wrote; its figures are the medians. A machine whose speed drifts over
/// a minute (a shared cloud host) moves the pass and a `COPY` made minutes apart differently;
/// a ratio taken within each round and its median over three do not depend on that drift.
const PASS_ROUNDS: usize = 3;
/// Idle passes timed (nothing changed in Kombo).
const IDLE_PASSES: usize = 9;
/// From this many applications on, the first pass is also held to an absolute rate.
const LARGE_SCALE: u64 = 100_000;

/// Runs figures 1, 2 and 4, and figure 8's whole-integration funnel, with `applications` in the
/// large integration.
pub(crate) async fn run(admin_url: &str, applications: usize) -> anyhow::Result<Vec<Figure>> {
    BenchDatabase::around(admin_url, async |database| {
        measure(admin_url, database, applications).await
    })
    .await
}

/// One first pass and the `COPY` of its rows made right after it.
#[derive(Debug, Clone, Copy)]
struct Round {
    pass_rate: f64,
    fair_rate: f64,
}

impl Round {
    fn share(&self) -> f64 {
        self.pass_rate / self.fair_rate * 100.0
    }

    fn progress(&self, number: usize, ingested: u64) {
        progress(&format!(
            "ingest: round {number} of {PASS_ROUNDS}: {ingested} applications at {} per second, \
             the COPY of their rows at {} ({:.1} %)",
            format_value(self.pass_rate),
            format_value(self.fair_rate),
            self.share()
        ));
    }
}

async fn measure(
    admin_url: &str,
    database: &BenchDatabase,
    applications: usize,
) -> anyhow::Result<Vec<Figure>> {
    let store = database.store(8).await?;
    let large_jobs = applications.div_ceil(APPLICATIONS_PER_JOB).max(1);
    let small_jobs = (large_jobs / 10).max(1);
    progress(&format!(
        "ingest: seeding the sandbox with {} + {} applications",
        large_jobs * APPLICATIONS_PER_JOB,
        small_jobs * APPLICATIONS_PER_JOB
    ));
    let sandbox = Sandbox::start(
        SandboxConfig::new("bench-key")
            .with_seed(11)
            .with_integration(
                IntegrationConfig::new(LARGE, "greenhouse", AtsProfile::Full)
                    .with_jobs(large_jobs, APPLICATIONS_PER_JOB),
            )
            .with_integration(
                IntegrationConfig::new(SMALL, "greenhouse", AtsProfile::Full)
                    .with_jobs(small_jobs, APPLICATIONS_PER_JOB),
            )
            // Real customers' pages carry each record's raw ATS object.
            .with_remote_data()
            .with_manual_clock(),
    )
    .await?;
    let kombo = rig::kombo_client(&sandbox)?;
    let sync = rig::sync_service(kombo.clone(), &store);
    let large = rig::register(&store, LARGE).await?;
    let small = rig::register(&store, SMALL).await?;
    let (large_lease, small_lease) = (
        rig::claim(&store, &large).await?,
        rig::claim(&store, &small).await?,
    );
    register_endpoint(&store).await?;
    let mut figures = Vec::new();

    let read_rate = read_only(&kombo, &large).await?;
    let rss_before = memory::rss_bytes().unwrap_or_default();
    progress(&format!(
        "ingest: first full pass of {} applications (RSS before: {} MiB)",
        large_jobs * APPLICATIONS_PER_JOB,
        format_value(bytes_to_mib(rss_before))
    ));
    let memory = MemoryProbe::new(large_jobs * APPLICATIONS_PER_JOB);
    let cpu = CpuMeter::start();
    let started = Instant::now();
    let report = sync
        .run_pass(&large, large_lease, PassMode::Full, &memory)
        .await?;
    let ingest_time = started.elapsed();
    let pass_cpu = cpu.stop();
    let ingested = report.applications_seen;
    let first_rate = per_second(ingested, ingest_time);
    progress(&format!(
        "ingest: {ingested} applications in {:.1} s ({} per second)",
        ingest_time.as_secs_f64(),
        format_value(first_rate)
    ));
    // Before the small integration's pass: the tables hold only what this pass wrote.
    let (copied_rows, copy_time) = copy_pass_rows(&store).await?;
    progress(&format!("ingest: COPY of the pass's rows ({copied_rows})"));
    let first_round = Round {
        pass_rate: first_rate,
        fair_rate: per_second(ingested, copy_time),
    };
    first_round.progress(1, ingested);
    let funnel_figure = funnel(&store, &large, ingested).await?;
    sync.run_pass(&small, small_lease, PassMode::Full, &())
        .await?;
    let mut rounds = vec![first_round];
    for number in 2..=PASS_ROUNDS {
        let round = another_round(admin_url, &kombo).await?;
        round.progress(number, ingested);
        rounds.push(round);
    }
    let median_of = |value: fn(&Round) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(value).collect();
        values.sort_unstable_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ingest_rate = median_of(|round| round.pass_rate);
    let fair_rate = median_of(|round| round.fair_rate);
    let share = median_of(Round::share);
    progress(&format!(
        "ingest: one-table COPY of {ingested} rows, {COPY_RUNS} times"
    ));
    let mut copy_times = Vec::new();
    for _ in 0..COPY_RUNS {
        copy_times.push(raw_copy::copy_rows(&store, usize::try_from(ingested)?).await?);
    }
    let copy_rate = per_second(ingested, median(copy_times));
    progress(&format!(
        "ingest: COPY of the pass's rows at {} applications per second, one-table COPY at {} \
         rows per second",
        format_value(fair_rate),
        format_value(copy_rate)
    ));
    let pass_figure = Figure::reported(
        "1 ingest",
        format!(
            "first full pass, {ingested} applications (page size 250, one endpoint), median of \
             {PASS_ROUNDS}"
        ),
        ingest_rate,
        "apps/s",
    );
    figures.push(if ingested >= LARGE_SCALE {
        pass_figure.judged(">= 10 000 apps/s", ingest_rate >= 10_000.0)
    } else {
        pass_figure
    });
    figures.push(Figure::reported(
        "1 ingest",
        format!(
            "COPY of exactly the pass's rows ({copied_rows}), right after each pass, median of \
             {PASS_ROUNDS}"
        ),
        fair_rate,
        "apps/s",
    ));
    figures.push(Figure::reported(
        "1 ingest",
        format!("one-table COPY of as many applications, median of {COPY_RUNS}"),
        copy_rate,
        "rows/s",
    ));
    figures.push(Figure::reported(
        "1 ingest",
        "reading every page from the sandbox alone (HTTP and parsing, no store)",
        read_rate,
        "apps/s",
    ));
    if let Some(used) = pass_cpu {
        figures.push(used.figure("1 ingest", "the first round's full pass"));
    }
    figures.push(
        Figure::reported(
            "1 ingest",
            format!(
                "first pass rate / COPY of the same rows right after it, median of {PASS_ROUNDS} \
                 rounds"
            ),
            share,
            "%",
        )
        .judged(">= 50 %", share >= 50.0),
    );

    figures.extend(memory.figures(rss_before));
    figures.push(funnel_figure);
    figures.extend(
        incremental(
            &sync,
            &sandbox.handle(),
            (&large, large_lease),
            (&small, small_lease),
        )
        .await?,
    );
    figures.extend(idle(&sync, &kombo, &sandbox.handle(), (&large, large_lease)).await?);
    sandbox.shutdown().await;
    Ok(figures)
}

/// An endpoint, so that a pass writes its outbox rows as it would in production (no deliverer
/// runs: they stay queued).
async fn register_endpoint(store: &adapters_postgres::Store) -> anyhow::Result<()> {
    store
        .create_endpoint(
            &adapters_postgres::NewEndpoint {
                url: "https://hooks.example.com/bench".into(),
                description: Some("benchmark".into()),
                event_types: Vec::new(),
                secret: "whsec_YmVuY2htYXJrLXNlY3JldC1ieXRlcy0xMjM0".into(),
            },
            chrono::Utc::now(),
        )
        .await?;
    Ok(())
}

/// The large integration's first pass again, into a database of its own, and one `COPY` of the
/// rows it wrote right after it. The sandbox has not moved since the first round (its clock
/// is manual), so every round reads the same pages.
async fn another_round(
    admin_url: &str,
    kombo: &std::sync::Arc<adapters_kombo::KomboClient>,
) -> anyhow::Result<Round> {
    BenchDatabase::around(admin_url, async |database| {
        let store = database.store(8).await?;
        let sync = rig::sync_service(kombo.clone(), &store);
        let large = rig::register(&store, LARGE).await?;
        let lease = rig::claim(&store, &large).await?;
        register_endpoint(&store).await?;
        let started = Instant::now();
        let report = sync.run_pass(&large, lease, PassMode::Full, &()).await?;
        let pass_rate = per_second(report.applications_seen, started.elapsed());
        let (_, copy_time) = copy_pass_rows(&store).await?;
        Ok(Round {
            pass_rate,
            fair_rate: per_second(report.applications_seen, copy_time),
        })
    })
    .await
}

/// Saves every row the pass just wrote (the database holds nothing else yet) and copies them
/// once into twins of their tables: what was copied, per table, and how long the copy took.
async fn copy_pass_rows(store: &adapters_postgres::Store) -> anyhow::Result<(String, Duration)> {
    let rows_dir = std::env::temp_dir().join(format!("stagewatch-bench-{}", std::process::id()));
    let rows = fair_copy::capture(store, &rows_dir).await?;
    let copied = fair_copy::copy(store, &rows).await;
    let _ = std::fs::remove_dir_all(&rows_dir);
    Ok((rows.counts(), copied?))
}

/// Figure 8's report: the funnel of the integration just ingested (all its jobs, stages grouped by
/// name), computed by the store in SQL over every application and stage visit: the median of
/// [`crate::job_funnel::CALLS`] calls, after one untimed call.
async fn funnel(
    store: &adapters_postgres::Store,
    integration: &IntegrationId,
    ingested: u64,
) -> anyhow::Result<Figure> {
    let query = domain::FunnelQuery {
        integration: Some(integration.clone()),
        ..domain::FunnelQuery::default()
    };
    let (first, time) = crate::job_funnel::timed(store, &query).await?;
    progress(&format!(
        "funnel: {} applications in {} stage groups, {time:.1} ms (median of {CALLS})",
        first.applications.total,
        first.stages.len()
    ));
    // Reported, not judged: the design's target is one job's funnel (`job_funnel`).
    Ok(Figure::reported(
        "8 funnel",
        format!(
            "a whole integration's funnel over {ingested} applications (100 per job), median of \
             {CALLS}"
        ),
        time,
        "ms",
    ))
}

/// Figure 2: for each number of steps, one incremental pass of each integration, costed per
/// application it read.
async fn incremental(
    sync: &SyncService,
    sandbox: &SandboxHandle,
    large: (&IntegrationId, LeaseEpoch),
    small: (&IntegrationId, LeaseEpoch),
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut last_ratio = None;
    for steps in STEPS {
        let changes = sandbox.advance(steps);
        let changed_in = |integration: &IntegrationId| {
            changes
                .iter()
                .filter(|entry| entry.integration == integration.as_str())
                .map(|entry| entry.application_id.as_str())
                .filter(|id| !id.is_empty())
                .collect::<BTreeSet<_>>()
                .len()
        };
        let mut costs = Vec::new();
        for (integration, lease) in [large, small] {
            let started = Instant::now();
            let report = sync
                .run_pass(integration, lease, PassMode::Incremental, &())
                .await?;
            let elapsed = started.elapsed();
            let read = report.applications_seen.max(1);
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            let per_application = elapsed.as_secs_f64() * 1000.0 / read as f64;
            progress(&format!(
                "incremental: {steps} steps, {integration}: {} changed, {} read, {:.1} ms, \
                 {} ms per application",
                changed_in(integration),
                report.applications_seen,
                elapsed.as_secs_f64() * 1000.0,
                format_value(per_application)
            ));
            costs.push((report.applications_seen, elapsed, per_application));
        }
        let (large_read, large_time, large_cost) = costs[0];
        let (small_read, _, small_cost) = costs[1];
        figures.push(Figure::reported(
            "2 incremental",
            format!(
                "{steps} steps: {large_read} apps read in {:.0} ms (large), per app",
                large_time.as_secs_f64() * 1000.0
            ),
            large_cost,
            "ms",
        ));
        figures.push(Figure::reported(
            "2 incremental",
            format!("{steps} steps: {small_read} apps read (10x smaller), per app"),
            small_cost,
            "ms",
        ));
        last_ratio = Some(large_cost / small_cost);
    }
    if let Some(ratio) = last_ratio {
        figures.push(
            Figure::reported(
                "2 incremental",
                "per-app cost, large / small integration (1000 steps)",
                ratio,
                "x",
            )
            .judged("<= 2 x", ratio <= 2.0),
        );
    }
    Ok(figures)
}

/// Figure 2's floor: passes of the large integration when nothing changed in Kombo, with the
/// Kombo requests each makes and its time.
async fn idle(
    sync: &SyncService,
    kombo: &adapters_kombo::KomboClient,
    sandbox: &SandboxHandle,
    (integration, lease): (&IntegrationId, LeaseEpoch),
) -> anyhow::Result<Vec<Figure>> {
    let requests = || -> u64 {
        Endpoint::ALL
            .iter()
            .map(|e| sandbox.request_count(*e))
            .sum()
    };
    let by_endpoint = || -> Vec<u64> {
        Endpoint::ALL
            .iter()
            .map(|e| sandbox.request_count(*e))
            .collect()
    };
    // Passes first until one reads nothing (an idle pass is one that has nothing to read): the
    // sandbox stamps each change a millisecond after the one before, so a burst of changes (the
    // last incremental round, a seeding) leaves its clock ahead of the wall clock, and passes
    // read those changes again until the wall clock has caught up (over a second after the
    // quick scale's rounds). Bounded: at most 100 passes and 10 s.
    let warming_until = Instant::now() + Duration::from_secs(10);
    for _ in 0..100 {
        let warm_up = sync
            .run_pass(integration, lease, PassMode::Incremental, &())
            .await?;
        if warm_up.applications_seen == 0 || Instant::now() > warming_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = requests();
    let before_by_endpoint = by_endpoint();
    let mut times = Vec::new();
    let mut read = Vec::new();
    for _ in 0..IDLE_PASSES {
        let started = Instant::now();
        let report = sync
            .run_pass(integration, lease, PassMode::Incremental, &())
            .await?;
        times.push(started.elapsed());
        read.push(format!(
            "{}p/{}a{}",
            report.pages,
            report.applications_seen,
            if report.warnings.is_empty() { "" } else { "/w" }
        ));
    }
    #[allow(clippy::cast_precision_loss)] // a handful of requests
    let per_pass = (requests() - before) as f64 / IDLE_PASSES as f64;
    let time = median(times).as_secs_f64() * 1000.0;
    let extra: Vec<String> = Endpoint::ALL
        .iter()
        .zip(by_endpoint().iter().zip(&before_by_endpoint))
        .filter(|(_, (after, before))| after > before)
        .map(|(endpoint, (after, before))| format!("{endpoint:?} {}", after - before))
        .collect();
    let answers = idle_answers(kombo, integration).await?;
    progress(&format!(
        "idle: {per_pass} Kombo requests ({}) and {time:.1} ms per pass with nothing changed \
         ({answers:.1} ms of it Kombo's two answers alone); pages/applications read per pass: {}",
        extra.join(", "),
        read.join(" ")
    ));
    Ok(vec![
        Figure::reported(
            "2 incremental",
            "idle pass (nothing changed): Kombo requests per pass",
            per_pass,
            "requests",
        )
        .judged("<= 2", per_pass <= 2.0),
        Figure::reported(
            "2 incremental",
            format!("idle pass: median time of {IDLE_PASSES}"),
            time,
            "ms",
        )
        .judged("<= 20 ms", time <= 20.0),
        Figure::reported(
            "2 incremental",
            format!(
                "idle pass: Kombo's (the sandbox's) two answers alone, through the client, \
                 median of {IDLE_PASSES}"
            ),
            answers,
            "ms",
        ),
    ])
}

/// The two requests an idle pass makes (the integration, one empty page of applications
/// changed since now), made alone: Kombo's share of an idle pass, here the sandbox's.
async fn idle_answers(
    kombo: &adapters_kombo::KomboClient,
    integration: &IntegrationId,
) -> anyhow::Result<f64> {
    use domain::ports::AtsGateway;
    let mut times = Vec::new();
    for _ in 0..IDLE_PASSES {
        let query = pass_query(Some(chrono::Utc::now()));
        let started = Instant::now();
        kombo.integration_info(integration).await?;
        let page = kombo.fetch_applications(integration, &query, None).await?;
        times.push(started.elapsed());
        anyhow::ensure!(
            page.items.is_empty(),
            "an idle read found {} applications",
            page.items.len()
        );
    }
    Ok(median(times).as_secs_f64() * 1000.0)
}

/// The applications query a pass sends (deleted ones included, the default page size): from
/// the first application on for a full pass (`updated_after` `None`).
fn pass_query(
    updated_after: Option<chrono::DateTime<chrono::Utc>>,
) -> domain::ports::ApplicationQuery {
    domain::ports::ApplicationQuery {
        updated_after,
        include_deleted: true,
        page_size: app_server::config::Settings::default().sync.page_size,
        ..domain::ports::ApplicationQuery::default()
    }
}

/// Reads every application page of `integration` as a full pass would, storing nothing: the
/// part of the pass's time that is Kombo's (here the sandbox's) and the client's.
async fn read_only(
    kombo: &adapters_kombo::KomboClient,
    integration: &IntegrationId,
) -> anyhow::Result<f64> {
    use domain::ports::AtsGateway;
    let query = pass_query(None);
    let started = Instant::now();
    let mut read = 0_u64;
    let mut cursor = None;
    loop {
        let page = kombo
            .fetch_applications(integration, &query, cursor)
            .await?;
        read += page.items.len() as u64;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let rate = per_second(read, started.elapsed());
    progress(&format!(
        "ingest: reading {read} applications alone: {} per second",
        format_value(rate)
    ));
    Ok(rate)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Records the peak resident set size as a pass crosses 10 %, 50 % and 100 % of the
/// applications it is expected to read.
#[derive(Debug)]
struct MemoryProbe {
    expected: usize,
    /// (share in percent, peak RSS in bytes), in the order crossed.
    samples: Mutex<Vec<(u32, u64)>>,
}

impl MemoryProbe {
    const MARKS: [u32; 3] = [10, 50, 100];

    fn new(expected: usize) -> Self {
        Self {
            expected: expected.max(1),
            samples: Mutex::new(Vec::new()),
        }
    }

    fn figures(&self, rss_before: u64) -> Vec<Figure> {
        let samples = self.samples.lock().expect("memory samples").clone();
        let mut figures = vec![Figure::reported(
            "4 memory",
            "RSS before the pass (sandbox seeded)",
            bytes_to_mib(rss_before),
            "MiB",
        )];
        for (mark, peak) in &samples {
            figures.push(Figure::reported(
                "4 memory",
                format!("peak RSS at {mark} % of the ingest"),
                bytes_to_mib(*peak),
                "MiB",
            ));
        }
        if let (Some((_, first)), Some((_, last))) = (samples.first(), samples.last()) {
            let growth = bytes_to_mib(last.saturating_sub(*first));
            figures.push(
                Figure::reported(
                    "4 memory",
                    "peak RSS growth from 10 % to 100 %",
                    growth,
                    "MiB",
                )
                .judged("<= 64 MiB (flat)", growth <= 64.0),
            );
        }
        figures
    }
}

impl PassObserver for MemoryProbe {
    fn page_applied(&self, report: &PassReport) {
        let seen = usize::try_from(report.applications_seen).unwrap_or(usize::MAX);
        let mut samples = self.samples.lock().expect("memory samples");
        for mark in Self::MARKS {
            let crossed = seen * 100 >= self.expected * mark as usize;
            if crossed && !samples.iter().any(|(done, _)| *done == mark) {
                let peak = memory::peak_rss_bytes().unwrap_or_default();
                samples.push((mark, peak));
                progress(&format!(
                    "ingest: {mark} % ({seen} applications), peak RSS {} MiB",
                    format_value(bytes_to_mib(peak))
                ));
            }
        }
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

#[allow(clippy::cast_precision_loss)] // sizes far below 2^52
fn bytes_to_mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}
