use adapters_postgres::Backend;
use domain::event::Deleted;
use domain::ports::{HeldChange, PageChanges, TrackerStore};
use domain::{ChangeEvent, EventKind};
use sea_orm::ConnectionTrait;
use std::future::Future;

use crate::contract;
use crate::support::{
    TestDb, assert_gap_free, at, discovered, discovery_page, entry, integration, moved, stage,
    tracked, whole_feed,
};

contract!(
    a_page_failing_half_way_leaves_nothing,
    reapplied_pages_do_not_repeat_events,
    held_changes_stay_out_of_the_feed_until_released,
    pipelines_round_trip,
    a_page_is_stored_while_its_caller_is_busy_elsewhere,
);

async fn registered(db: &TestDb, name: &str) -> (adapters_postgres::Store, domain::IntegrationId) {
    let store = db.store().await;
    let id = crate::support::registered(&store, name).await;
    (store, id)
}

async fn a_page_failing_half_way_leaves_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, id) = registered(&db, "acme").await;
    let mut page = discovery_page(&id, "app", 5);
    page.held.push(HeldChange {
        application: tracked(&id, "held-1", stage("applied", 0), 2),
        events: Vec::new(),
        stage_entry: None,
    });
    page.pipelines.push(domain::fixtures::pipeline());

    // A row squatting on the next sequence makes the page's last statement (the events) fail
    // after the states, visits, held changes and pipelines were written.
    store
        .connection()
        .execute_unprepared(
            "INSERT INTO events (sequence, event_id, event_type, occurred_at, detected_at, payload) \
             VALUES (1, 'evt_squatter', 'x', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '{}')",
        )
        .await
        .unwrap();
    let error = store.apply_page(page.clone()).await;
    assert!(error.is_err(), "the page must fail on the taken sequence");

    assert!(
        store
            .load_applications(
                &id,
                &page
                    .applications
                    .iter()
                    .map(|a| a.id.clone())
                    .collect::<Vec<_>>()
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .application_timeline(&id, &page.applications[0].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.hold_stats(&id).await.unwrap().held, 0);
    assert!(
        store
            .load_pipelines(&id, &[domain::fixtures::job("backend")])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.feed_head().await.unwrap(), 0);

    store
        .connection()
        .execute_unprepared("DELETE FROM events WHERE event_id = 'evt_squatter'")
        .await
        .unwrap();
    let applied = store.apply_page(page.clone()).await.unwrap();
    assert_eq!(applied.events_appended, 5);
    assert_eq!(
        store
            .load_applications(&id, &[page.applications[4].id.clone()])
            .await
            .unwrap(),
        vec![page.applications[4].clone()]
    );
    assert_eq!(store.hold_stats(&id).await.unwrap().held, 1);
    assert_gap_free(&whole_feed(&store, 100).await);
}

async fn reapplied_pages_do_not_repeat_events(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, id) = registered(&db, "acme").await;
    let page = discovery_page(&id, "app", 3);
    assert_eq!(
        store
            .apply_page(page.clone())
            .await
            .unwrap()
            .events_appended,
        3
    );
    // A crash after the commit and a replay of the same page.
    assert_eq!(
        store
            .apply_page(page.clone())
            .await
            .unwrap()
            .events_appended,
        0
    );

    // A later page repeats two old events beside a new one, and one event twice.
    let before = page.applications[0].clone();
    let after = tracked(&id, "app-0", stage("phone_screen", 1), 5);
    let change = moved(&after, before.current_stage.clone().unwrap());
    let next = PageChanges {
        integration_id: id.clone(),
        lease: None,
        applications: vec![after.clone()],
        events: vec![
            page.events[1].clone(),
            change.clone(),
            page.events[2].clone(),
            change.clone(),
        ],
        stage_entries: vec![entry(&after)],
        held: Vec::new(),
        pipelines: Vec::new(),
    };
    assert_eq!(store.apply_page(next).await.unwrap().events_appended, 1);

    let feed = whole_feed(&store, 2).await;
    assert_gap_free(&feed);
    let ids: Vec<_> = feed.iter().map(|e| e.event.id.clone()).collect();
    let mut expected: Vec<_> = page.events.iter().map(|e| e.id.clone()).collect();
    expected.push(change.id.clone());
    assert_eq!(ids, expected);
    assert_eq!(feed[3].event, change, "events read back as written");

    let timeline = store.application_timeline(&id, &after.id).await.unwrap();
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[0].left_at, Some(at(5)));
    assert_eq!(timeline[0].seconds, Some(4 * 60));
    assert_eq!(timeline[1].stage.stage_id.as_str(), "phone_screen");
    assert_eq!(timeline[1].left_at, None);
}

