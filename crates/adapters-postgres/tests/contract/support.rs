//! Databases for the contract suite: a fresh PostgreSQL database with a random name per test
//! (dropped afterwards, even when the test fails), or an SQLite file in a temporary directory.

use adapters_postgres::{Backend, NewIntegration, Store, StoreOptions};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::detect::StageEntry;
use domain::event::{Baseline, StageChange};
use domain::ports::EventReader;
use domain::ports::{FeedQuery, PageChanges};
use domain::{
    ApplicationId, ChangeEvent, EventKind, FeedEvent, IntegrationId, Origin, Outcome, StageRef,
    TrackedApplication,
};
use sea_orm::{ConnectionTrait, Database, Statement};

/// The server the suite creates its databases on; `STAGEWATCH_TEST_POSTGRES_URL` overrides it.
pub(crate) fn admin_url() -> String {
    std::env::var("STAGEWATCH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// What to do when PostgreSQL does not answer: the suite must fail, never skip.
pub(crate) fn unreachable_message(url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "PostgreSQL is not reachable at {url}: {error}\n\
         The storage contract tests run against a real PostgreSQL server. Start one:\n  \
         sudo pg_ctlcluster \"$(ls /etc/postgresql)\" main start   (Debian/Ubuntu package)\n  \
         docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16\n\
         or point STAGEWATCH_TEST_POSTGRES_URL at a server where the user may create databases."
    )
}

/// A database that lives as long as the test.
pub(crate) struct TestDb {
    pub(crate) url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub(crate) async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!("stagewatch_test_{}", uuid::Uuid::new_v4().simple());
                let server = Database::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("{}", unreachable_message(&admin, &e)));
                server
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                server.close().await.ok();
                let base = admin.rsplit_once('/').expect("URL with a database").0;
                TestDb {
                    url: format!("{base}/{name}"),
                    postgres_name: Some(name),
                    _dir: None,
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path = dir.path().join("stagewatch.db");
                TestDb {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    postgres_name: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// A migrated store on this database; each call opens its own pool, like a replica would.
    pub(crate) async fn store(&self) -> Store {
        Store::connect(&self.url).await.expect("connect the store")
    }

    pub(crate) async fn unmigrated_store(&self) -> Store {
        Store::connect_with(StoreOptions {
            url: self.url.clone(),
            max_connections: 5,
            migrate: false,
        })
        .await
        .expect("connect the store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs outside async; a helper thread owns a small runtime for the clean-up.
        let admin = admin_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(server) = Database::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = server
                        .execute_raw(Statement::from_string(server.get_database_backend(), sql))
                        .await;
                    let _ = server.close().await;
                }
            });
        })
        .join();
    }
}

/// Runs a contract test on each backend, as `<name>::postgres` and `<name>::sqlite`.
#[macro_export]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(adapters_postgres::Backend::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(adapters_postgres::Backend::Sqlite).await;
            }
        }
    )*};
}

/// `2026-11-28T10:00:00Z` plus `minutes`.
pub(crate) fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap() + Duration::minutes(minutes)
}

pub(crate) fn integration(name: &str) -> IntegrationId {
    IntegrationId::parse(format!("greenhouse:{name}")).unwrap()
}

pub(crate) fn stage(id: &str, index: i32) -> StageRef {
    StageRef {
        stage_id: domain::StageId::parse(id).unwrap(),
        name: Some(id.to_uppercase()),
        index: Some(index),
    }
}

/// A tracked application of job `backend` in `stage`, last changed at minute `minute`.
pub(crate) fn tracked(
    integration: &IntegrationId,
    app: &str,
    stage: StageRef,
    minute: i64,
) -> TrackedApplication {
    TrackedApplication {
        integration_id: integration.clone(),
        id: ApplicationId::parse(app).unwrap(),
        remote_id: None,
        job_id: Some(domain::JobId::parse("backend").unwrap()),
        job_name: Some("Backend Engineer".into()),
        candidate_id: None,
        candidate_name: Some("Jane Doe".into()),
        current_stage: Some(stage),
        stage_unknown_since: None,
        outcome: Some(Outcome::Pending),
        outcome_unknown_since: None,
        rejection_reason_name: None,
        rejected_at: None,
        changed_at: at(minute),
        deleted_at: None,
        remote_created_at: Some(at(0)),
        origin: Origin::Discovered,
        first_seen_at: at(0),
        last_seen_at: at(minute),
        entered_current_stage_at: Some(at(minute)),
    }
}

