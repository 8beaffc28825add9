//! The sync use case against mockall mocks of its ports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::event::EventKind;
use domain::fixtures::{
    at, fully_supported, integration, integration_info, pipeline, snapshot, stage_id,
};
use domain::integration::TrackedField;
use domain::ports::{
    ApplicationQuery, AppliedPage, AtsError, HoldStats, LeaseEpoch, MockAtsGateway, MockClock,
    MockTrackerStore, Page, PageChanges, PageCursor, PassCompletion, PassFailure, StoreError,
    SyncState,
};
use domain::sync::{PassMode, PassObserver, PassOutcome, SyncError, SyncService, SyncSettings};
use domain::{ApplicationSnapshot, Capabilities, IntegrationStatus, Support, TrackedApplication};

fn synced_before() -> SyncState {
    SyncState {
        watermark: Some(at(-60)),
        capabilities: Some(fully_supported()),
        status: Some(IntegrationStatus::Active),
        failing_since: None,
        deletions_held: false,
    }
}

/// The fencing token of the claim every pass here runs under.
const LEASE: LeaseEpoch = LeaseEpoch(7);

fn cursor(value: &str) -> PageCursor {
    PageCursor(value.into())
}

/// What the store was asked to do, in order.
#[derive(Default)]
struct Recorded {
    pages: Vec<PageChanges>,
    completions: Vec<PassCompletion>,
    failures: Vec<PassFailure>,
    queries: Vec<ApplicationQuery>,
    cursors: Vec<Option<PageCursor>>,
    updates: Vec<domain::ports::IntegrationUpdate>,
    releases: u32,
    released_under: Vec<Option<LeaseEpoch>>,
}

type Shared = Arc<Mutex<Recorded>>;

/// A store that holds `held` states, knows the standard pipeline and records every write.
fn store(state: SyncState, held: Vec<TrackedApplication>, recorded: &Shared) -> MockTrackerStore {
    store_holding(state, held, recorded, HoldStats::default())
}

/// [`store`], with `stats` for the mass-deletion guard.
fn store_holding(
    state: SyncState,
    held: Vec<TrackedApplication>,
    recorded: &Shared,
    stats: HoldStats,
) -> MockTrackerStore {
    let mut store = MockTrackerStore::new();
    store
        .expect_sync_state()
        .returning(move |_| Ok(state.clone()));
    let updates = recorded.clone();
    store.expect_update_integration().returning(move |update| {
        updates.lock().unwrap().updates.push(update);
        Ok(())
    });
    store.expect_load_applications().returning(move |_, ids| {
        Ok(held
            .iter()
            .filter(|s| ids.contains(&s.id))
            .cloned()
            .collect())
    });
    store.expect_load_pipelines().returning(|_, jobs| {
        Ok(jobs
            .iter()
            .filter(|j| j.as_str() == "backend")
            .map(|_| pipeline())
            .collect())
    });
    store.expect_save_pipelines().returning(|_, _| Ok(()));
    let pages = recorded.clone();
    store.expect_apply_page().returning(move |changes| {
        let appended = changes.events.len() as u64;
        pages.lock().unwrap().pages.push(changes);
        Ok(AppliedPage {
            events_appended: appended,
        })
    });
    store.expect_hold_stats().returning(move |_| Ok(stats));
    store.expect_count_held().returning(move |_| Ok(stats.held));
    let releases = recorded.clone();
    store.expect_release_held().returning(move |_, lease| {
        let mut releases = releases.lock().unwrap();
        releases.releases += 1;
        releases.released_under.push(lease);
        Ok(stats.held)
    });
    let completions = recorded.clone();
    store.expect_complete_pass().returning(move |completion| {
        completions.lock().unwrap().completions.push(completion);
        Ok(())
    });
    let failures = recorded.clone();
    store.expect_record_failure().returning(move |failure| {
        failures.lock().unwrap().failures.push(failure);
        Ok(())
    });
    store
}

