use adapters_postgres::{ApplicationCursor, ApplicationFilter, Backend, NewIntegration};
use domain::ports::{PageChanges, TrackerStore};
use domain::{EventKind, Origin, Outcome};

use crate::contract;
use crate::support::{
    TestDb, at, created, discovery_page, entry, integration, registered, stage, tracked, whole_feed,
};

contract!(
    applications_page_newest_first,
    jobs_count_tracked_applications_per_stage,
    tracked_applications_are_stored_at_once,
    a_first_sighting_never_replaces_what_a_pass_stored,
    console_counts_cover_one_integration_or_all
);

async fn console_counts_cover_one_integration_or_all(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let acme = registered(&store, "acme").await;
    let globex = registered(&store, "globex").await;
    store
        .apply_page(discovery_page(&acme, "a", 3))
        .await
        .unwrap();
    store
        .apply_page(discovery_page(&globex, "g", 2))
        .await
        .unwrap();
    let long_ago = at(-100_000);

    let tracked = store.tracked_per_integration(None).await.unwrap();
    assert_eq!(tracked.get(acme.as_str()), Some(&3));
    assert_eq!(tracked.get(globex.as_str()), Some(&2));
    let only = store.tracked_per_integration(Some(&globex)).await.unwrap();
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only.get(globex.as_str()), Some(&2));

    let events = store
        .events_per_integration_since(long_ago, None)
        .await
        .unwrap();
    assert_eq!(events.get(acme.as_str()), Some(&3));
    assert_eq!(events.get(globex.as_str()), Some(&2));
    let only = store
        .events_per_integration_since(long_ago, Some(&acme))
        .await
        .unwrap();
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only.get(acme.as_str()), Some(&3));
    drop(store);
    db.drop_database().await;
}

async fn applications_page_newest_first(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = integration("acme");
    let mut page = discovery_page(&id, "app", 0);
    for n in 0..5 {
        let mut state = tracked(&id, &format!("app-{n}"), stage("applied", 0), 10 + (n / 2));
        if n == 4 {
            state.outcome = Some(Outcome::Hired);
        }
        page.applications.push(state);
    }
    store.apply_page(page).await.unwrap();

    let all = ApplicationFilter::default();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let batch = store
            .list_applications(&all, cursor.clone(), 2)
            .await
            .unwrap();
        let Some(last) = batch.last() else { break };
        cursor = Some(ApplicationCursor::after(last));
        seen.extend(batch.into_iter().map(|a| a.id.as_str().to_owned()));
    }
    // Minutes 12, 11, 11, 10, 10; ties broken by id, descending.
    assert_eq!(seen, ["app-4", "app-3", "app-2", "app-1", "app-0"]);

    let hired = ApplicationFilter {
        outcome: Some(Outcome::Hired),
        ..ApplicationFilter::default()
    };
    assert_eq!(
        store
            .list_applications(&hired, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let recent = ApplicationFilter {
        changed_since: Some(at(11)),
        integration: Some(id.clone()),
        ..ApplicationFilter::default()
    };
    assert_eq!(
        store
            .list_applications(&recent, None, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    let elsewhere = ApplicationFilter {
        integration: Some(integration("other")),
        ..ApplicationFilter::default()
    };
    assert!(
        store
            .list_applications(&elsewhere, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let one = store
        .application(&id, &domain::ApplicationId::parse("app-4").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.outcome, Some(Outcome::Hired));
}

async fn jobs_count_tracked_applications_per_stage(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = integration("acme");
    store
        .save_pipelines(&id, &[domain::fixtures::pipeline()])
        .await
        .unwrap();
    let mut page = discovery_page(&id, "app", 3);
    let mut gone = tracked(&id, "gone", stage("applied", 0), 1);
    gone.deleted_at = Some(at(1));
    page.applications.push(gone);
    page.applications
        .push(tracked(&id, "later", stage("onsite", 3), 1));
    store.apply_page(page).await.unwrap();

    let jobs = store.list_jobs(&id).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].tracked, 4);
    let counts: Vec<(&str, u64)> = jobs[0]
        .stages
        .iter()
        .map(|s| (s.stage.id.as_str(), s.tracked))
        .collect();
    assert_eq!(
        counts,
        [
            ("applied", 3),
            ("phone_screen", 0),
            ("take_home", 0),
            ("onsite", 1),
            ("offer", 0),
            ("archived", 0)
        ]
    );
}

async fn tracked_applications_are_stored_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = integration("acme");
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
    let mut state = tracked(&id, "new-app", stage("applied", 0), 3);
    state.origin = Origin::CreatedHere;
    let created = created(&state);
    let first = store
        .apply_first_sighting(PageChanges {
            integration_id: id.clone(),
            lease: None,
            applications: vec![state.clone()],
            events: vec![created.clone()],
            stage_entries: vec![entry(&state)],
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
    assert!(first, "nothing was stored before");
    assert_eq!(
        store
            .load_applications(&id, &[state.id.clone()])
            .await
            .unwrap(),
        vec![state.clone()]
    );
    assert_eq!(whole_feed(&store, 10).await[0].event, created);
    let timeline = store.application_timeline(&id, &state.id).await.unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].entered_at, Some(at(3)));
}

/// The create's answer arrives after a pass already stored the application (Kombo answered
/// slowly): the older snapshot must not replace the stored state, and the product must not get
/// `application.created` beside the pass's `application.discovered`.
async fn a_first_sighting_never_replaces_what_a_pass_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = registered(&store, "acme").await;
    let mut pass = discovery_page(&id, "app", 1);
    pass.applications[0].current_stage = Some(stage("interview", 2));
    pass.applications[0].changed_at = at(5);
    let stored = pass.applications[0].clone();
    store.apply_page(pass).await.unwrap();

    let first_sighting = |state: &domain::TrackedApplication| {
        let mut state = state.clone();
        state.origin = Origin::CreatedHere;
        domain::ports::PageChanges {
            integration_id: id.clone(),
            lease: None,
            events: vec![created(&state)],
            applications: vec![state],
            stage_entries: Vec::new(),
            held: Vec::new(),
            pipelines: Vec::new(),
        }
    };
    let late = tracked(&id, "app-0", stage("applied", 0), 1);
    assert!(
        !store
            .apply_first_sighting(first_sighting(&late))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .load_applications(&id, std::slice::from_ref(&stored.id))
            .await
            .unwrap(),
        vec![stored.clone()],
        "the pass's newer state stays"
    );
    let feed = whole_feed(&store, 10).await;
    assert_eq!(feed.len(), 1, "only the discovery: {feed:?}");

    let fresh = tracked(&id, "app-new", stage("applied", 0), 6);
    assert!(
        store
            .apply_first_sighting(first_sighting(&fresh))
            .await
            .unwrap()
    );
    let feed = whole_feed(&store, 10).await;
    assert_eq!(feed.len(), 2);
    assert!(matches!(
        feed[1].event.kind,
        EventKind::ApplicationCreated(_)
    ));
    assert_eq!(
        store
            .load_applications(&id, std::slice::from_ref(&fresh.id))
            .await
            .unwrap()[0]
            .origin,
        Origin::CreatedHere
    );
}