async fn held_changes_stay_out_of_the_feed_until_released(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, id) = registered(&db, "acme").await;
    store
        .apply_page(discovery_page(&id, "app", 4))
        .await
        .unwrap();
    let head = store.feed_head().await.unwrap();

    let mut gone = tracked(&id, "app-1", stage("applied", 0), 9);
    gone.deleted_at = Some(at(9));
    let deletion = ChangeEvent::for_application(
        &gone,
        EventKind::Deleted(Deleted {
            remote_deleted_at: at(9),
        }),
        at(9),
        at(10),
    );
    let mut gone_too = tracked(&id, "app-2", stage("applied", 0), 9);
    gone_too.deleted_at = Some(at(9));
    let held = |state: &domain::TrackedApplication, event: &ChangeEvent| HeldChange {
        application: state.clone(),
        events: vec![event.clone()],
        stage_entry: None,
    };
    let deletion_too = ChangeEvent::for_application(
        &gone_too,
        EventKind::Deleted(Deleted {
            remote_deleted_at: at(9),
        }),
        at(9),
        at(10),
    );
    store
        .apply_page(PageChanges {
            integration_id: id.clone(),
            lease: None,
            applications: Vec::new(),
            events: Vec::new(),
            stage_entries: Vec::new(),
            held: vec![held(&gone, &deletion), held(&gone_too, &deletion_too)],
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
    let stats = store.hold_stats(&id).await.unwrap();
    assert_eq!((stats.held, stats.tracked), (2, 4));
    assert_eq!(store.count_held(&id).await.unwrap(), 2);
    assert_eq!(
        store.feed_head().await.unwrap(),
        head,
        "held events are not in the feed"
    );

    // A newer observation of app-2 supersedes its held deletion.
    let back = tracked(&id, "app-2", stage("phone_screen", 1), 11);
    store
        .apply_page(PageChanges {
            integration_id: id.clone(),
            lease: None,
            applications: vec![back.clone()],
            events: vec![moved(&back, stage("applied", 0))],
            stage_entries: vec![entry(&back)],
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(store.hold_stats(&id).await.unwrap().held, 1);

    assert_eq!(store.release_held(&id, None).await.unwrap(), 1);
    let stats = store.hold_stats(&id).await.unwrap();
    assert_eq!((stats.held, stats.tracked), (0, 3));
    assert_eq!(store.count_held(&id).await.unwrap(), 0);
    let feed = whole_feed(&store, 100).await;
    assert_gap_free(&feed);
    assert_eq!(feed.last().unwrap().event, deletion);
    assert!(!store.sync_state(&id).await.unwrap().deletions_held);
    let stored = store
        .load_applications(&id, &[gone.id.clone()])
        .await
        .unwrap();
    assert_eq!(stored, vec![gone]);
    assert!(discovered(&back).id != deletion.id);
}

async fn pipelines_round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, id) = registered(&db, "acme").await;
    let mut pipeline = domain::fixtures::pipeline();
    store
        .save_pipelines(&id, &[pipeline.clone()])
        .await
        .unwrap();
    let job = pipeline.job_id.clone();
    assert_eq!(
        store
            .load_pipelines(&id, std::slice::from_ref(&job))
            .await
            .unwrap(),
        vec![pipeline.clone()]
    );

    // A rename and a removed stage replace the stored pipeline.
    pipeline.stages.pop();
    pipeline.stages[0].name = Some("Inbox".into());
    store
        .save_pipelines(&id, &[pipeline.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.load_pipelines(&id, &[job]).await.unwrap(),
        vec![pipeline]
    );
    assert!(
        store
            .load_pipelines(&integration("other"), &[domain::fixtures::job("backend")])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A pass polls the pages it is storing only between its own steps; the page's transaction must
/// not wait for it (at its end it holds the feed counter's lock, which every append waits for).
async fn a_page_is_stored_while_its_caller_is_busy_elsewhere(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, id) = registered(&db, "acme").await;
    let page = discovery_page(&id, "app", 3);
    let ids: Vec<_> = page.applications.iter().map(|a| a.id.clone()).collect();

    let mut storing = Box::pin(store.apply_page(page));
    // Polled once, to start it, and then left alone.
    let mut polled = false;
    std::future::poll_fn(|cx| {
        if polled {
            return std::task::Poll::Ready(());
        }
        polled = true;
        assert!(
            storing.as_mut().poll(cx).is_pending(),
            "a page cannot be stored without waiting on the database"
        );
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
    let mut stored = 0;
    for _ in 0..200 {
        stored = store.load_applications(&id, &ids).await.unwrap().len();
        if stored == ids.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        stored,
        ids.len(),
        "the page committed while its future was not polled"
    );
    let applied = storing.await.unwrap();
    assert_eq!(applied.events_appended, 3);
}