/// A Kombo that serves `pages` of applications in order, then whatever `after` says.
fn ats(
    capabilities: Capabilities,
    pages: Vec<Result<Page<ApplicationSnapshot>, AtsError>>,
    recorded: &Shared,
) -> MockAtsGateway {
    let mut ats = MockAtsGateway::new();
    ats.expect_integration_info()
        .returning(move |_| Ok(integration_info(capabilities.clone())));
    ats.expect_fetch_jobs()
        .returning(|_, _, _| Ok(Page::last(vec![pipeline()])));
    let pages = Mutex::new(pages.into_iter());
    let queries = recorded.clone();
    ats.expect_fetch_applications()
        .returning(move |_, query, cursor| {
            let mut recorded = queries.lock().unwrap();
            recorded.queries.push(query.clone());
            recorded.cursors.push(cursor);
            pages
                .lock()
                .unwrap()
                .next()
                .expect("no more pages were scripted")
        });
    ats
}

fn clock() -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(0));
    clock
}

fn service(ats: MockAtsGateway, store: MockTrackerStore) -> SyncService {
    SyncService::new(
        Arc::new(ats),
        Arc::new(store),
        Arc::new(clock()),
        SyncSettings::default(),
    )
}

#[allow(clippy::unnecessary_wraps)] // scripted pages are results, like the port's
fn page(
    items: Vec<ApplicationSnapshot>,
    next: Option<&str>,
) -> Result<Page<ApplicationSnapshot>, AtsError> {
    Ok(Page {
        items,
        next: next.map(cursor),
        skipped: Vec::new(),
    })
}

fn tracked(s: &ApplicationSnapshot) -> TrackedApplication {
    domain::detect(
        None,
        s,
        Some(&pipeline()),
        &domain::DetectContext::sync(at(-100)),
    )
    .next_state
}

fn kinds(events: &[domain::ChangeEvent]) -> Vec<&'static str> {
    events.iter().map(domain::ChangeEvent::type_name).collect()
}

#[test]
fn multi_page_pass_applies_each_page_and_then_moves_the_watermark() {
    let recorded = Shared::default();
    let held = vec![
        tracked(&snapshot("a1", "applied", -90)),
        tracked(&snapshot("a2", "applied", -90)),
    ];
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            page(
                vec![snapshot("a2", "applied", -90), snapshot("a3", "offer", -5)],
                None,
            ),
        ],
        &recorded,
    );
    let report = pollster::block_on(
        service(ats, store(synced_before(), held, &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    )
    .unwrap();

    assert_eq!(report.outcome, PassOutcome::Completed);
    assert_eq!((report.pages, report.applications_seen), (2, 3));
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.pages.len(), 2);
    assert_eq!(
        kinds(&recorded.pages[0].events),
        ["application.stage_changed"]
    );
    assert_eq!(kinds(&recorded.pages[1].events), ["application.discovered"]);
    assert_eq!(
        recorded.pages[1].applications.len(),
        2,
        "unchanged a2 is still seen"
    );
    // Incremental: from the watermark, deleted applications included.
    assert_eq!(recorded.queries[0].updated_after, Some(at(-60)));
    assert!(recorded.queries[0].include_deleted);
    assert_eq!(recorded.completions.len(), 1);
    let completion = &recorded.completions[0];
    assert_eq!(
        completion.watermark,
        Some(at(0) - SyncSettings::default().watermark_margin)
    );
    assert!(!completion.full);
    assert!(recorded.failures.is_empty());
}

