//! The product's actions (move, reject) against mockall mocks of the ports.

use std::sync::{Arc, Mutex};

use domain::actions::{ActionError, Actions, rejection_reasons};
use domain::event::{EventKind, EventOrigin};
use domain::fixtures::{at, integration, job, pipeline, snapshot, stage, stage_id};
use domain::ports::{
    AppliedPage, AtsError, MockAtsGateway, MockTrackerStore, Page, PageChanges, PageCursor,
};
use domain::{
    ApplicationId, ApplicationSnapshot, DetectContext, Outcome, Pipeline, RejectionReason,
    TrackedApplication, detect,
};

/// `app-1`, tracked in `applied` since minute 1.
fn tracked() -> TrackedApplication {
    detect(
        None,
        &snapshot("app-1", "applied", 1),
        Some(&pipeline()),
        &DetectContext::sync(at(1)),
    )
    .next_state
}

fn app() -> ApplicationId {
    ApplicationId::parse("app-1").unwrap()
}

type Pages = Arc<Mutex<Vec<PageChanges>>>;

/// A store holding `tracked()` and `stored` as the job's pipeline, recording every page.
fn store(stored: Option<Pipeline>, pages: &Pages) -> MockTrackerStore {
    let mut store = MockTrackerStore::new();
    store.expect_load_applications().returning(|_, ids| {
        Ok(if ids == [app()] {
            vec![tracked()]
        } else {
            vec![]
        })
    });
    store
        .expect_load_pipelines()
        .returning(move |_, _| Ok(stored.clone().into_iter().collect()));
    let pages = pages.clone();
    store.expect_apply_page().returning(move |changes| {
        let appended = changes.events.len() as u64;
        pages.lock().unwrap().push(changes);
        Ok(AppliedPage {
            events_appended: appended,
        })
    });
    store
}

/// Kombo's next page shows `later`, what the action made: the pass finds nothing new.
fn assert_next_pass_adds_nothing(held: &TrackedApplication, later: &ApplicationSnapshot) {
    let seen = detect(
        Some(held),
        later,
        Some(&pipeline()),
        &DetectContext::sync(at(13)),
    );
    assert!(seen.events.is_empty(), "{:?}", seen.events);
}

fn reason() -> RejectionReason {
    RejectionReason {
        id: "rr-1".into(),
        remote_id: None,
        name: Some("Not a fit".into()),
    }
}

#[test]
fn a_move_is_recorded_at_once_as_the_products_own_and_the_next_pass_adds_nothing() {
    let pages = Pages::default();
    let store = store(Some(pipeline()), &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_move_application()
        .withf(|_, app, stage| app.as_str() == "app-1" && stage.as_str() == "onsite")
        .times(1)
        .returning(|_, _, _| Ok(()));

    let outcome = pollster::block_on(Actions::new(&ats, &store).move_to_stage(
        &integration(),
        &app(),
        &stage_id("onsite"),
        at(10),
    ))
    .unwrap();

    let [event] = outcome.events.as_slice() else {
        panic!("one event, got {:?}", outcome.events);
    };
    assert_eq!(event.origin, Some(EventOrigin::Stagewatch));
    let EventKind::StageChanged(change) = &event.kind else {
        panic!("a stage change, got {:?}", event.kind);
    };
    assert_eq!(change.from.as_ref().unwrap().stage_id.as_str(), "applied");
    assert_eq!(change.to.stage_id.as_str(), "onsite");
    assert_eq!(change.skipped.len(), 2, "phone_screen and take_home");
    let written = pages.lock().unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].lease, None);
    assert_eq!(written[0].events, outcome.events);
    assert_eq!(written[0].stage_entries.len(), 1);

    // Kombo's next page shows the same move, a little later.
    assert_next_pass_adds_nothing(&outcome.application, &snapshot("app-1", "onsite", 12));
}

#[test]
fn a_stage_outside_the_pipeline_is_refused_before_kombo_is_asked() {
    let pages = Pages::default();
    let store = store(Some(pipeline()), &pages);
    let mut ats = MockAtsGateway::new();
    // The stored pipeline lacks the stage: a fresh one is fetched, and lacks it too.
    ats.expect_fetch_jobs()
        .times(1)
        .returning(|_, _, _| Ok(Page::last(vec![pipeline()])));
    ats.expect_move_application().never();
    let mut store = store;
    store.expect_save_pipelines().returning(|_, _| Ok(()));

    let error = pollster::block_on(Actions::new(&ats, &store).move_to_stage(
        &integration(),
        &app(),
        &stage_id("no_such_stage"),
        at(10),
    ))
    .unwrap_err();

    assert!(
        matches!(&error, ActionError::StageNotInPipeline { stage, job: Some(j) }
            if stage.as_str() == "no_such_stage" && *j == job("backend")),
        "{error:?}"
    );
    assert!(pages.lock().unwrap().is_empty());
}

