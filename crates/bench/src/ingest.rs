//! Figures 1, 2 and 4: the first full pass from the sandbox into PostgreSQL against a raw
//! `COPY` of as many rows, the peak memory while it runs, and incremental passes after it.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::IntegrationId;
use domain::sync::{PassMode, PassObserver, PassReport, SyncService};
use kombo_sandbox::{AtsProfile, IntegrationConfig, Sandbox, SandboxConfig, SandboxHandle};

use crate::database::BenchDatabase;
use crate::report::{Figure, format_value, progress};
use crate::{memory, raw_copy, rig};

/// The integration whose first pass is measured.
const LARGE: &str = "bench-large-greenhouse";
/// An integration a tenth of its size, to show that an incremental pass costs the same per
/// changed application whatever the number tracked.
const SMALL: &str = "bench-small-greenhouse";
const APPLICATIONS_PER_JOB: usize = 100;
/// Sandbox steps before each incremental pass.
const STEPS: [usize; 3] = [10, 100, 1000];
const MIB: f64 = 1024.0 * 1024.0;

/// Runs figures 1, 2 and 4 with `applications` in the large integration.
pub(crate) async fn run(admin_url: &str, applications: usize) -> anyhow::Result<Vec<Figure>> {
    let database = BenchDatabase::create(admin_url).await?;
    let result = measure(&database, applications).await;
    database.drop_database().await?;
    result
}

async fn measure(database: &BenchDatabase, applications: usize) -> anyhow::Result<Vec<Figure>> {
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
            .with_manual_clock(),
    )
    .await?;
    let sync = rig::sync_service(rig::kombo_client(&sandbox)?, &store);
    let large = rig::register(&store, LARGE).await?;
    let small = rig::register(&store, SMALL).await?;
    let mut figures = Vec::new();

    let rss_before = memory::rss_bytes().unwrap_or_default();
    progress(&format!(
        "ingest: first full pass of {} applications (RSS before: {} MiB)",
        large_jobs * APPLICATIONS_PER_JOB,
        format_value(bytes_to_mib(rss_before))
    ));
    let memory = MemoryProbe::new(large_jobs * APPLICATIONS_PER_JOB);
    let started = Instant::now();
    let report = sync.run_pass(&large, PassMode::Full, &memory).await?;
    let ingest_time = started.elapsed();
    let ingested = report.applications_seen;
    let ingest_rate = per_second(ingested, ingest_time);
    progress(&format!(
        "ingest: {ingested} applications in {:.1} s ({} per second)",
        ingest_time.as_secs_f64(),
        format_value(ingest_rate)
    ));
    sync.run_pass(&small, PassMode::Full, &()).await?;

    progress(&format!("ingest: raw COPY of {ingested} rows"));
    let copy_time = raw_copy::copy_rows(&store, usize::try_from(ingested)?).await?;
    let copy_rate = per_second(ingested, copy_time);
    progress(&format!(
        "ingest: COPY took {:.1} s ({} rows per second)",
        copy_time.as_secs_f64(),
        format_value(copy_rate)
    ));
    figures.push(Figure::reported(
        "1 ingest",
        format!("first full pass, {ingested} applications"),
        ingest_rate,
        "apps/s",
    ));
    figures.push(Figure::reported(
        "1 ingest",
        "raw COPY of as many rows (baseline)",
        copy_rate,
        "rows/s",
    ));
    let share = ingest_rate / copy_rate * 100.0;
    figures.push(
        Figure::reported("1 ingest", "first pass rate / COPY rate", share, "%")
            .judged(">= 50 %", share >= 50.0),
    );

    figures.extend(memory.figures(rss_before));
    figures.extend(incremental(&sync, &sandbox.handle(), &large, &small).await?);
    sandbox.shutdown().await;
    Ok(figures)
}

/// Figure 2: for each number of steps, one incremental pass of each integration, costed per
/// application it read.
async fn incremental(
    sync: &SyncService,
    sandbox: &SandboxHandle,
    large: &IntegrationId,
    small: &IntegrationId,
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
        for integration in [large, small] {
            let started = Instant::now();
            let report = sync
                .run_pass(integration, PassMode::Incremental, &())
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
