//! Retention: purges keep what is still needed, and the feed is pruned as a prefix that a
//! reader behind it is told about.

use std::time::Duration;

use adapters_postgres::{AttemptOutcome, Backend, DeliveryAttempt, NewEndpoint, Store, StoreError};
use chrono::Duration as Span;
use domain::ports::{EventReader, FeedQuery, TrackerStore};

use crate::contract;
use crate::support::{TestDb, at, discovery_page, integration, whole_feed};

contract!(
    attempts_of_finished_deliveries_are_purged_but_the_last,
    the_feed_is_pruned_as_a_prefix_and_a_cursor_behind_it_is_gone,
);

const LEASE: Duration = Duration::from_secs(30);

async fn endpoint(store: &Store) -> String {
    store
        .create_endpoint(
            &NewEndpoint {
                url: "https://product.example/hooks".into(),
                description: None,
                event_types: Vec::new(),
                secret: "whsec_c2VjcmV0LW9mLXRoZS1lbmRwb2ludA==".into(),
            },
            at(0),
        )
        .await
        .unwrap()
        .id
}

fn attempt(minute: i64, status: u16) -> DeliveryAttempt {
    DeliveryAttempt {
        at: at(minute),
        status_code: Some(status),
        latency: Duration::from_millis(10),
        response_excerpt: None,
        error: None,
    }
}

async fn attempts_of_finished_deliveries_are_purged_but_the_last(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    endpoint(&store).await;
    store
        .apply_page(discovery_page(&integration("acme"), "app", 2))
        .await
        .unwrap();
    let claimed = store.claim_due_deliveries(at(10), 10, LEASE).await.unwrap();
    let (done, pending) = (claimed[0].delivery_id, claimed[1].delivery_id);
    // `done`: failed twice, then delivered. `pending`: failed twice, retry due later.
    for (minute, delivery) in [(10, done), (10, pending)] {
        store
            .record_attempt(
                delivery,
                1,
                &attempt(minute, 503),
                AttemptOutcome::RetryAt(at(minute)),
            )
            .await
            .unwrap();
    }
    store.claim_due_deliveries(at(20), 10, LEASE).await.unwrap();
    store
        .record_attempt(done, 2, &attempt(20, 503), AttemptOutcome::RetryAt(at(20)))
        .await
        .unwrap();
    store
        .record_attempt(
            pending,
            2,
            &attempt(20, 503),
            AttemptOutcome::RetryAt(at(600)),
        )
        .await
        .unwrap();
    store.claim_due_deliveries(at(30), 10, LEASE).await.unwrap();
    store
        .record_attempt(done, 3, &attempt(30, 204), AttemptOutcome::Delivered)
        .await
        .unwrap();

    // Everything is older than the cutoff; only `done`'s first two attempts may go.
    assert_eq!(
        store
            .purge_delivery_attempts(at(100) + Span::days(60))
            .await
            .unwrap(),
        2
    );
    let kept = store.list_attempts(done).await.unwrap();
    assert_eq!(
        kept.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        [Some(204)],
        "the last attempt of a finished delivery stays"
    );
    assert_eq!(
        store.list_attempts(pending).await.unwrap().len(),
        2,
        "a pending delivery keeps all of its attempts"
    );
    // Younger attempts than the cutoff stay too.
    assert_eq!(store.purge_delivery_attempts(at(0)).await.unwrap(), 0);
}

async fn the_feed_is_pruned_as_a_prefix_and_a_cursor_behind_it_is_gone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // Events 1–3 detected at minute 1; 4–5 at minute 1 too, but delivery of 4 is pending.
    store
        .apply_page(discovery_page(&integration("acme"), "old", 3))
        .await
        .unwrap();
    endpoint(&store).await;
    store
        .apply_page(discovery_page(&integration("acme"), "later", 2))
        .await
        .unwrap();
    assert_eq!(store.feed_head().await.unwrap(), 5);
    assert_eq!(store.pruned_through().await.unwrap(), 0);

    // Nothing is older than the cutoff: nothing goes.
    assert_eq!(store.prune_feed(at(0)).await.unwrap(), 0);
    // All are older, but events 4 and 5 still wait for their delivery: only 1–3 go.
    assert_eq!(store.prune_feed(at(60)).await.unwrap(), 3);
    assert_eq!(store.pruned_through().await.unwrap(), 3);
    let kept = whole_feed(&store, 10).await;
    assert_eq!(
        kept.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [4, 5],
        "a prefix of the feed, oldest first"
    );

    let read = |after| {
        let store = store.clone();
        async move {
            store
                .read_events(&FeedQuery {
                    after: Some(after),
                    limit: 10,
                    types: Vec::new(),
                    integration: None,
                })
                .await
        }
    };
    assert_eq!(
        read(2).await.unwrap_err(),
        StoreError::FeedPruned {
            after: 2,
            pruned_through: 3,
        }
    );
    assert_eq!(
        read(3).await.unwrap().len(),
        2,
        "reading on from the mark works"
    );

    // Delivered, the rest can go; the mark only moves forward, and appends continue after it.
    for due in store.claim_due_deliveries(at(60), 10, LEASE).await.unwrap() {
        store
            .record_attempt(
                due.delivery_id,
                due.attempt,
                &attempt(60, 204),
                AttemptOutcome::Delivered,
            )
            .await
            .unwrap();
    }
    assert_eq!(store.prune_feed(at(60)).await.unwrap(), 2);
    assert_eq!(store.prune_feed(at(0)).await.unwrap(), 0);
    assert_eq!(store.pruned_through().await.unwrap(), 5);
    store
        .apply_page(discovery_page(&integration("acme"), "new", 1))
        .await
        .unwrap();
    let fresh = whole_feed(&store, 10).await;
    assert_eq!(fresh.iter().map(|e| e.sequence).collect::<Vec<_>>(), [6]);
}
