//! Outbound webhooks end to end: a local receiver that fails first attempts, the delivery worker
//! retrying, and every received request verified with an independent implementation of the
//! Standard Webhooks signature scheme (checked against the specification's test vector).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters_postgres::{DeliveryStatus, NewEndpoint, Store};
use app_server::config::Settings;
use app_server::delivery::Deliverer;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use common::TestDatabase;
use domain::event::StatusChange;
use domain::ports::{Clock, EventReader, FeedQuery, SystemClock};
use domain::{ChangeEvent, EventKind, IntegrationId, IntegrationStatus};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

/// The Standard Webhooks signature, computed here without the `standardwebhooks` crate.
fn independent_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let expected = independent_signature(
        secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        body,
    );
    header("webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

#[test]
fn the_independent_verifier_matches_the_specification_test_vector() {
    // From the Standard Webhooks specification's reference test vectors.
    let signature = independent_signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
    );
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

/// What the receiver saw.
#[derive(Default)]
struct Received {
    /// Every request, in order.
    requests: Vec<(HeaderMap, Bytes)>,
    /// Attempts per webhook id.
    attempts: BTreeMap<String, u32>,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Received>>,
    /// Attempts refused (HTTP 500) per id before one is accepted; `u32::MAX` refuses all.
    refuse_first: u32,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut seen = receiver.seen.lock().unwrap();
    seen.requests.push((headers, body));
    let attempts = seen.attempts.entry(id).or_default();
    *attempts += 1;
    if *attempts <= receiver.refuse_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn start_receiver(refuse_first: u32) -> (String, Arc<Mutex<Received>>) {
    let seen = Arc::new(Mutex::new(Received::default()));
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(Receiver {
            seen: Arc::clone(&seen),
            refuse_first,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hooks"), seen)
}

fn status_events(count: usize) -> Vec<ChangeEvent> {
    let id = IntegrationId::parse("acme-greenhouse").unwrap();
    let now = chrono::Utc::now();
    (0..count)
        .map(|n| {
            ChangeEvent::for_integration(
                &id,
                EventKind::StatusChanged(StatusChange {
                    from: Some(IntegrationStatus::Active),
                    to: IntegrationStatus::Inactive,
                }),
                &format!("test-{n}"),
                now,
            )
        })
        .collect()
}

fn deliverer(store: &Store, clock: Arc<dyn Clock>) -> Deliverer {
    Deliverer::new(store.clone(), clock, &Settings::default())
        .expect("deliverer")
        .with_retry_waits(
            vec![Duration::from_millis(30); 4],
            Duration::from_millis(20),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_at_least_once_despite_failures() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let (url, seen) = start_receiver(2).await;
    let endpoint = store
        .create_endpoint(
            &NewEndpoint {
                url,
                description: None,
                event_types: Vec::new(),
                secret: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let events = status_events(12);
    store.append_events(events.clone()).await.unwrap();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(deliverer(&store, Arc::new(SystemClock)).run(shutdown.clone()));

    let wanted: BTreeSet<String> = events.iter().map(|e| e.id.to_string()).collect();
    for _ in 0..500 {
        let accepted = seen
            .lock()
            .unwrap()
            .attempts
            .values()
            .filter(|n| **n > 2)
            .count();
        if accepted == wanted.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await.unwrap();

    let (requests, attempts) = {
        let seen = seen.lock().unwrap();
        (seen.requests.clone(), seen.attempts.clone())
    };
    // Deduplicated by `webhook-id`, the receiver holds exactly the events, each signed.
    let mut by_id: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (headers, body) in &requests {
        assert!(
            verifies(&endpoint.secret, headers, body),
            "a delivery failed verification"
        );
        assert!(!verifies(&endpoint.secret, headers, b"{\"tampered\":true}"));
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        let payload: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["id"], id, "webhook-id is the event id");
        by_id.insert(id, payload);
    }
    assert!(requests.len() > by_id.len(), "the receiver saw retries");
    assert_eq!(by_id.keys().cloned().collect::<BTreeSet<_>>(), wanted);
    assert!(attempts.values().all(|n| *n == 3), "{attempts:?}");

    let deliveries = store
        .list_deliveries(&endpoint.id, None, 100)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), wanted.len());
    for delivery in &deliveries {
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
        let attempts = store.list_attempts(delivery.id).await.unwrap();
        let codes: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
        assert_eq!(codes, [Some(500), Some(500), Some(204)]);
    }
    drop(store);
    database.drop_database().await;
}

/// A clock two days ahead: an endpoint created now has been failing "for a day" at once.
struct TwoDaysLater;

impl Clock for TwoDaysLater {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::days(2)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_a_day_is_disabled_with_an_event() {
    let database = TestDatabase::postgres().await;
    let store = database.store().await;
    let (url, seen) = start_receiver(u32::MAX).await;
    let endpoint = store
        .create_endpoint(
            &NewEndpoint {
                url,
                description: None,
                event_types: vec!["integration.status_changed".to_owned()],
                secret: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store.append_events(status_events(1)).await.unwrap();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(deliverer(&store, Arc::new(TwoDaysLater)).run(shutdown.clone()));
    let mut disabled = false;
    for _ in 0..500 {
        if !store.endpoint(&endpoint.id).await.unwrap().unwrap().enabled {
            disabled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await.unwrap();
    assert!(disabled, "the endpoint was not disabled");
    // One first attempt and four retries, then given up.
    assert_eq!(seen.lock().unwrap().requests.len(), 5);
    let feed = store
        .read_events(&FeedQuery {
            after: None,
            limit: 100,
            types: vec!["endpoint.disabled".to_owned()],
            integration: None,
        })
        .await
        .unwrap();
    assert_eq!(feed.len(), 1);
    assert!(feed[0].event.integration.is_none());
    match &feed[0].event.kind {
        EventKind::EndpointDisabled(detail) => assert_eq!(detail.endpoint_id, endpoint.id),
        other => panic!("unexpected {other:?}"),
    }
    drop(store);
    database.drop_database().await;
}
