//! End to end: the sandbox makes hundreds of transitions, the sync workers poll it, and the
//! events stored are compared with the sandbox's ground truth — on SQLite and on PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::{NewIntegration, Store};
use app_server::worker::{ScheduleSettings, Scheduler, SchedulerSettings};
use common::{TestDatabase, kombo_client};
use domain::ports::{EventReader, FeedQuery, SystemClock};
use domain::sync::{SyncService, SyncSettings};
use domain::{EventKind, FeedEvent, IntegrationId};
use kombo_sandbox::{
    AtsProfile, IntegrationConfig, Sandbox, SandboxConfig, TruthChange, TruthEntry,
};
use tokio_util::sync::CancellationToken;

const INTEGRATION: &str = "acme-greenhouse";

struct Rig {
    sandbox: kombo_sandbox::RunningSandbox,
    store: Store,
    scheduler: Arc<Scheduler>,
    shutdown: CancellationToken,
    workers: tokio::task::JoinHandle<()>,
    id: IntegrationId,
}

impl Rig {
    async fn start(store: Store, seed: u64) -> Self {
        let sandbox = Sandbox::start(
            SandboxConfig::new("sandbox-key")
                .with_seed(seed)
                .with_integration(
                    IntegrationConfig::new(INTEGRATION, "greenhouse", AtsProfile::Full)
                        .with_jobs(3, 5),
                )
                .with_manual_clock(),
        )
        .await
        .expect("sandbox");
        let kombo = kombo_client(&sandbox.base_url(), sandbox.api_key());
        let sync = SyncService::new(
            kombo,
            Arc::new(store.clone()),
            Arc::new(SystemClock),
            SyncSettings::default(),
        );
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            sync,
            Arc::new(SystemClock),
            SchedulerSettings {
                schedule: ScheduleSettings {
                    // Passes run when the test asks, not on a timer.
                    poll_interval: Duration::from_secs(3600),
                    jitter: 0.0,
                    full_pass_every: Duration::from_secs(86_400),
                    max_backoff: Duration::from_secs(60),
                    not_ready_retry: Duration::from_secs(60),
                },
                concurrency: 2,
                lease: Duration::from_secs(30),
                claim_every: Duration::from_millis(50),
                owner: "e2e".to_owned(),
            },
        ));
        let id = IntegrationId::parse(INTEGRATION).unwrap();
        store
            .register_integration(
                &NewIntegration {
                    id: id.clone(),
                    tool: Some("greenhouse".to_owned()),
                    label: None,
                    poll_interval: None,
                },
                chrono::Utc::now(),
            )
            .await
            .expect("register");
        let shutdown = CancellationToken::new();
        let workers = tokio::spawn(Arc::clone(&scheduler).run(shutdown.clone()));
        let rig = Self {
            sandbox,
            store,
            scheduler,
            shutdown,
            workers,
            id,
        };
        // The first (full) pass runs at once after registration.
        rig.wait_for_pass(None).await;
        rig
    }

    /// Makes the integration due, wakes the workers and waits for the pass to finish.
    async fn poll(&self) {
        let before = self
            .store
            .integration(&self.id)
            .await
            .unwrap()
            .unwrap()
            .last_pass_finished_at;
        self.store
            .make_due(&self.id, chrono::Utc::now())
            .await
            .unwrap();
        self.scheduler.waker().notify_one();
        self.wait_for_pass(before).await;
    }

    async fn wait_for_pass(&self, after: Option<chrono::DateTime<chrono::Utc>>) {
        for _ in 0..400 {
            let record = self.store.integration(&self.id).await.unwrap().unwrap();
            if record.last_pass_finished_at > after && record.lease_owner.is_none() {
                assert!(
                    record.failing_since.is_none(),
                    "the pass failed: {:?}",
                    record.last_error
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let record = self.store.integration(&self.id).await.unwrap().unwrap();
        panic!("no sync pass finished within 10 s: {record:?}");
    }

    async fn record(&self) -> adapters_postgres::IntegrationRecord {
        self.store.integration(&self.id).await.unwrap().unwrap()
    }

    async fn events(&self) -> Vec<FeedEvent> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .read_events(&FeedQuery {
                    after,
                    limit: 1000,
                    types: Vec::new(),
                    integration: Some(self.id.clone()),
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.sequence);
            all.extend(page);
        }
        all
    }

    async fn stop(self) -> Store {
        self.shutdown.cancel();
        self.workers.await.unwrap();
        self.sandbox.shutdown().await;
        self.store
    }
}

/// What an application event says, reduced to what the ground truth can check.
fn observed(event: &FeedEvent) -> Option<(String, String)> {
    let application = event.event.application.as_ref()?;
    let detail = match &event.event.kind {
        EventKind::StageChanged(change) => format!(
            "{}->{}",
            change.from.as_ref().map_or("?", |s| s.stage_id.as_str()),
            change.to.stage_id
        ),
        EventKind::JobChanged(change) => format!(
            "{}->{}",
            change.from.as_ref().map_or("?", |j| j.id.as_str()),
            change.to.id
        ),
        _ => String::new(),
    };
    Some((
        application.id.to_string(),
        format!("{} {detail}", event.event.kind.name())
            .trim()
            .to_owned(),
    ))
}

/// The events a change-detecting consumer must report for one ground-truth transition.
fn expected(
    entry: &TruthEntry,
    stage_of: &mut BTreeMap<String, String>,
    job_of: &mut BTreeMap<String, String>,
) -> Vec<String> {
    let app = &entry.application_id;
    match &entry.change {
        TruthChange::Created { stage_id } => {
            stage_of.insert(app.clone(), stage_id.clone());
            job_of.insert(app.clone(), entry.job_id.clone());
            vec!["application.discovered".to_owned()]
        }
        TruthChange::Tracked => vec!["application.discovered".to_owned()],
        TruthChange::StageMoved { from, to } => {
            stage_of.insert(app.clone(), to.clone());
            vec![format!("application.stage_changed {from}->{to}")]
        }
        TruthChange::Hired => vec![
            "application.outcome_changed".to_owned(),
            "application.hired".to_owned(),
        ],
        TruthChange::Declined { .. } => vec![
            "application.outcome_changed".to_owned(),
            "application.declined".to_owned(),
        ],
        TruthChange::Reopened => vec![
            "application.outcome_changed".to_owned(),
            "application.reopened".to_owned(),
        ],
        TruthChange::JobChanged {
            from_job,
            to_job,
            stage_id,
        } => {
            let from_stage = stage_of
                .insert(app.clone(), stage_id.clone())
                .unwrap_or_default();
            job_of.insert(app.clone(), to_job.clone());
            vec![
                format!("application.job_changed {from_job}->{to_job}"),
                format!("application.stage_changed {from_stage}->{stage_id}"),
            ]
        }
        TruthChange::Deleted => vec!["application.deleted".to_owned()],
        TruthChange::Restored => vec!["application.restored".to_owned()],
        _ => Vec::new(),
    }
}

/// Polls after every step: each poll sees every change, so the events must equal the truth.
async fn every_transition_becomes_exactly_its_events(database: TestDatabase) {
    let store = database.store().await;
    let rig = Rig::start(store, 11).await;
    let seeded: Vec<String> = rig
        .sandbox
        .handle()
        .current_applications(INTEGRATION)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let baseline = rig.sandbox.handle().truth(INTEGRATION).len();
    let mut transitions = 0;
    let mut rounds = 0;
    while transitions < 200 {
        let made = rig.sandbox.handle().advance(1);
        transitions += made.iter().filter(|e| e.change.is_transition()).count();
        rig.poll().await;
        rounds += 1;
        assert!(rounds < 2000, "the sandbox makes too few transitions");
    }
    let truth = rig.sandbox.handle().truth(INTEGRATION);
    let events = rig.events().await;

    let mut stage_of = BTreeMap::new();
    let mut job_of = BTreeMap::new();
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for app in &seeded {
        want.entry(app.clone())
            .or_default()
            .push("application.discovered".to_owned());
    }
    for entry in &truth[..baseline] {
        // Seeding history: the starting stage of each seeded application.
        let _ = expected(entry, &mut stage_of, &mut job_of);
    }
    for app in &seeded {
        if let Some(first) = events.iter().find(|e| {
            e.event
                .application
                .as_ref()
                .is_some_and(|a| &a.id.to_string() == app)
        }) && let Some(stage) = first
            .event
            .application
            .as_ref()
            .and_then(|a| a.current_stage.as_ref())
        {
            stage_of.insert(app.clone(), stage.stage_id.to_string());
        }
    }
    for entry in &truth[baseline..] {
        want.entry(entry.application_id.clone())
            .or_default()
            .extend(expected(entry, &mut stage_of, &mut job_of));
    }
    want.retain(|_, events| !events.is_empty());

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in &events {
        if let Some((app, what)) = observed(event) {
            got.entry(app).or_default().push(what);
        }
    }
    for (app, wanted) in &want {
        assert_eq!(got.get(app), Some(wanted), "events of application {app}");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "events for applications the truth never changed"
    );
    let mut ids: Vec<_> = events.iter().map(|e| e.event.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "an event was stored twice");
    rig.stop().await;
    database.drop_database().await;
}

/// Polls less often than things change: intermediate states are unobservable, but the last
/// event of every application must match where it stands now.
async fn sparse_polls_end_at_the_last_observable_state(database: TestDatabase) {
    let store = database.store().await;
    let rig = Rig::start(store, 23).await;
    for _ in 0..20 {
        rig.sandbox.handle().advance(15);
        rig.poll().await;
    }
    let events = rig.events().await;
    let now = rig.sandbox.handle().current_applications(INTEGRATION);
    assert!(!now.is_empty());
    for application in &now {
        let id = application["id"].as_str().unwrap();
        let last = events
            .iter()
            .rev()
            .find_map(|e| e.event.application.as_ref().filter(|a| a.id.as_str() == id))
            .unwrap_or_else(|| panic!("no event for application {id}"));
        let stage = application["current_stage_id"].as_str();
        assert_eq!(
            last.current_stage.as_ref().map(|s| s.stage_id.as_str()),
            stage,
            "stage of {id}"
        );
        let outcome = application["outcome"].as_str();
        assert_eq!(
            last.outcome.as_ref().map(domain::Outcome::as_str),
            outcome,
            "outcome of {id}"
        );
        assert_eq!(
            last.deleted,
            !application["remote_deleted_at"].is_null(),
            "deletion of {id}"
        );
    }
    let store = rig.stop().await;
    drop(store);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_transition_becomes_exactly_its_events() {
    every_transition_becomes_exactly_its_events(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_transition_becomes_exactly_its_events() {
    every_transition_becomes_exactly_its_events(TestDatabase::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sparse_polls_end_at_the_last_observable_state() {
    sparse_polls_end_at_the_last_observable_state(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sparse_polls_end_at_the_last_observable_state() {
    sparse_polls_end_at_the_last_observable_state(TestDatabase::postgres().await).await;
}

/// A sync asked for while a pass runs (a `data-changed` webhook arriving mid-pass) is not lost:
/// another pass follows at once instead of after the poll interval (an hour here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_requested_during_a_pass_runs_right_after_it() {
    use kombo_sandbox::{Endpoint, Fault, FaultRule, Trigger};
    let database = TestDatabase::sqlite();
    let rig = Rig::start(database.store().await, 31).await;
    rig.sandbox.handle().add_fault(
        FaultRule::new(Fault::Slow(Duration::from_millis(500)), Trigger::Next(1))
            .on(&[Endpoint::Applications]),
    );
    let reads = || rig.sandbox.handle().request_count(Endpoint::Applications);
    let before = reads();
    rig.store
        .make_due(&rig.id, chrono::Utc::now())
        .await
        .unwrap();
    rig.scheduler.waker().notify_one();
    // Wait until the (slow) pass holds the lease, then ask again, as a webhook would.
    for _ in 0..200 {
        if rig.record().await.lease_owner.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        rig.record().await.lease_owner.is_some(),
        "the pass did not start"
    );
    rig.store
        .make_due(&rig.id, chrono::Utc::now())
        .await
        .unwrap();
    rig.scheduler.waker().notify_one();
    // No further request: a second pass must read applications by itself, long before the
    // hour-long interval.
    let mut passes = 0;
    for _ in 0..400 {
        passes = reads() - before;
        if passes >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        passes >= 2,
        "the sync asked for during the pass did not run"
    );
    rig.stop().await;
    database.drop_database().await;
}