#[test]
fn first_pass_is_full_and_fetches_every_pipeline() {
    let recorded = Shared::default();
    let mut ats = ats(
        fully_supported(),
        vec![page(vec![snapshot("a1", "applied", 0)], None)],
        &recorded,
    );
    ats.checkpoint();
    ats.expect_integration_info()
        .returning(|_| Ok(integration_info(fully_supported())));
    ats.expect_fetch_jobs()
        .withf(|_, query, _| query.ids.is_empty())
        .times(1)
        .returning(|_, _, _| Ok(Page::last(vec![pipeline()])));
    let queries = recorded.clone();
    ats.expect_fetch_applications()
        .returning(move |_, query, _| {
            queries.lock().unwrap().queries.push(query.clone());
            page(vec![snapshot("a1", "applied", 0)], None)
        });
    let report = pollster::block_on(
        service(ats, store(SyncState::default(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    )
    .unwrap();
    assert_eq!(report.mode, PassMode::Full);
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.queries[0].updated_after, None);
    assert!(recorded.completions[0].full);
    // Nothing was known: the first capabilities are announced.
    assert_eq!(
        report.events_by_kind.get("application.discovered"),
        Some(&1)
    );
}

#[test]
fn failure_mid_pass_keeps_applied_pages_and_the_old_watermark() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            Err(AtsError::Transient {
                reason: "502 from Kombo".into(),
            }),
        ],
        &recorded,
    );
    let result = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    );
    assert!(matches!(
        result,
        Err(SyncError::Ats(AtsError::Transient { .. }))
    ));
    let recorded = recorded.lock().unwrap();
    assert_eq!(
        recorded.pages.len(),
        1,
        "the first page stays applied, whole"
    );
    assert!(
        recorded.completions.is_empty(),
        "the watermark must not move"
    );
    let failure = &recorded.failures[0];
    assert_eq!(failure.error.kind, "transient");
    assert_eq!(failure.failing_since, Some(at(0)));
    assert_eq!(kinds(&failure.events), ["integration.sync_failed"]);
}

fn expired_cursor() -> Result<Page<ApplicationSnapshot>, AtsError> {
    Err(AtsError::CursorExpired {
        message: "PLATFORM.INPUT_INVALID: invalid cursor".into(),
    })
}

#[test]
fn an_expired_cursor_restarts_the_listing_from_its_first_page() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            expired_cursor(),
            page(vec![snapshot("a1", "onsite", -10)], Some("c2")),
            page(vec![snapshot("a2", "offer", -5)], None),
        ],
        &recorded,
    );
    let report = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    )
    .unwrap();
    assert_eq!(report.outcome, PassOutcome::Completed);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("first page again")),
        "{:?}",
        report.warnings
    );
    let recorded = recorded.lock().unwrap();
    assert_eq!(
        recorded.cursors,
        [None, Some(cursor("c1")), None, Some(cursor("c2"))]
    );
    assert!(
        recorded
            .queries
            .iter()
            .all(|q| q.updated_after == Some(at(-60))),
        "the restart reads from the same watermark"
    );
    assert_eq!(recorded.pages.len(), 3);
    assert_eq!(recorded.completions.len(), 1);
    assert!(recorded.failures.is_empty());
}

#[test]
fn a_cursor_refused_again_and_again_fails_the_pass() {
    let recorded = Shared::default();
    let mut pages = Vec::new();
    for _ in 0..4 {
        pages.push(page(vec![snapshot("a1", "onsite", -10)], Some("c1")));
        pages.push(expired_cursor());
    }
    let ats = ats(fully_supported(), pages, &recorded);
    let result = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    );
    assert!(
        matches!(result, Err(SyncError::Ats(AtsError::CursorExpired { .. }))),
        "{result:?}"
    );
    let recorded = recorded.lock().unwrap();
    assert_eq!(
        recorded.cursors.len(),
        8,
        "three restarts, then the failure"
    );
    assert!(recorded.completions.is_empty());
    assert_eq!(recorded.failures[0].error.kind, "cursor_expired");
}

#[test]
fn failure_during_a_failing_streak_raises_no_second_event() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![Err(AtsError::Transient {
            reason: "timeout".into(),
        })],
        &recorded,
    );
    let state = SyncState {
        failing_since: Some(at(-30)),
        ..synced_before()
    };
    let result = pollster::block_on(service(ats, store(state, vec![], &recorded)).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ));
    assert!(result.is_err());
    let recorded = recorded.lock().unwrap();
    assert!(recorded.failures[0].events.is_empty());
    assert_eq!(recorded.failures[0].failing_since, Some(at(-30)));
}

