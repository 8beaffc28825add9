//! Two worker processes against one PostgreSQL database never sync the same integration at
//! once. Each "process" is a scheduler with its own connection pool and owner name; a recording
//! store between the sync and the database notes every pass's start and end.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters_postgres::{NewIntegration, Store};
use app_server::worker::{ScheduleSettings, Scheduler, SchedulerSettings};
use async_trait::async_trait;
use common::{TestDatabase, kombo_client};
use domain::ports::{
    AppliedPage, HoldStats, IntegrationUpdate, LeaseEpoch, PageChanges, PassCompletion,
    PassFailure, StoreError, SyncState, SystemClock, TrackerStore,
};
use domain::sync::{SyncService, SyncSettings};
use domain::{ApplicationId, IntegrationId, JobId, Pipeline, TrackedApplication};
use kombo_sandbox::{Sandbox, SandboxConfig};
use tokio_util::sync::CancellationToken;

/// Passes in flight per integration, and the most ever seen at once.
#[derive(Default)]
struct Overlap {
    in_flight: BTreeMap<String, u32>,
    worst: u32,
    passes: u32,
}

/// A `TrackerStore` that records when passes start (`sync_state`) and end.
struct Recording {
    inner: Store,
    overlap: Arc<Mutex<Overlap>>,
}

impl Recording {
    fn end(&self, id: &IntegrationId) {
        let mut overlap = self.overlap.lock().unwrap();
        if let Some(n) = overlap.in_flight.get_mut(id.as_str()) {
            *n = n.saturating_sub(1);
        }
    }
}

#[async_trait]
impl TrackerStore for Recording {
    async fn sync_state(&self, integration: &IntegrationId) -> Result<SyncState, StoreError> {
        {
            let mut overlap = self.overlap.lock().unwrap();
            let n = overlap
                .in_flight
                .entry(integration.to_string())
                .or_default();
            *n += 1;
            let now = *n;
            overlap.worst = overlap.worst.max(now);
            overlap.passes += 1;
        }
        // Widen the window in which an overlap would show.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.inner.sync_state(integration).await
    }
    async fn update_integration(&self, update: IntegrationUpdate) -> Result<(), StoreError> {
        self.inner.update_integration(update).await
    }
    async fn load_applications(
        &self,
        i: &IntegrationId,
        ids: &[ApplicationId],
    ) -> Result<Vec<TrackedApplication>, StoreError> {
        self.inner.load_applications(i, ids).await
    }
    async fn load_pipelines(
        &self,
        i: &IntegrationId,
        jobs: &[JobId],
    ) -> Result<Vec<Pipeline>, StoreError> {
        self.inner.load_pipelines(i, jobs).await
    }
    async fn save_pipelines(&self, i: &IntegrationId, p: &[Pipeline]) -> Result<(), StoreError> {
        self.inner.save_pipelines(i, p).await
    }
    async fn apply_page(&self, changes: PageChanges) -> Result<AppliedPage, StoreError> {
        self.inner.apply_page(changes).await
    }
    async fn apply_first_sighting(&self, changes: PageChanges) -> Result<bool, StoreError> {
        self.inner.apply_first_sighting(changes).await
    }
    async fn hold_stats(&self, i: &IntegrationId) -> Result<HoldStats, StoreError> {
        self.inner.hold_stats(i).await
    }
    async fn count_held(&self, i: &IntegrationId) -> Result<u64, StoreError> {
        self.inner.count_held(i).await
    }
    async fn release_held(
        &self,
        i: &IntegrationId,
        lease: Option<LeaseEpoch>,
    ) -> Result<u64, StoreError> {
        self.inner.release_held(i, lease).await
    }
    async fn complete_pass(&self, completion: PassCompletion) -> Result<(), StoreError> {
        let id = completion.integration_id.clone();
        let result = self.inner.complete_pass(completion).await;
        self.end(&id);
        result
    }
    async fn record_failure(&self, failure: PassFailure) -> Result<(), StoreError> {
        let id = failure.integration_id.clone();
        let result = self.inner.record_failure(failure).await;
        self.end(&id);
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_worker_processes_never_sync_one_integration_at_once() {
    let database = TestDatabase::postgres().await;
    let sandbox = Sandbox::start(SandboxConfig::uniform(5, 6, 2, 3).with_manual_clock())
        .await
        .expect("sandbox");
    let setup = database.store().await;
    for id in sandbox.integration_ids() {
        setup
            .register_integration(
                &NewIntegration {
                    id: IntegrationId::parse(id).unwrap(),
                    tool: None,
                    label: None,
                    // Due again almost at once: both processes compete for every pass.
                    poll_interval: Some(Duration::from_millis(10)),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }
    let overlap = Arc::new(Mutex::new(Overlap::default()));
    let shutdown = CancellationToken::new();
    let mut processes = Vec::new();
    for owner in ["replica-a", "replica-b"] {
        // Its own pool, as a separate process would have.
        let store = database.store().await;
        let sync = SyncService::new(
            kombo_client(&sandbox.base_url(), sandbox.api_key()),
            Arc::new(Recording {
                inner: store.clone(),
                overlap: Arc::clone(&overlap),
            }),
            Arc::new(SystemClock),
            SyncSettings::default(),
        );
        let scheduler = Arc::new(Scheduler::new(
            store,
            sync,
            Arc::new(SystemClock),
            SchedulerSettings {
                schedule: ScheduleSettings {
                    poll_interval: Duration::from_millis(10),
                    jitter: 0.0,
                    full_pass_every: Duration::from_secs(86_400),
                    max_backoff: Duration::from_secs(1),
                    not_ready_retry: Duration::from_secs(1),
                },
                concurrency: 4,
                lease: Duration::from_secs(10),
                claim_every: Duration::from_millis(5),
                owner: owner.to_owned(),
            },
        ));
        processes.push(tokio::spawn(scheduler.run(shutdown.clone())));
    }
    let handle = sandbox.handle();
    for _ in 0..40 {
        handle.advance(3);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    for process in processes {
        process.await.unwrap();
    }
    let (passes, worst) = {
        let overlap = overlap.lock().unwrap();
        (overlap.passes, overlap.worst)
    };
    assert!(
        passes >= 20,
        "too few passes ran to show anything: {passes}"
    );
    assert_eq!(
        worst, 1,
        "an integration was synced by both processes at once"
    );
    // Every lease was released on shutdown.
    for record in setup.list_integrations().await.unwrap() {
        assert!(record.lease_owner.is_none(), "{} still leased", record.id);
    }
    sandbox.shutdown().await;
    drop(setup);
    database.drop_database().await;
}
