use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_postgres::{IntegrationRecord, Store};
use chrono::{DateTime, Utc};
use domain::ports::{Clock, StoreError};
use domain::sync::{PassMode, PassOutcome, PassReport, SyncError, SyncService};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};

use super::observer::ShutdownObserver;
use super::schedule::{ScheduleSettings, chrono_duration, next_due, wants_full_pass};

/// How the scheduler claims and runs integrations.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub schedule: ScheduleSettings,
    /// Integrations synced at once by this process.
    pub concurrency: usize,
    pub lease: Duration,
    pub claim_every: Duration,
    /// This process's name in leases.
    pub owner: String,
}

/// Claims due integrations and runs their passes until shut down.
pub struct Scheduler {
    store: Store,
    sync: SyncService,
    clock: Arc<dyn Clock>,
    settings: SchedulerSettings,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    pub fn new(
        store: Store,
        sync: SyncService,
        clock: Arc<dyn Clock>,
        settings: SchedulerSettings,
    ) -> Self {
        Self {
            store,
            sync,
            clock,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notified when an integration became due now (a Kombo webhook, an API call), so that it
    /// does not wait for the next claim tick.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Runs until `shutdown` is cancelled; then stops claiming, lets each pass finish the page
    /// in flight, releases the leases and returns.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tracing::info!(
            owner = %self.settings.owner,
            concurrency = self.settings.concurrency,
            "sync workers started"
        );
        let mut running = JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // Every pass that ended meanwhile frees its slot, not only the one that woke this
            // loop.
            while running.try_join_next().is_some() {}
            let free = self.settings.concurrency.saturating_sub(running.len());
            if free > 0 {
                self.claim(free, &mut running, &shutdown).await;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.claim_every) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        tracing::info!(in_flight = running.len(), "sync workers stopping");
        while running.join_next().await.is_some() {}
        tracing::info!("sync workers stopped");
    }

    async fn claim(
        self: &Arc<Self>,
        free: usize,
        running: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) {
        let limit = u32::try_from(free).unwrap_or(u32::MAX);
        match self
            .store
            .claim_due(
                &self.settings.owner,
                limit,
                self.settings.lease,
                self.clock.now(),
            )
            .await
        {
            Ok(claimed) => {
                for record in claimed {
                    let scheduler = Arc::clone(self);
                    let shutdown = shutdown.clone();
                    running.spawn(async move { scheduler.run_claimed(record, shutdown).await });
                }
            }
            Err(error) => tracing::warn!(%error, "could not claim due integrations"),
        }
    }

    /// One pass of a claimed integration, with its lease kept alive, then the lease released
    /// with the next due time.
    async fn run_claimed(self: Arc<Self>, record: IntegrationRecord, shutdown: CancellationToken) {
        let id = record.id.clone();
        let now = self.clock.now();
        let mode = if wants_full_pass(
            record.last_full_pass_at,
            now,
            self.settings.schedule.full_pass_every,
        ) {
            PassMode::Full
        } else {
            PassMode::Incremental
        };
        let lease_lost = CancellationToken::new();
        let keeper = tokio::spawn(keep_lease(
            self.store.clone(),
            Arc::clone(&self.clock),
            record.clone(),
            self.settings.lease,
            lease_lost.clone(),
        ));
        let observer = ShutdownObserver {
            shutdown,
            lease_lost: lease_lost.clone(),
        };
        let span = tracing::info_span!(
            "sync_pass",
            integration = %id,
            mode = ?mode,
            outcome = field::Empty,
            pages = field::Empty,
            applications_seen = field::Empty,
            events = field::Empty,
            events_by_kind = field::Empty,
            duration_ms = field::Empty,
        );
        let started = Instant::now();
        metrics::gauge!("stagewatch_integrations_syncing").increment(1.0);
        // A lost lease stops the pass at once, mid-page if need be (the page's transaction
        // rolls back); the store would refuse its next write anyway.
        let result = tokio::select! {
            result = self.sync.run_pass(&id, record.lease_epoch, mode, &observer).instrument(span.clone()) => Some(result),
            () = lease_lost.cancelled() => None,
        };
        metrics::gauge!("stagewatch_integrations_syncing").decrement(1.0);
        keeper.abort();
        let Some(result) = result else {
            tracing::warn!(integration = %id, epoch = record.lease_epoch.0, "lease lost during the pass; the pass stopped and another worker owns the integration now");
            metrics::counter!("stagewatch_sync_passes_total", "outcome" => "lease_lost", "integration" => id.to_string())
                .increment(1);
            return;
        };
        record_pass(&span, &id, &result, started.elapsed());
        if let Err(error) = &result
            && error.is_lease_lost()
        {
            count_fenced_write(error);
            return;
        }
        let finished = self.clock.now();
        let (next, full_done) = self.after_pass(&record, &result, finished);
        // A webhook or an API call that made the integration due while this pass ran moved
        // `next_sync_at`; the release keeps that earlier time (compared in the same statement),
        // since the change it announced may have come after the pages were read.
        // Fenced by the claim's epoch: a lease lost meanwhile is left to its new owner.
        if let Err(error) = self.store.release_lease(&record, next, full_done).await {
            // The lease runs out by itself; the integration is picked up again then.
            tracing::warn!(integration = %id, %error, "could not release the lease");
        }
    }