#[test]
fn store_failure_while_applying_fails_the_pass() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![page(vec![snapshot("a1", "onsite", -10)], None)],
        &recorded,
    );
    let mut store = store(synced_before(), vec![], &recorded);
    store.checkpoint();
    let mut failing = MockTrackerStore::new();
    failing
        .expect_sync_state()
        .returning(|_| Ok(synced_before()));
    failing.expect_update_integration().returning(|_| Ok(()));
    failing
        .expect_load_applications()
        .returning(|_, _| Ok(vec![]));
    failing
        .expect_load_pipelines()
        .returning(|_, _| Ok(vec![pipeline()]));
    failing
        .expect_apply_page()
        .returning(|_| Err(StoreError::Unavailable("connection reset".into())));
    failing.expect_complete_pass().times(0);
    failing
        .expect_record_failure()
        .times(1)
        .returning(|_| Ok(()));
    let result = pollster::block_on(service(ats, failing).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ));
    assert!(matches!(
        result,
        Err(SyncError::Store(StoreError::Unavailable(_)))
    ));
}

#[test]
fn rate_limit_defers_the_pass_without_counting_as_failure() {
    let recorded = Shared::default();
    let limited = AtsError::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    };
    let ats = ats(fully_supported(), vec![Err(limited)], &recorded);
    let result = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    );
    let error = result.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    assert!(!error.is_failure());
    let recorded = recorded.lock().unwrap();
    assert!(recorded.completions.is_empty());
    assert_eq!(recorded.failures[0].failing_since, None);
    assert!(
        recorded.failures[0].events.is_empty(),
        "being rate limited is no alarm"
    );
}

#[test]
fn ats_that_cannot_read_applications_is_recorded_not_failed() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![Err(AtsError::Unsupported {
            code: "INTEGRATION.MODEL_NOT_AVAILABLE".into(),
            message: "applications are not available".into(),
        })],
        &recorded,
    );
    let report = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    )
    .unwrap();
    assert_eq!(report.outcome, PassOutcome::ApplicationsUnreadable);
    let recorded = recorded.lock().unwrap();
    assert!(recorded.failures.is_empty());
    let completion = &recorded.completions[0];
    assert_eq!(
        completion.watermark, None,
        "nothing was read, so the watermark stays"
    );
    assert_eq!(
        completion.capabilities.as_ref().unwrap().applications,
        Support::Unsupported
    );
    let EventKind::CapabilityChanged(change) = &completion.events[0].kind else {
        panic!(
            "expected integration.capability_changed, got {:?}",
            completion.events
        );
    };
    assert_eq!(change.changed, ["applications"]);
}

#[test]
fn coverage_saying_applications_are_unavailable_skips_reading() {
    let recorded = Shared::default();
    let mut unreadable = fully_supported();
    unreadable.applications = Support::Unsupported;
    let mut ats = MockAtsGateway::new();
    let reported = unreadable.clone();
    ats.expect_integration_info()
        .returning(move |_| Ok(integration_info(reported.clone())));
    ats.expect_fetch_applications().times(0);
    let report = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Full,
            &(),
        ),
    )
    .unwrap();
    assert_eq!(report.outcome, PassOutcome::ApplicationsUnreadable);
}

#[test]
fn not_ready_integration_is_deferred_quietly() {
    let recorded = Shared::default();
    let mut ats = MockAtsGateway::new();
    ats.expect_integration_info().returning(|_| {
        Err(AtsError::NotReady {
            code: "INTEGRATION.SETUP_SYNC_PENDING".into(),
            message: "initial sync".into(),
        })
    });
    let result = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    );
    assert_eq!(result.unwrap_err().kind(), "not_ready");
    let recorded = recorded.lock().unwrap();
    assert!(recorded.failures[0].events.is_empty());
}

#[test]
fn recovery_after_failures_is_announced() {
    let recorded = Shared::default();
    let ats = ats(fully_supported(), vec![page(vec![], None)], &recorded);
    let state = SyncState {
        failing_since: Some(at(-30)),
        ..synced_before()
    };
    pollster::block_on(service(ats, store(state, vec![], &recorded)).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ))
    .unwrap();
    let recorded = recorded.lock().unwrap();
    let completion = &recorded.completions[0];
    assert_eq!(kinds(&completion.events), ["integration.recovered"]);
    let EventKind::Recovered(recovered) = &completion.events[0].kind else {
        unreachable!()
    };
    assert_eq!(recovered.failed_for_seconds, 30 * 60);
}

