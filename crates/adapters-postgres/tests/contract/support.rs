//! The contract suite's fixtures: each test's database (`adapters_postgres::scratch`, shared with
//! the other crates' tests), and small builders of states, events and pages.

use adapters_postgres::{NewIntegration, Store};
use domain::detect::StageEntry;
use domain::event::{Baseline, StageChange};
use domain::ports::EventReader;
use domain::ports::{FeedQuery, PageChanges};
use domain::{
    ApplicationId, ChangeEvent, EventKind, FeedEvent, IntegrationId, Origin, Outcome, StageRef,
    TrackedApplication,
};

/// Each test's own database, on either backend.
pub(crate) use adapters_postgres::scratch::ScratchDatabase as TestDb;
pub(crate) use adapters_postgres::scratch::{postgres_admin_url as admin_url, unreachable_message};

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

/// The domain's clock fixture: `2026-11-28T10:00:00Z` plus `minutes`.
pub(crate) use domain::fixtures::at;

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
