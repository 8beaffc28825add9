use std::collections::HashSet;
use std::time::Duration;

use adapters_postgres::{
    AttemptOutcome, Backend, DeliveryAttempt, DeliveryStatus, EndpointUpdate, IdempotencyClaim,
    NewEndpoint, NewIntegration,
};
use chrono::Duration as Span;
use domain::ports::TrackerStore;

use crate::contract;
use crate::support::{
    TestDb, assert_gap_free, at, discovered, discovery_page, integration, stage, tracked,
    whole_feed,
};

contract!(
    endpoints_are_managed_and_keep_their_secret_out_of_debug,
    appended_events_queue_deliveries_for_matching_endpoints,
    an_append_of_several_chunks_is_numbered_and_queued_in_order,
    delivery_leases_and_attempts,
    a_worker_that_outlived_its_claim_cannot_record,
    rotation_keeps_the_previous_secret_for_its_overlap,
    disabling_appends_the_event_in_the_same_transaction,
    replays_queue_events_again,
    idempotency_keys_answer_repeats,
    idempotency_keys_with_an_unknown_outcome_never_start_again
);

const LEASE: Duration = Duration::from_secs(30);

fn endpoint(types: &[&str]) -> NewEndpoint {
    NewEndpoint {
        url: "https://product.example/hooks".into(),
        description: None,
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        secret: "whsec_c2VjcmV0LW9mLXRoZS1lbmRwb2ludA==".into(),
    }
}