#[test]
fn status_change_reported_by_kombo_raises_an_event() {
    let recorded = Shared::default();
    let ats = ats(fully_supported(), vec![page(vec![], None)], &recorded);
    let state = SyncState {
        status: Some(IntegrationStatus::Invalid),
        ..synced_before()
    };
    pollster::block_on(service(ats, store(state, vec![], &recorded)).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ))
    .unwrap();
    let recorded = recorded.lock().unwrap();
    let update = &recorded.updates[0];
    assert_eq!(kinds(&update.events), ["integration.status_changed"]);
    assert_eq!(update.status, Some(IntegrationStatus::Active));
}

#[test]
fn an_idle_pass_writes_only_its_completion() {
    let recorded = Shared::default();
    let ats = ats(fully_supported(), vec![page(vec![], None)], &recorded);
    pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    )
    .unwrap();
    let recorded = recorded.lock().unwrap();
    assert!(
        recorded.updates.is_empty(),
        "unchanged status and coverage: {:?}",
        recorded.updates
    );
    assert!(recorded.pages.is_empty(), "an empty page writes nothing");
    assert_eq!(recorded.completions.len(), 1);
    assert!(recorded.completions[0].events.is_empty());
}

fn deleted_snapshots(count: usize) -> (Vec<TrackedApplication>, Vec<ApplicationSnapshot>) {
    (0..count)
        .map(|i| {
            let id = format!("a{i}");
            let mut gone = snapshot(&id, "onsite", -5);
            gone.remote_deleted_at = Some(at(-6));
            (tracked(&snapshot(&id, "onsite", -90)), gone)
        })
        .unzip()
}

#[test]
fn mass_deletion_is_held_and_flagged() {
    let recorded = Shared::default();
    let (held, deleted) = deleted_snapshots(3);
    let ats = ats(fully_supported(), vec![page(deleted, None)], &recorded);
    let store = store_holding(
        synced_before(),
        held,
        &recorded,
        HoldStats {
            held: 3,
            tracked: 3,
        },
    );
    let settings = SyncSettings {
        deletion_guard: domain::sync::DeletionGuard {
            min_count: 2,
            max_share: 0.5,
        },
        ..SyncSettings::default()
    };
    let service = SyncService::new(Arc::new(ats), Arc::new(store), Arc::new(clock()), settings);
    let report =
        pollster::block_on(service.run_pass(&integration(), LEASE, PassMode::Full, &())).unwrap();
    assert_eq!(report.deletions_held, 3);
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.releases, 0);
    let page = &recorded.pages[0];
    assert!(
        page.events.is_empty(),
        "deleted events stay out of the feed"
    );
    assert!(page.applications.is_empty());
    assert_eq!(page.held.len(), 3);
    assert_eq!(kinds(&page.held[0].events), ["application.deleted"]);
    let completion = &recorded.completions[0];
    assert!(completion.deletions_held);
    assert_eq!(kinds(&completion.events), ["integration.deletions_held"]);
}

#[test]
fn held_deletions_already_flagged_are_not_announced_again() {
    let recorded = Shared::default();
    let ats = ats(fully_supported(), vec![page(vec![], None)], &recorded);
    let state = SyncState {
        deletions_held: true,
        ..synced_before()
    };
    let store = store_holding(
        state,
        vec![],
        &recorded,
        HoldStats {
            held: 500,
            tracked: 600,
        },
    );
    pollster::block_on(service(ats, store).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ))
    .unwrap();
    let recorded = recorded.lock().unwrap();
    assert!(recorded.completions[0].deletions_held);
    assert!(recorded.completions[0].events.is_empty());
}

#[test]
fn few_deletions_are_released_at_the_end_of_the_pass() {
    let recorded = Shared::default();
    let (held, deleted) = deleted_snapshots(1);
    let ats = ats(fully_supported(), vec![page(deleted, None)], &recorded);
    let store = store_holding(
        synced_before(),
        held,
        &recorded,
        HoldStats {
            held: 1,
            tracked: 100,
        },
    );
    let report = pollster::block_on(service(ats, store).run_pass(
        &integration(),
        LEASE,
        PassMode::Full,
        &(),
    ))
    .unwrap();
    assert_eq!(report.deletions_released, 1);
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.releases, 1);
    assert!(!recorded.completions[0].deletions_held);
}