#[test]
fn a_stage_added_since_the_last_pass_is_found_in_a_fresh_pipeline() {
    let pages = Pages::default();
    let mut store = store(Some(pipeline()), &pages);
    let mut fresh = pipeline();
    fresh.stages.push(stage("reference_check", Some(6)));
    let saved = Arc::new(Mutex::new(Vec::new()));
    let saved_by_store = saved.clone();
    store
        .expect_save_pipelines()
        .returning(move |_, pipelines| {
            saved_by_store.lock().unwrap().extend(pipelines.to_vec());
            Ok(())
        });
    let mut ats = MockAtsGateway::new();
    ats.expect_fetch_jobs()
        .returning(move |_, _, _| Ok(Page::last(vec![fresh.clone()])));
    ats.expect_move_application()
        .times(1)
        .returning(|_, _, _| Ok(()));

    let outcome = pollster::block_on(Actions::new(&ats, &store).move_to_stage(
        &integration(),
        &app(),
        &stage_id("reference_check"),
        at(10),
    ))
    .unwrap();

    assert_eq!(outcome.events.len(), 1);
    assert_eq!(
        saved.lock().unwrap().len(),
        1,
        "the fresh pipeline is stored"
    );
}

#[test]
fn a_rejection_is_recorded_with_its_reason_and_the_next_pass_adds_nothing() {
    let pages = Pages::default();
    let store = store(Some(pipeline()), &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_reject_application()
        .withf(|_, app, reason, note| {
            app.as_str() == "app-1" && reason == "rr-1" && note.as_deref() == Some("thanks")
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));

    let outcome = pollster::block_on(Actions::new(&ats, &store).reject(
        &integration(),
        &app(),
        &reason(),
        Some("thanks".into()),
        at(10),
    ))
    .unwrap();

    let declined = outcome
        .events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::Declined(declined) => Some(declined),
            _ => None,
        })
        .expect("an application.declined event");
    assert_eq!(declined.rejection_reason.as_deref(), Some("Not a fit"));
    assert!(
        outcome
            .events
            .iter()
            .all(|e| e.origin == Some(EventOrigin::Stagewatch))
    );
    assert_eq!(outcome.application.outcome, Some(Outcome::Declined));

    let mut later = snapshot("app-1", "applied", 12);
    later.outcome = Some(Outcome::Declined);
    later.rejection_reason_name = Some("Not a fit".into());
    later.rejected_at = Some(at(11));
    assert_next_pass_adds_nothing(&outcome.application, &later);
}

