//! Figure 8, as the design states it: one job's funnel over N applications.
//!
//! A sandbox integration with a single job of N applications is ingested by a full pass; the
//! sandbox then advances N steps (moves forward and back, skipped stages, hires, declines,
//! deletions, new applications), which an incremental pass records, three times over, so that
//! many applications have a history of stays timed from entry to exit and not only the stage
//! they were first seen in. The figure is the median of
//! [`CALLS`] calls of `Store::funnel` for that job, after one untimed call.

use std::time::Instant;

use anyhow::Context;
use domain::sync::PassMode;
use domain::{Funnel, FunnelQuery, JobId};
use kombo_sandbox::{AtsProfile, IntegrationConfig, Sandbox, SandboxConfig};

use crate::database::BenchDatabase;
use crate::report::{Figure, progress};
use crate::rig;
use crate::stats::Latencies;

const INTEGRATION: &str = "bench-funnel-greenhouse";
/// Timed calls of a funnel; the figure is their median.
pub(crate) const CALLS: usize = 5;
/// Rounds of sandbox changes, each followed by an incremental pass.
const HISTORY_ROUNDS: usize = 3;
/// The design's target.
const TARGET_MS: f64 = 200.0;

pub(crate) async fn run(admin_url: &str, applications: usize) -> anyhow::Result<Vec<Figure>> {
    BenchDatabase::around(admin_url, async |database| {
        measure(database, applications).await
    })
    .await
}

async fn measure(database: &BenchDatabase, applications: usize) -> anyhow::Result<Vec<Figure>> {
    let store = database.store(8).await?;
    progress(&format!(
        "job funnel: one job of {applications} applications"
    ));
    let sandbox = Sandbox::start(
        SandboxConfig::new("bench-funnel-key")
            .with_seed(41)
            .with_integration(
                IntegrationConfig::new(INTEGRATION, "greenhouse", AtsProfile::Full)
                    .with_jobs(1, applications),
            )
            .with_manual_clock(),
    )
    .await?;
    let measured = async {
        let kombo = rig::kombo_client(&sandbox)?;
        let sync = rig::sync_service(kombo, &store);
        let integration = rig::register(&store, INTEGRATION).await?;
        let lease = rig::claim(&store, &integration).await?;
        sync.run_pass(&integration, lease, PassMode::Full, &())
            .await?;
        // A stay is timed once both its ends were seen: the stage an application was first
        // seen in has no known entry. Rounds of changes, each recorded by a pass, give stays
        // that began and ended under observation.
        for round in 1..=HISTORY_ROUNDS {
            let steps = sandbox.handle().advance(applications).len();
            let history = sync
                .run_pass(&integration, lease, PassMode::Incremental, &())
                .await?;
            progress(&format!(
                "job funnel: round {round} of {HISTORY_ROUNDS}: {steps} steps made, {} \
                 applications read again",
                history.applications_seen
            ));
        }
        let job = store
            .list_jobs(&integration)
            .await?
            .into_iter()
            .max_by_key(|job| job.tracked)
            .context("the job is stored")?
            .job_id;
        time_funnel(&store, &integration, job).await
    }
    .await;
    sandbox.shutdown().await;
    measured
}

async fn time_funnel(
    store: &adapters_postgres::Store,
    integration: &domain::IntegrationId,
    job: JobId,
) -> anyhow::Result<Vec<Figure>> {
    let query = FunnelQuery {
        integration: Some(integration.clone()),
        job: Some(job),
        ..FunnelQuery::default()
    };
    let (first, median) = timed(store, &query).await?;
    let closed: u64 = first.stages.iter().map(|stage| stage.completed_stays).sum();
    progress(&format!(
        "job funnel: {} applications, {} stages, {closed} completed stays: {median:.1} ms \
         (median of {CALLS})",
        first.applications.total,
        first.stages.len()
    ));
    Ok(vec![
        Figure::reported(
            "8 funnel",
            format!(
                "one job's funnel over {} applications ({closed} completed stays), median of \
                 {CALLS}",
                first.applications.total
            ),
            median,
            "ms",
        )
        .judged("< 200 ms", median < TARGET_MS),
    ])
}

/// The funnel of `query`, and the median time of [`CALLS`] calls in milliseconds, after one
/// untimed call (whose answer is returned).
pub(crate) async fn timed(
    store: &adapters_postgres::Store,
    query: &FunnelQuery,
) -> anyhow::Result<(Funnel, f64)> {
    let first = store.funnel(query).await?;
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        store.funnel(query).await?;
        times.push(started.elapsed());
    }
    Ok((first, Latencies::new(times).percentile_ms(50.0)))
}