#[test]
fn stage_missing_from_the_pipeline_refreshes_it_once() {
    let recorded = Shared::default();
    let mut ats = MockAtsGateway::new();
    ats.expect_integration_info()
        .returning(|_| Ok(integration_info(fully_supported())));
    let mut with_new_stage = pipeline();
    with_new_stage
        .stages
        .push(domain::fixtures::stage("final_round", Some(10)));
    ats.expect_fetch_jobs()
        .withf(|_, query, _| query.ids.len() == 1 && query.ids[0].as_str() == "backend")
        .times(1)
        .returning(move |_, _, _| Ok(Page::last(vec![with_new_stage.clone()])));
    let mut moved = snapshot("a1", "applied", -5);
    moved.current_stage_id = Some(stage_id("final_round"));
    moved.current_stage = None;
    let mut also_moved = snapshot("a2", "applied", -5);
    also_moved.current_stage_id = Some(stage_id("unheard_of"));
    ats.expect_fetch_applications()
        .returning(move |_, _, _| page(vec![moved.clone(), also_moved.clone()], None));
    let held = vec![
        tracked(&snapshot("a1", "applied", -90)),
        tracked(&snapshot("a2", "applied", -90)),
    ];
    pollster::block_on(
        service(ats, store(synced_before(), held, &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    )
    .unwrap();
    let recorded = recorded.lock().unwrap();
    let EventKind::StageChanged(change) = &recorded.pages[0].events[0].kind else {
        unreachable!()
    };
    assert_eq!(change.to.index, Some(10), "known after the refresh");
    let EventKind::StageChanged(change) = &recorded.pages[0].events[1].kind else {
        unreachable!()
    };
    assert_eq!(
        change.to.index, None,
        "still unknown: carried as Kombo sent it"
    );
}

#[test]
fn values_going_unknown_flag_the_capability() {
    let recorded = Shared::default();
    let held = vec![tracked(&snapshot("a1", "onsite", -90))];
    let mut blank = snapshot("a1", "onsite", -5);
    blank.outcome = None;
    let ats = ats(fully_supported(), vec![page(vec![blank], None)], &recorded);
    pollster::block_on(
        service(ats, store(synced_before(), held, &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &(),
        ),
    )
    .unwrap();
    let recorded = recorded.lock().unwrap();
    assert!(recorded.pages[0].events.is_empty());
    let completion = &recorded.completions[0];
    let capabilities = completion.capabilities.as_ref().unwrap();
    assert!(capabilities.observed_gaps.contains(&TrackedField::Outcome));
    assert_eq!(
        kinds(&completion.events),
        ["integration.capability_changed"]
    );
}

struct StopAfterFirstPage;

impl PassObserver for StopAfterFirstPage {
    fn keep_going(&self) -> bool {
        false
    }
}

#[test]
fn interrupted_pass_keeps_its_pages_but_not_a_new_watermark() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            page(vec![], None),
        ],
        &recorded,
    );
    let report = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &StopAfterFirstPage,
        ),
    )
    .unwrap();
    assert_eq!(report.outcome, PassOutcome::Interrupted);
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.pages.len(), 1);
    assert!(recorded.completions.is_empty());
}

/// Counts the pages it is told were stored.
#[derive(Default)]
struct CountPages(std::sync::atomic::AtomicU64);

impl PassObserver for CountPages {
    fn page_applied(&self, _: &domain::sync::PassReport) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn every_page_is_reported_stored_an_empty_one_too() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            page(vec![], None),
        ],
        &recorded,
    );
    let observer = CountPages::default();
    let report = pollster::block_on(
        service(ats, store(synced_before(), vec![], &recorded)).run_pass(
            &integration(),
            LEASE,
            PassMode::Incremental,
            &observer,
        ),
    )
    .unwrap();
    assert_eq!(report.outcome, PassOutcome::Completed);
    assert_eq!(recorded.lock().unwrap().pages.len(), 1, "one page to write");
    assert_eq!(observer.0.into_inner(), 2, "two pages stored");
}