    fn after_pass(
        &self,
        record: &IntegrationRecord,
        result: &Result<PassReport, SyncError>,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        let schedule = &self.settings.schedule;
        let interval = record.poll_interval.unwrap_or(schedule.poll_interval);
        let random = rand::random::<f64>();
        match result {
            // Interrupted by shutdown: due at once, for whichever worker comes next.
            Ok(report) if report.outcome == PassOutcome::Interrupted => (now, None),
            Ok(report) => {
                let full_done = (report.mode == PassMode::Full
                    && report.outcome == PassOutcome::Completed)
                    .then_some(report.started_at);
                (
                    next_due(Ok(()), interval, None, now, schedule, random),
                    full_done,
                )
            }
            Err(error) => {
                let failing_since = record.failing_since.or(Some(now));
                (
                    next_due(Err(error), interval, failing_since, now, schedule, random),
                    None,
                )
            }
        }
    }
}

/// Renews a claim's lease every third of its length until aborted. The lease is lost — and
/// `lost` cancelled — when the integration was claimed again, or when renewals kept failing
/// until the lease's last known expiry: from then on another replica may claim it.
pub async fn keep_lease(
    store: Store,
    clock: Arc<dyn Clock>,
    claimed: IntegrationRecord,
    lease: Duration,
    lost: CancellationToken,
) {
    let every = lease / 3;
    let mut expires_at = claimed
        .lease_expires_at
        .unwrap_or_else(|| clock.now() + chrono_duration(lease));
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        let now = clock.now();
        let until_expiry = (expires_at - now).to_std().unwrap_or_default();
        // A renewal still unanswered when the lease runs out is as good as a failed one.
        let renewed = tokio::time::timeout(until_expiry, store.renew_lease(&claimed, lease, now))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the renewal did not answer before the lease expired".to_owned(),
                ))
            });
        match renewed {
            Ok(true) => {
                expires_at = now + chrono_duration(lease);
                wait = every;
            }
            Ok(false) => {
                tracing::warn!(integration = %claimed.id, "the lease was claimed by another worker");
                lost.cancel();
                return;
            }
            Err(error) => {
                let now = clock.now();
                if now >= expires_at {
                    tracing::warn!(integration = %claimed.id, %error, %expires_at, "could not renew the lease before it expired; treating it as lost");
                    lost.cancel();
                    return;
                }
                tracing::warn!(integration = %claimed.id, %error, %expires_at, "could not renew the lease; retrying before it expires");
                // Retry sooner, and once more right at the expiry at the latest.
                let left = (expires_at - now).to_std().unwrap_or_default();
                wait = (every / 3).min(left);
            }
        }
    }
}

/// Counts (and the store has logged) a write refused because its pass lost the lease.
pub fn count_fenced_write(error: &SyncError) {
    if let SyncError::Store(StoreError::LeaseLost { operation, .. }) = error {
        metrics::counter!("stagewatch_fenced_writes_total", "operation" => *operation).increment(1);
    }
}

/// Fills the pass's span and counts it.
fn record_pass(
    span: &tracing::Span,
    integration: &domain::IntegrationId,
    result: &Result<PassReport, SyncError>,
    elapsed: Duration,
) {
    let integration = integration.to_string();
    span.record(
        "duration_ms",
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    );
    metrics::histogram!("stagewatch_sync_pass_seconds", "integration" => integration.clone())
        .record(elapsed.as_secs_f64());
    match result {
        Ok(report) => {
            let outcome = outcome_name(report.outcome);
            span.record("outcome", outcome);
            span.record("pages", report.pages);
            span.record("applications_seen", report.applications_seen);
            span.record("events", report.events_appended);
            span.record(
                "events_by_kind",
                field::display(serde_json::to_string(&report.events_by_kind).unwrap_or_default()),
            );
            metrics::counter!("stagewatch_sync_passes_total", "outcome" => outcome, "integration" => integration)
                .increment(1);
            metrics::counter!("stagewatch_applications_seen_total")
                .increment(report.applications_seen);
            for (kind, count) in &report.events_by_kind {
                metrics::counter!("stagewatch_events_detected_total", "type" => kind.clone())
                    .increment(*count);
            }
            for warning in &report.warnings {
                tracing::warn!(parent: span, warning = %warning, "sync pass warning");
            }
            span.in_scope(|| tracing::info!("sync pass finished"));
        }
        Err(error) => {
            span.record("outcome", error.kind());
            metrics::counter!("stagewatch_sync_passes_total", "outcome" => error.kind(), "integration" => integration)
                .increment(1);
            let retryable = !error.is_failure();
            span.in_scope(|| tracing::warn!(%error, retryable, "sync pass failed"));
        }
    }
}

fn outcome_name(outcome: PassOutcome) -> &'static str {
    match outcome {
        PassOutcome::Completed => "completed",
        PassOutcome::Interrupted => "interrupted",
        PassOutcome::ApplicationsUnreadable => "applications_unreadable",
    }
}