/// `application.discovered` for a state.
/// The `application.created` event of an application created through the API.
pub(crate) fn created(state: &TrackedApplication) -> ChangeEvent {
    ChangeEvent::for_application(
        state,
        EventKind::ApplicationCreated(Baseline {
            stage: state.current_stage.clone(),
            outcome: state.outcome.clone(),
            deleted: false,
        }),
        state.changed_at,
        state.changed_at,
    )
}

pub(crate) fn discovered(state: &TrackedApplication) -> ChangeEvent {
    ChangeEvent::for_application(
        state,
        EventKind::ApplicationDiscovered(Baseline {
            stage: state.current_stage.clone(),
            outcome: state.outcome.clone(),
            deleted: false,
        }),
        state.changed_at,
        state.last_seen_at,
    )
}

/// `application.stage_changed` from `from` to the state's stage.
pub(crate) fn moved(state: &TrackedApplication, from: StageRef) -> ChangeEvent {
    ChangeEvent::for_application(
        state,
        EventKind::StageChanged(StageChange {
            from: Some(from),
            to: state.current_stage.clone().unwrap(),
            direction: domain::event::Direction::Forward,
            skipped: Vec::new(),
            time_in_previous_stage_seconds: None,
        }),
        state.changed_at,
        state.last_seen_at,
    )
}

/// The stage entry of a state, for the timeline.
pub(crate) fn entry(state: &TrackedApplication) -> StageEntry {
    StageEntry {
        application_id: state.id.clone(),
        stage: state.current_stage.clone().unwrap(),
        entered_at: state.entered_current_stage_at,
    }
}

/// A page that discovers `apps` applications named `{prefix}-{n}`.
pub(crate) fn discovery_page(
    integration: &IntegrationId,
    prefix: &str,
    apps: usize,
) -> PageChanges {
    let states: Vec<TrackedApplication> = (0..apps)
        .map(|n| {
            tracked(
                integration,
                &format!("{prefix}-{n}"),
                stage("applied", 0),
                1,
            )
        })
        .collect();
    PageChanges {
        integration_id: integration.clone(),
        lease: None,
        events: states.iter().map(discovered).collect(),
        stage_entries: states.iter().map(entry).collect(),
        applications: states,
        held: Vec::new(),
        pipelines: Vec::new(),
    }
}

/// The whole feed, read in pages of `page`.
pub(crate) async fn whole_feed(store: &Store, page: u32) -> Vec<FeedEvent> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let events = store
            .read_events(&FeedQuery {
                after,
                limit: page,
                types: Vec::new(),
                integration: None,
            })
            .await
            .unwrap();
        let Some(last) = events.last() else {
            return all;
        };
        after = Some(last.sequence);
        all.extend(events);
    }
}

/// Asserts the feed's sequences are exactly 1..=n, in order.
pub(crate) fn assert_gap_free(feed: &[FeedEvent]) {
    let sequences: Vec<i64> = feed.iter().map(|e| e.sequence).collect();
    let expected: Vec<i64> = (1..=i64::try_from(feed.len()).unwrap()).collect();
    assert_eq!(
        sequences, expected,
        "the feed must number events 1, 2, 3, … without gaps"
    );
}

/// Registers the integration `name` with default settings, as of minute 0.
pub(crate) async fn registered(store: &Store, name: &str) -> IntegrationId {
    let id = integration(name);
    store
        .register_integration(
            &NewIntegration {
                id: id.clone(),
                tool: None,
                label: None,
                poll_interval: None,
            },
            at(0),
        )
        .await
        .unwrap();
    id
}