#[test]
fn an_ats_that_cannot_act_changes_nothing() {
    let pages = Pages::default();
    let store = store(Some(pipeline()), &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_reject_application().returning(|_, _, _, _| {
        Err(AtsError::Unsupported {
            code: "INTEGRATION.ACTION_NOT_AVAILABLE".into(),
            message: "this ATS cannot reject through the API".into(),
        })
    });

    let error = pollster::block_on(Actions::new(&ats, &store).reject(
        &integration(),
        &app(),
        &reason(),
        None,
        at(10),
    ))
    .unwrap_err();

    assert!(
        matches!(error, ActionError::Refused(AtsError::Unsupported { .. })),
        "{error:?}"
    );
    assert!(pages.lock().unwrap().is_empty());
}

#[test]
fn a_lost_answer_is_an_unknown_outcome_not_a_refusal() {
    let pages = Pages::default();
    let store = store(Some(pipeline()), &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_move_application().returning(|_, _, _| {
        Err(AtsError::Transient {
            reason: "timed out".into(),
        })
    });

    let error = pollster::block_on(Actions::new(&ats, &store).move_to_stage(
        &integration(),
        &app(),
        &stage_id("offer"),
        at(10),
    ))
    .unwrap_err();

    assert!(matches!(error, ActionError::OutcomeUnknown(_)), "{error:?}");
    assert!(pages.lock().unwrap().is_empty());
}

#[test]
fn an_untracked_application_is_refused_without_calling_kombo() {
    let pages = Pages::default();
    let store = store(Some(pipeline()), &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_move_application().never();
    let other = ApplicationId::parse("app-unknown").unwrap();

    let error = pollster::block_on(Actions::new(&ats, &store).move_to_stage(
        &integration(),
        &other,
        &stage_id("offer"),
        at(10),
    ))
    .unwrap_err();

    assert!(
        matches!(&error, ActionError::UnknownApplication(id) if *id == other),
        "{error:?}"
    );
}

#[test]
fn rejection_reasons_are_read_across_pages() {
    let mut ats = MockAtsGateway::new();
    ats.expect_fetch_rejection_reasons()
        .returning(|_, cursor| match cursor {
            None => Ok(Page {
                items: vec![reason()],
                next: Some(PageCursor("2".into())),
                skipped: Vec::new(),
            }),
            Some(_) => Ok(Page::last(vec![RejectionReason {
                id: "rr-2".into(),
                remote_id: None,
                name: Some("Withdrew".into()),
            }])),
        });

    let reasons = pollster::block_on(rejection_reasons(&ats, &integration())).unwrap();

    let ids: Vec<_> = reasons.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["rr-1", "rr-2"]);
}

fn new_application() -> domain::ports::NewApplication {
    domain::ports::NewApplication {
        job_id: job("backend"),
        candidate: domain::ports::NewCandidate {
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            email_address: "jane@example.com".into(),
            phone_number: None,
            company: None,
            title: None,
        },
        stage_id: None,
        extra: serde_json::Map::new(),
    }
}

/// A store for creates: the standard pipeline stored, first sightings answered `first`.
fn create_store(first: bool, pages: &Pages) -> MockTrackerStore {
    let mut store = MockTrackerStore::new();
    store
        .expect_load_pipelines()
        .returning(|_, _| Ok(vec![pipeline()]));
    let pages = pages.clone();
    store
        .expect_apply_first_sighting()
        .returning(move |changes| {
            pages.lock().unwrap().push(changes);
            Ok(first)
        });
    store
}

#[test]
fn a_create_is_tracked_at_once_with_its_created_event() {
    let pages = Pages::default();
    let store = create_store(true, &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_create_application()
        .times(1)
        .returning(|_, _| Ok(snapshot("app-new", "applied", 5)));

    let created = pollster::block_on(Actions::new(&ats, &store).create(
        &integration(),
        &new_application(),
        at(5),
    ))
    .unwrap();

    let event = created.event.expect("the created event");
    assert!(matches!(event.kind, EventKind::ApplicationCreated(_)));
    assert_eq!(
        event.origin, None,
        "a created application has its own event type"
    );
    let written = pages.lock().unwrap();
    assert_eq!(
        written[0].applications[0].origin,
        domain::Origin::CreatedHere
    );
    assert_eq!(written[0].events, vec![event]);
}

#[test]
fn a_create_a_pass_stored_first_announces_nothing_more() {
    let pages = Pages::default();
    let store = create_store(false, &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_create_application()
        .returning(|_, _| Ok(snapshot("app-new", "applied", 5)));

    let created = pollster::block_on(Actions::new(&ats, &store).create(
        &integration(),
        &new_application(),
        at(5),
    ))
    .unwrap();

    assert_eq!(created.event, None);
    assert_eq!(created.not_recorded, None);
}

#[test]
fn a_create_whose_answer_was_lost_is_an_unknown_outcome() {
    let pages = Pages::default();
    let store = create_store(true, &pages);
    let mut ats = MockAtsGateway::new();
    ats.expect_create_application().returning(|_, _| {
        Err(AtsError::Malformed {
            reason: "truncated body".into(),
            excerpt: "{\"status\":".into(),
        })
    });

    let error = pollster::block_on(Actions::new(&ats, &store).create(
        &integration(),
        &new_application(),
        at(5),
    ))
    .unwrap_err();

    assert!(matches!(error, ActionError::OutcomeUnknown(_)), "{error:?}");
    assert!(pages.lock().unwrap().is_empty());
}

#[test]
fn an_import_is_stamped_with_now_when_no_time_is_given() {
    let store = MockTrackerStore::new();
    let mut ats = MockAtsGateway::new();
    ats.expect_import_tracked_application()
        .withf(|_, request| request.tracked_at == Some(at(7)) && request.tool == "greenhouse")
        .times(1)
        .returning(|_, _| {
            Ok(domain::ports::ImportedApplication {
                id: ApplicationId::parse("app-imported").unwrap(),
                tracked_at: Some(at(7)),
            })
        });
    let request = domain::ports::ImportRequest {
        tracked_at: None,
        tool: "greenhouse".into(),
        identifiers: serde_json::Map::new(),
    };

    let imported =
        pollster::block_on(Actions::new(&ats, &store).import(&integration(), request, at(7)))
            .unwrap();

    assert_eq!(imported.id.as_str(), "app-imported");
}