async fn endpoints_are_managed_and_keep_their_secret_out_of_debug(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let created = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    assert_eq!(created.secret, endpoint(&[]).secret, "stored as given");
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
        .rotate_secret(&created.id, "whsec_bmV3", at(2), at(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rotated.secret.as_str(), rotated.previous_secret.clone()),
        ("whsec_bmV3", None)
    );
    assert!(!format!("{rotated:?}").contains("whsec_"));
    assert!(
        store
            .disable_endpoint(&created.id, "failing for 3 days", at(3), None)
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
        .disable_endpoint(&off.id, "test", at(0), None)
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

/// Appends are written in chunks of 500; a batch of several, some of it already stored, keeps
/// the feed gap-free and in the batch's order, and each event its one delivery.
async fn an_append_of_several_chunks_is_numbered_and_queued_in_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let everything = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    let id = integration("acme");
    let events: Vec<_> = (0..1_200)
        .map(|n| {
            discovered(&tracked(
                &id,
                &format!("app-{n:04}"),
                stage("applied", 0),
                1,
            ))
        })
        .collect();
    // Every 7th event is stored first, so the large append skips 172 of them.
    let early: Vec<_> = events.iter().step_by(7).cloned().collect();
    assert_eq!(store.append_events(early.clone()).await.unwrap(), 172);
    assert_eq!(store.append_events(events.clone()).await.unwrap(), 1_028);
    assert_eq!(store.append_events(events.clone()).await.unwrap(), 0);

    let feed = whole_feed(&store, 500).await;
    assert_gap_free(&feed);
    let expected: Vec<_> = early
        .iter()
        .chain(
            events
                .iter()
                .enumerate()
                .filter(|(n, _)| n % 7 != 0)
                .map(|(_, e)| e),
        )
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(
        feed.iter().map(|e| e.event.id.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(store.feed_head().await.unwrap(), 1_200);
    // Listed newest first, a page at a time.
    let mut queued: Vec<(i64, String)> = Vec::new();
    let mut before = None;
    for _ in 0..10 {
        let page = store
            .list_deliveries(&everything.id, before, 500)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        queued.extend(page.into_iter().map(|d| (d.event_sequence, d.event_id)));
    }
    queued.reverse();
    let fed: Vec<(i64, String)> = feed
        .iter()
        .map(|e| (e.sequence, e.event.id.as_str().to_owned()))
        .collect();
    assert_eq!(queued.len(), fed.len(), "one delivery per event");
    assert!(queued == fed, "deliveries follow the feed's order");
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
    assert!(
        a.record_attempt(
            delivery.delivery_id,
            delivery.attempt,
            &failed,
            AttemptOutcome::RetryAt(now + Span::seconds(10)),
        )
        .await
        .unwrap()
    );
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
    // Every claim counts its attempt, recorded or not.
    assert!(again.iter().all(|d| d.attempt == 2));
    let retry = again
        .iter()
        .find(|d| d.delivery_id == delivery.delivery_id)
        .unwrap();

    let ok = DeliveryAttempt {
        at: now + Span::seconds(40),
        status_code: Some(204),
        latency: Duration::from_millis(80),
        response_excerpt: None,
        error: None,
    };
    assert!(
        a.record_attempt(
            delivery.delivery_id,
            retry.attempt,
            &ok,
            AttemptOutcome::Delivered
        )
        .await
        .unwrap()
    );
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
    assert!(
        a.record_attempt(
            other.delivery_id,
            other.attempt,
            &refused,
            AttemptOutcome::GiveUp
        )
        .await
        .unwrap()
    );
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

/// One delivery queued for one endpoint.
async fn one_delivery(store: &adapters_postgres::Store) {
    store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    store
        .apply_page(discovery_page(&integration("acme"), "app", 1))
        .await
        .unwrap();
}

async fn a_worker_that_outlived_its_claim_cannot_record(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    one_delivery(&store).await;
    let attempt = |second: i64, status: u16| DeliveryAttempt {
        at: at(second),
        status_code: Some(status),
        latency: Duration::from_millis(5),
        response_excerpt: None,
        error: None,
    };

    let slow = store.claim_due_deliveries(at(60), 1, LEASE).await.unwrap();
    assert_eq!(slow.len(), 1);
    // The slow worker's lease runs out and another worker claims the delivery.
    let fast = store
        .claim_due_deliveries(at(60) + Span::seconds(31), 1, LEASE)
        .await
        .unwrap();
    assert_eq!((slow[0].attempt, fast[0].attempt), (1, 2));
    let id = fast[0].delivery_id;
    assert!(
        !store
            .record_attempt(
                id,
                slow[0].attempt,
                &attempt(95, 500),
                AttemptOutcome::GiveUp
            )
            .await
            .unwrap(),
        "a stale claim records nothing while the newer one runs"
    );
    assert!(
        store
            .record_attempt(
                id,
                fast[0].attempt,
                &attempt(96, 204),
                AttemptOutcome::Delivered
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_attempt(
                id,
                slow[0].attempt,
                &attempt(97, 504),
                AttemptOutcome::RetryAt(at(200))
            )
            .await
            .unwrap(),
        "nor after it delivered"
    );
    let record = store.delivery(id).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.attempts, record.last_status_code),
        (DeliveryStatus::Delivered, 2, Some(204))
    );
    assert_eq!(store.list_attempts(id).await.unwrap().len(), 1);
    assert!(
        store
            .claim_due_deliveries(at(300), 1, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn rotation_keeps_the_previous_secret_for_its_overlap(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let created = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    let first = created.secret.clone();
    let rotated = store
        .rotate_secret(&created.id, "whsec_c2Vjb25k", at(100), at(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rotated.signing_secrets(at(10)),
        ["whsec_c2Vjb25k", first.as_str()]
    );
    assert_eq!(rotated.signing_secrets(at(99)).len(), 2);
    assert_eq!(rotated.signing_secrets(at(100)), ["whsec_c2Vjb25k"]);
    assert_eq!(store.endpoint(&created.id).await.unwrap(), Some(rotated));
    // A second rotation keeps the secret it replaces, not the first one.
    let again = store
        .rotate_secret(&created.id, "whsec_dGhpcmQ=", at(150), at(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.signing_secrets(at(20)),
        ["whsec_dGhpcmQ=", "whsec_c2Vjb25k"]
    );
    assert!(
        store
            .rotate_secret("ep_missing", "whsec_eA==", at(150), at(20))
            .await
            .unwrap()
            .is_none()
    );
}

async fn disabling_appends_the_event_in_the_same_transaction(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let created = store.create_endpoint(&endpoint(&[]), at(0)).await.unwrap();
    let event = |second| {
        domain::ChangeEvent::endpoint_disabled(
            domain::event::EndpointDisabled {
                endpoint_id: created.id.clone(),
                url: created.url.clone(),
                reason: "failing".into(),
            },
            at(second),
        )
    };
    assert!(
        store
            .disable_endpoint(&created.id, "failing", at(5), Some(event(5)))
            .await
            .unwrap()
    );
    assert_eq!(store.feed_head().await.unwrap(), 1);
    // Disabled already: neither the reason nor the feed changes.
    assert!(
        !store
            .disable_endpoint(&created.id, "again", at(6), Some(event(6)))
            .await
            .unwrap()
    );
    assert_eq!(store.feed_head().await.unwrap(), 1);
    let stored = store.endpoint(&created.id).await.unwrap().unwrap();
    assert_eq!(stored.disabled_reason.as_deref(), Some("failing"));
    assert!(
        !store
            .disable_endpoint("ep_missing", "x", at(7), Some(event(7)))
            .await
            .unwrap()
    );
    assert_eq!(store.feed_head().await.unwrap(), 1);
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

async fn idempotency_keys_with_an_unknown_outcome_never_start_again(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let scope = "POST /v1/applications";
    assert_eq!(
        store
            .begin_idempotent(scope, "lost", "h1", at(0))
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );
    store
        .mark_outcome_unknown(scope, "lost", "Kombo's answer was lost")
        .await
        .unwrap();
    // Only a request in flight is released; this one may have taken effect.
    store.abandon_idempotent(scope, "lost").await.unwrap();
    assert_eq!(
        store
            .begin_idempotent(scope, "lost", "h1", at(1))
            .await
            .unwrap(),
        IdempotencyClaim::OutcomeUnknown {
            detail: "Kombo's answer was lost".into()
        }
    );
    assert_eq!(
        store
            .begin_idempotent(scope, "lost", "h2", at(1))
            .await
            .unwrap(),
        IdempotencyClaim::Mismatch,
        "another request with the key is still a mismatch"
    );

    // A request whose process died stays in flight until it is older than any request runs.
    assert_eq!(
        store
            .begin_idempotent(scope, "crashed", "h1", at(0))
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );
    assert_eq!(
        store
            .begin_idempotent(scope, "crashed", "h1", at(9))
            .await
            .unwrap(),
        IdempotencyClaim::InFlight
    );
    let claim = store
        .begin_idempotent(scope, "crashed", "h1", at(11))
        .await
        .unwrap();
    assert!(
        matches!(&claim, IdempotencyClaim::OutcomeUnknown { detail } if detail.contains("never finished")),
        "{claim:?}"
    );
}
