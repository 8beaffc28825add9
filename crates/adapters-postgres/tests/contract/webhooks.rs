use std::collections::HashSet;
use std::time::Duration;

use adapters_postgres::{
    AttemptOutcome, Backend, DeliveryAttempt, DeliveryStatus, EndpointUpdate, IdempotencyClaim,
    NewEndpoint, NewIntegration,
};
use chrono::Duration as Span;
use domain::ports::TrackerStore;

use crate::contract;
use crate::support::{TestDb, at, discovery_page, integration};

contract!(
    endpoints_are_managed_and_keep_their_secret_out_of_debug,
    appended_events_queue_deliveries_for_matching_endpoints,
    delivery_leases_and_attempts,
    replays_queue_events_again,
    idempotency_keys_answer_repeats,
);

const LEASE: Duration = Duration::from_secs(30);

fn endpoint(types: &[&str]) -> NewEndpoint {
    NewEndpoint {
        url: "https://product.example/hooks".into(),
        description: None,
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        secret: None,
    }
}

async fn endpoints_are_managed_and_keep_their_secret_out_of_debug(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let created = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    assert!(created.secret.starts_with("whsec_"));
    assert!(!format!("{created:?}").contains(&created.secret));
    assert_eq!(
        store.endpoint(&created.id).await.unwrap(),
        Some(created.clone())
    );

    let update = EndpointUpdate {
        url: Some("https://product.example/v2".into()),
        event_types: Some(vec!["application.hired".into()]),
        ..EndpointUpdate::default()
    };
    let updated = store
        .update_endpoint(&created.id, &update, at(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (updated.url.as_str(), updated.updated_at),
        ("https://product.example/v2", at(1))
    );
    assert!(updated.wants("application.hired") && !updated.wants("application.deleted"));

    let rotated = store
        .rotate_secret(&created.id, at(2))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(rotated.secret, created.secret);
    assert!(
        store
            .disable_endpoint(&created.id, "failing for 3 days", at(3))
            .await
            .unwrap()
    );
    let disabled = store.endpoint(&created.id).await.unwrap().unwrap();
    assert_eq!(
        (disabled.enabled, disabled.disabled_reason.as_deref()),
        (false, Some("failing for 3 days"))
    );
    let enabled = store
        .update_endpoint(
            &created.id,
            &EndpointUpdate {
                enabled: Some(true),
                ..EndpointUpdate::default()
            },
            at(4),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((enabled.enabled, enabled.disabled_reason), (true, None));

    assert_eq!(store.list_endpoints().await.unwrap().len(), 1);
    assert!(store.delete_endpoint(&created.id).await.unwrap());
    assert!(!store.delete_endpoint(&created.id).await.unwrap());
    assert!(
        store
            .update_endpoint(&created.id, &update, at(5))
            .await
            .unwrap()
            .is_none()
    );
}

async fn appended_events_queue_deliveries_for_matching_endpoints(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let everything = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    let hires = store
        .create_endpoint(&endpoint(&["application.hired"]), at(0))
        .await
        .unwrap();
    let discoveries = store
        .create_endpoint(&endpoint(&["application.discovered"]), at(0))
        .await
        .unwrap();
    let off = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    store
        .disable_endpoint(&off.id, "test", at(0))
        .await
        .unwrap();

    let id = integration("acme");
    store
        .apply_page(discovery_page(&id, "app", 3))
        .await
        .unwrap();
    // A replayed page appends nothing, so it queues nothing.
    store
        .apply_page(discovery_page(&id, "app", 3))
        .await
        .unwrap();

    let count = |endpoint: String| {
        let store = store.clone();
        async move {
            store
                .list_deliveries(&endpoint, None, 100)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(count(everything.id.clone()).await, 3);
    assert_eq!(count(hires.id).await, 0);
    assert_eq!(count(discoveries.id).await, 3);
    assert_eq!(count(off.id).await, 0);
    let listed = store
        .list_deliveries(&everything.id, None, 2)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|d| d.event_sequence).collect::<Vec<_>>(),
        [3, 2]
    );
    let older = store
        .list_deliveries(&everything.id, Some(listed[1].id), 10)
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|d| d.event_sequence).collect::<Vec<_>>(),
        [1]
    );
}