#[test]
fn confirming_deletions_releases_them() {
    let mut store = MockTrackerStore::new();
    store
        .expect_release_held()
        .withf(|_, lease| lease.is_none())
        .times(1)
        .returning(|_, _| Ok(42));
    let service = SyncService::new(
        Arc::new(MockAtsGateway::new()),
        Arc::new(store),
        Arc::new(clock()),
        SyncSettings::default(),
    );
    assert_eq!(
        pollster::block_on(service.confirm_deletions(&integration())).unwrap(),
        42
    );
}

/// Held deletions, flagged by an earlier pass, and a pass that reads nothing new.
fn pass_after_a_hold(
    data_expired_at: Option<chrono::DateTime<chrono::Utc>>,
    stats: HoldStats,
) -> (domain::sync::PassReport, Shared) {
    let recorded = Shared::default();
    let mut ats = MockAtsGateway::new();
    ats.expect_integration_info().returning(move |_| {
        let mut info = integration_info(fully_supported());
        info.data_expired_at = data_expired_at;
        Ok(info)
    });
    ats.expect_fetch_jobs()
        .returning(|_, _, _| Ok(Page::last(vec![pipeline()])));
    ats.expect_fetch_applications()
        .returning(|_, _, _| page(vec![], None));
    let state = SyncState {
        deletions_held: true,
        ..synced_before()
    };
    let store = store_holding(state, vec![], &recorded, stats);
    let report = pollster::block_on(service(ats, store).run_pass(
        &integration(),
        LEASE,
        PassMode::Full,
        &(),
    ))
    .unwrap();
    (report, recorded)
}

#[test]
fn held_deletions_stay_held_once_kombo_clears_data_expired_at() {
    // Held while Kombo said the data expired: 15 of 10 000 trips only with `data_expired_at`.
    let stats = HoldStats {
        held: 15,
        tracked: 10_000,
    };
    let guard = domain::sync::DeletionGuard::default();
    assert!(guard.trips(stats, true) && !guard.trips(stats, false));
    let (report, recorded) = pass_after_a_hold(None, stats);
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.releases, 0, "only an operator releases them");
    assert_eq!(report.deletions_released, 0);
    assert!(recorded.completions[0].deletions_held);
}

#[test]
fn held_deletions_stay_held_when_new_applications_lower_their_share() {
    // 25 of 100 tripped the guard; 30 applications discovered since make it 19 %.
    let stats = HoldStats {
        held: 25,
        tracked: 130,
    };
    assert!(!domain::sync::DeletionGuard::default().trips(stats, false));
    let (_, recorded) = pass_after_a_hold(None, stats);
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded.releases, 0, "only an operator releases them");
    assert!(recorded.completions[0].deletions_held);
}

#[test]
fn a_pass_that_cannot_read_applications_keeps_the_hold_flag() {
    let recorded = Shared::default();
    let unreadable = Capabilities {
        applications: Support::Unsupported,
        ..fully_supported()
    };
    let ats = ats(unreadable, vec![], &recorded);
    let state = SyncState {
        deletions_held: true,
        ..synced_before()
    };
    let report = pollster::block_on(service(ats, store(state, vec![], &recorded)).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ))
    .unwrap();
    assert_eq!(report.outcome, PassOutcome::ApplicationsUnreadable);
    let recorded = recorded.lock().unwrap();
    assert!(
        recorded.completions[0].deletions_held,
        "the held rows remain, so the operator must still see the flag"
    );
}

#[test]
fn every_write_of_a_pass_carries_its_lease() {
    let recorded = Shared::default();
    let (held, deleted) = deleted_snapshots(1);
    let ats = ats(fully_supported(), vec![page(deleted, None)], &recorded);
    let store = store_holding(
        synced_before(),
        held,
        &recorded,
        HoldStats {
            held: 1,
            tracked: 100,
        },
    );
    pollster::block_on(service(ats, store).run_pass(&integration(), LEASE, PassMode::Full, &()))
        .unwrap();
    let recorded = recorded.lock().unwrap();
    assert!(recorded.pages.iter().all(|p| p.lease == Some(LEASE)));
    assert!(recorded.updates.iter().all(|u| u.lease == LEASE));
    assert!(recorded.completions.iter().all(|c| c.lease == LEASE));
    assert_eq!(recorded.released_under, vec![Some(LEASE)]);
}

