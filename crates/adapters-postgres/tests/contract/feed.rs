use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use adapters_postgres::{Backend, NewIntegration};
use domain::ports::{EventReader, FeedQuery, TrackerStore};

use crate::contract;
use crate::support::{
    TestDb, assert_gap_free, at, discovered, discovery_page, integration, stage, tracked,
    whole_feed,
};

contract!(
    concurrent_writers_leave_an_ordered_gap_free_feed,
    the_feed_filters_by_type_and_integration,
    waiting_wakes_on_an_append_from_another_connection,
);

async fn concurrent_writers_leave_an_ordered_gap_free_feed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let writers = 6;
    let rounds = 8;
    // Each writer has its own pool, as separate replicas would, and all start together.
    let mut stores = Vec::new();
    for _ in 0..writers {
        stores.push(db.store().await);
    }
    let start = Arc::new(Barrier::new(writers));
    let mut handles = Vec::new();
    for (writer, store) in stores.into_iter().enumerate() {
        let start = Arc::clone(&start);
        handles.push(tokio::spawn(async move {
            let id = integration(&format!("tenant{writer}"));
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
            start.wait().await;
            for round in 0..rounds {
                store
                    .apply_page(discovery_page(&id, &format!("r{round}"), 4))
                    .await
                    .unwrap();
                // Every writer also appends the same shared events: only one copy may land.
                let shared = tracked(
                    &integration("shared"),
                    &format!("s{round}"),
                    stage("applied", 0),
                    1,
                );
                store
                    .append_events(vec![discovered(&shared)])
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let store = db.store().await;
    let feed = whole_feed(&store, 7).await;
    assert_gap_free(&feed);
    assert_eq!(feed.len(), writers * rounds * 4 + rounds);
    let ids: HashSet<_> = feed.iter().map(|e| e.event.id.clone()).collect();
    assert_eq!(ids.len(), feed.len(), "no event id appears twice");
    assert_eq!(
        store.feed_head().await.unwrap(),
        i64::try_from(feed.len()).unwrap()
    );
}

async fn the_feed_filters_by_type_and_integration(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (a, b) = (integration("a"), integration("b"));
    for id in [&a, &b] {
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
        store
            .apply_page(discovery_page(id, "app", 3))
            .await
            .unwrap();
    }
    let status = domain::ChangeEvent::for_integration(
        &a,
        domain::EventKind::StatusChanged(domain::event::StatusChange {
            from: None,
            to: domain::IntegrationStatus::Invalid,
        }),
        "1",
        at(3),
    );
    assert_eq!(
        store
            .set_status(
                &a,
                domain::IntegrationStatus::Invalid,
                None,
                vec![status.clone()]
            )
            .await
            .unwrap(),
        adapters_postgres::StatusApplied::Applied
    );

    let only_b = store
        .read_events(&FeedQuery {
            after: None,
            limit: 100,
            types: Vec::new(),
            integration: Some(b.clone()),
        })
        .await
        .unwrap();
    assert_eq!(
        only_b.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    let statuses = store
        .read_events(&FeedQuery {
            after: Some(2),
            limit: 100,
            types: vec!["integration.status_changed".into()],
            integration: None,
        })
        .await
        .unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].sequence, 7);
    assert_eq!(statuses[0].event, status);
    let capped = store
        .read_events(&FeedQuery {
            after: Some(1),
            limit: 2,
            types: Vec::new(),
            integration: None,
        })
        .await
        .unwrap();
    assert_eq!(
        capped.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(
        store.sync_state(&a).await.unwrap().status,
        Some(domain::IntegrationStatus::Invalid)
    );
}

async fn waiting_wakes_on_an_append_from_another_connection(backend: Backend) {
    let db = TestDb::new(backend).await;
    let reader = db.store().await;
    let writer = db.store().await;
    let id = integration("acme");
    writer
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

    // Nothing to wait for: a short wait simply times out.
    reader
        .wait_for_events(0, Duration::from_millis(50))
        .await
        .unwrap();

    // A waiter with an hour to wait must be woken by the append; the outer bound only keeps a
    // broken wake-up from hanging the suite.
    let waiter = {
        let reader = reader.clone();
        tokio::spawn(async move {
            reader
                .wait_for_events(0, Duration::from_hours(1))
                .await
                .unwrap();
            reader.feed_head().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer
        .apply_page(discovery_page(&id, "app", 2))
        .await
        .unwrap();
    let head = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("the waiter was not woken by the append")
        .unwrap();
    assert_eq!(head, 2);

    // Events already past the cursor: no wait at all.
    tokio::time::timeout(
        Duration::from_secs(30),
        reader.wait_for_events(1, Duration::from_hours(1)),
    )
    .await
    .expect("an event past the cursor must end the wait at once")
    .unwrap();
}