async fn delivery_leases_and_attempts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, b) = (db.store().await, db.store().await);
    let target = a.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    a.register_integration(
        &NewIntegration {
            id: integration("acme"),
            tool: None,
            label: None,
            poll_interval: None,
        },
        at(0),
    )
    .await
    .unwrap();
    a.apply_page(discovery_page(&integration("acme"), "app", 6))
        .await
        .unwrap();
    let now = at(60);

    let (first, second) = tokio::join!(
        a.claim_due_deliveries(now, 4, LEASE),
        b.claim_due_deliveries(now, 4, LEASE)
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let ids: HashSet<i64> = first.iter().chain(&second).map(|d| d.delivery_id).collect();
    assert_eq!(ids.len(), 6, "six deliveries, each claimed once");
    assert!(
        a.claim_due_deliveries(now, 10, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "all leased"
    );
    let delivery = first
        .iter()
        .chain(&second)
        .find(|d| d.event.sequence == 1)
        .unwrap()
        .clone();
    assert_eq!(
        (delivery.attempt, delivery.endpoint.id.as_str()),
        (1, target.id.as_str())
    );

    let failed = DeliveryAttempt {
        at: now,
        status_code: Some(503),
        latency: Duration::from_millis(120),
        response_excerpt: Some("busy".into()),
        error: None,
    };
    a.record_attempt(
        delivery.delivery_id,
        &failed,
        AttemptOutcome::RetryAt(now + Span::seconds(10)),
    )
    .await
    .unwrap();
    assert!(
        a.claim_due_deliveries(now + Span::seconds(5), 10, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "retry not due yet"
    );
    // The other five leases ran out (their worker died); the retry is due too.
    let again = a
        .claim_due_deliveries(now + Span::seconds(40), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(again.len(), 6);
    let retry = again
        .iter()
        .find(|d| d.delivery_id == delivery.delivery_id)
        .unwrap();
    assert_eq!(retry.attempt, 2);

    let ok = DeliveryAttempt {
        at: now + Span::seconds(40),
        status_code: Some(204),
        latency: Duration::from_millis(80),
        response_excerpt: None,
        error: None,
    };
    a.record_attempt(delivery.delivery_id, &ok, AttemptOutcome::Delivered)
        .await
        .unwrap();
    let record = a.delivery(delivery.delivery_id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.attempts, record.last_status_code),
        (DeliveryStatus::Delivered, 2, Some(204))
    );
    let attempts = a.list_attempts(delivery.delivery_id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|t| t.status_code).collect::<Vec<_>>(),
        [Some(503), Some(204)]
    );
    assert_eq!(attempts[0].latency, Duration::from_millis(120));

    let other = again
        .iter()
        .find(|d| d.delivery_id != delivery.delivery_id)
        .unwrap();
    let refused = DeliveryAttempt {
        at: now,
        status_code: None,
        latency: Duration::ZERO,
        response_excerpt: None,
        error: Some("connection refused".into()),
    };
    a.record_attempt(other.delivery_id, &refused, AttemptOutcome::GiveUp)
        .await
        .unwrap();
    assert_eq!(
        a.delivery(other.delivery_id).await.unwrap().unwrap().status,
        DeliveryStatus::Failed
    );
    assert_eq!(
        a.claim_due_deliveries(now + Span::hours(1), 10, LEASE)
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn replays_queue_events_again(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    store
        .apply_page(discovery_page(&integration("acme"), "app", 5))
        .await
        .unwrap();
    let late = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    let picky = store
        .create_endpoint(&endpoint(&["application.hired"]), at(0))
        .await
        .unwrap();
    assert!(
        store
            .list_deliveries(&late.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.replay_range(&late.id, 2, 4, at(1)).await.unwrap(), 3);
    assert_eq!(
        store.replay_range(&picky.id, 1, 5, at(1)).await.unwrap(),
        0,
        "its filter wants none"
    );
    let queued = store.list_deliveries(&late.id, None, 10).await.unwrap();
    assert_eq!(
        queued.iter().map(|d| d.event_sequence).collect::<Vec<_>>(),
        [4, 3, 2]
    );
    assert!(
        queued
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0)
    );

    let event_id = queued[0].event_id.clone();
    let replayed = store
        .replay_event(&picky.id, &event_id, at(2))
        .await
        .unwrap();
    assert!(
        replayed.is_some(),
        "a single replay ignores the type filter"
    );
    assert_eq!(
        store
            .delivery(replayed.unwrap())
            .await
            .unwrap()
            .unwrap()
            .event_sequence,
        4
    );
    assert!(
        store
            .replay_event(&picky.id, "evt_missing", at(2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .replay_event("ep_missing", &event_id, at(2))
            .await
            .unwrap()
            .is_none()
    );
}

async fn idempotency_keys_answer_repeats(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let scope = "POST /v1/applications";
    assert_eq!(
        store
            .begin_idempotent(scope, "k1", "h1", at(0))
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );
    assert_eq!(
        store
            .begin_idempotent(scope, "k1", "h1", at(0))
            .await
            .unwrap(),
        IdempotencyClaim::InFlight
    );
    assert_eq!(
        store
            .begin_idempotent(scope, "k1", "h2", at(0))
            .await
            .unwrap(),
        IdempotencyClaim::Mismatch
    );
    assert_eq!(
        store
            .begin_idempotent("other", "k1", "h2", at(0))
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );

    store
        .complete_idempotent(scope, "k1", 201, "{\"id\":1}", at(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .begin_idempotent(scope, "k1", "h1", at(2))
            .await
            .unwrap(),
        IdempotencyClaim::Completed {
            status: 201,
            body: "{\"id\":1}".into()
        }
    );
    // Abandoning leaves completed keys alone and frees in-flight ones.
    store.abandon_idempotent(scope, "k1").await.unwrap();
    assert!(matches!(
        store
            .begin_idempotent(scope, "k1", "h1", at(2))
            .await
            .unwrap(),
        IdempotencyClaim::Completed { .. }
    ));
    assert_eq!(
        store
            .begin_idempotent(scope, "k2", "h1", at(3))
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );
    store.abandon_idempotent(scope, "k2").await.unwrap();
    assert_eq!(
        store
            .begin_idempotent(scope, "k2", "h1", at(3))
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );

    assert_eq!(store.purge_idempotency_keys(at(1)).await.unwrap(), 2);
    assert_eq!(
        store
            .begin_idempotent(scope, "k1", "h9", at(4))
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );
}