#[test]
fn a_pass_whose_write_is_fenced_stops_at_once_and_records_nothing_more() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            page(vec![snapshot("a2", "onsite", -10)], None),
        ],
        &recorded,
    );
    let mut store = MockTrackerStore::new();
    store.expect_sync_state().returning(|_| Ok(synced_before()));
    store.expect_update_integration().returning(|_| Ok(()));
    store
        .expect_load_applications()
        .returning(|_, _| Ok(vec![]));
    store
        .expect_load_pipelines()
        .returning(|_, _| Ok(vec![pipeline()]));
    store.expect_save_pipelines().returning(|_, _| Ok(()));
    store.expect_apply_page().times(1).returning(|changes| {
        Err(StoreError::LeaseLost {
            integration: changes.integration_id,
            operation: "apply_page",
            held: LEASE,
            current: LeaseEpoch(LEASE.0 + 1),
        })
    });
    store.expect_complete_pass().times(0);
    store.expect_record_failure().times(0);
    store.expect_release_held().times(0);
    let error = pollster::block_on(service(ats, store).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ))
    .unwrap_err();
    assert!(error.is_lease_lost(), "{error}");
    assert_eq!(error.kind(), "lease_lost");
    assert!(
        !error.is_failure(),
        "losing a lease is not the integration's failure"
    );
}

#[test]
fn pipelines_are_read_once_per_pass_not_once_per_page() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            page(vec![snapshot("a2", "offer", -9)], Some("c2")),
            page(vec![snapshot("a3", "applied", -8)], None),
        ],
        &recorded,
    );
    let mut counted = MockTrackerStore::new();
    counted
        .expect_sync_state()
        .returning(|_| Ok(synced_before()));
    counted.expect_update_integration().returning(|_| Ok(()));
    counted
        .expect_load_applications()
        .returning(|_, _| Ok(Vec::new()));
    counted
        .expect_load_pipelines()
        .times(1)
        .returning(|_, _| Ok(vec![pipeline()]));
    let pages = recorded.clone();
    counted.expect_apply_page().returning(move |changes| {
        pages.lock().unwrap().pages.push(changes);
        Ok(AppliedPage { events_appended: 1 })
    });
    counted
        .expect_hold_stats()
        .returning(|_| Ok(HoldStats::default()));
    counted.expect_count_held().returning(|_| Ok(0));
    counted.expect_complete_pass().returning(|_| Ok(()));
    let report = pollster::block_on(service(ats, counted).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ))
    .unwrap();
    assert_eq!(report.pages, 3);
    assert_eq!(recorded.lock().unwrap().pages.len(), 3);
}

#[test]
fn a_full_pass_reads_no_stored_pipeline_for_jobs_it_fetched() {
    let recorded = Shared::default();
    let ats = ats(
        fully_supported(),
        vec![
            page(vec![snapshot("a1", "onsite", -10)], Some("c1")),
            page(vec![snapshot("a2", "offer", -9)], None),
        ],
        &recorded,
    );
    let mut store = MockTrackerStore::new();
    store
        .expect_sync_state()
        .returning(|_| Ok(SyncState::default()));
    store.expect_update_integration().returning(|_| Ok(()));
    store
        .expect_load_applications()
        .returning(|_, _| Ok(Vec::new()));
    store.expect_load_pipelines().times(0);
    store
        .expect_save_pipelines()
        .times(1)
        .returning(|_, _| Ok(()));
    store.expect_apply_page().times(2).returning(|changes| {
        Ok(AppliedPage {
            events_appended: changes.events.len() as u64,
        })
    });
    store
        .expect_hold_stats()
        .returning(|_| Ok(HoldStats::default()));
    store.expect_count_held().returning(|_| Ok(0));
    store.expect_complete_pass().returning(|_| Ok(()));
    let report = pollster::block_on(service(ats, store).run_pass(
        &integration(),
        LEASE,
        PassMode::Incremental,
        &(),
    ))
    .unwrap();
    assert_eq!(report.mode, PassMode::Full);
    assert_eq!(report.applications_seen, 2);
}
