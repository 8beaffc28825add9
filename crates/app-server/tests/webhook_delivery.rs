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
use app_server::delivery::schedule::RetrySchedule;
use app_server::delivery::sign::generate_secret;
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

/// A deliverer with a short retry schedule (four retries), allowed to reach the loopback
/// receivers.
fn deliverer(store: &Store, clock: Arc<dyn Clock>) -> Deliverer {
    deliverer_with(store, clock, true, 4)
}

fn deliverer_with(
    store: &Store,
    clock: Arc<dyn Clock>,
    allow_private_urls: bool,
    retries: usize,
) -> Deliverer {
    let mut settings = Settings::default();
    settings.webhooks.allow_private_urls = allow_private_urls;
    Deliverer::new(store.clone(), clock, &settings)
        .expect("deliverer")
        .with_schedule(
            RetrySchedule::new(vec![Duration::from_millis(30); retries]),
            Duration::from_millis(20),
        )
}

fn new_endpoint(url: String, secret: String) -> NewEndpoint {
    NewEndpoint {
        url,
        description: None,
        event_types: Vec::new(),
        secret,
    }
}

/// Runs `deliverer` until `done` holds (at most ten seconds), then stops it.
async fn run_until<F, Fut>(deliverer: Deliverer, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(deliverer.run(shutdown.clone()));
    for _ in 0..500 {
        if done().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await.unwrap();
}

/// Whether every delivery to the endpoint is finished (delivered or given up).
async fn all_finished(store: &Store, endpoint: &str) -> bool {
    let deliveries = store.list_deliveries(endpoint, None, 100).await.unwrap();
    !deliveries.is_empty()
        && deliveries
            .iter()
            .all(|d| d.status != DeliveryStatus::Pending)
}

/// The test binary's metrics, rendered as Prometheus text.
fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(app_server::telemetry::init_metrics)
}

fn refused_count(reason: &str) -> u64 {
    let wanted = format!("stagewatch_http_refused_total{{reason=\"{reason}\"}} ");
    metrics()
        .render()
        .lines()
        .find_map(|line| {
            line.strip_prefix(&wanted)
                .map(|n| n.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_at_least_once_despite_failures() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let (url, seen) = start_receiver(2).await;
    let endpoint = store
        .create_endpoint(&new_endpoint(url, generate_secret()), chrono::Utc::now())
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

/// An event appended by another process is delivered at once, not at the worker's next look at
/// the outbox: the worker wakes on the feed's notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_appended_elsewhere_wakes_the_idle_worker() {
    let database = TestDatabase::postgres().await;
    let worker_store = database.store().await;
    let other_replica = database.store().await;
    let (url, seen) = start_receiver(0).await;
    worker_store
        .create_endpoint(&new_endpoint(url, generate_secret()), chrono::Utc::now())
        .await
        .unwrap();
    let mut settings = Settings::default();
    settings.webhooks.allow_private_urls = true;
    // An idle poll far longer than the test waits: only a wake-up can deliver in time.
    let idle = Deliverer::new(worker_store.clone(), Arc::new(SystemClock), &settings)
        .unwrap()
        .with_schedule(
            RetrySchedule::new(vec![Duration::from_millis(30)]),
            Duration::from_secs(300),
        );
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(idle.run(shutdown.clone()));
    // Let the worker find the outbox empty and go idle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    other_replica.append_events(status_events(3)).await.unwrap();
    let mut delivered = 0;
    for _ in 0..250 {
        delivered = seen.lock().unwrap().attempts.len();
        if delivered == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(delivered, 3, "every event delivered within five seconds");
    drop((worker_store, other_replica));
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
                secret: generate_secret(),
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

/// A clock a test moves by hand.
struct SettableClock(Mutex<chrono::DateTime<chrono::Utc>>);

impl Clock for SettableClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_secret_verifies_during_the_overlap_and_not_after() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let (url, seen) = start_receiver(0).await;
    let (old, new) = (generate_secret(), generate_secret());
    // A little ahead, so that the events appended below are due at once.
    let start = chrono::Utc::now() + chrono::Duration::minutes(1);
    let endpoint = store
        .create_endpoint(&new_endpoint(url, old.clone()), start)
        .await
        .unwrap();
    store
        .rotate_secret(
            &endpoint.id,
            &new,
            start + chrono::Duration::hours(1),
            start,
        )
        .await
        .unwrap()
        .unwrap();
    let clock = Arc::new(SettableClock(Mutex::new(start)));
    let received = |count: usize| {
        let seen = Arc::clone(&seen);
        move || {
            let seen = Arc::clone(&seen);
            async move { seen.lock().unwrap().requests.len() >= count }
        }
    };

    store.append_events(status_events(1)).await.unwrap();
    run_until(deliverer(&store, clock.clone()), received(1)).await;
    // After the overlap: a second event, delivered two hours later.
    *clock.0.lock().unwrap() = start + chrono::Duration::hours(2);
    let later = {
        let id = IntegrationId::parse("acme-greenhouse").unwrap();
        ChangeEvent::for_integration(
            &id,
            EventKind::StatusChanged(StatusChange {
                from: Some(IntegrationStatus::Inactive),
                to: IntegrationStatus::Active,
            }),
            "after-the-overlap",
            start,
        )
    };
    store.append_events(vec![later]).await.unwrap();
    run_until(deliverer(&store, clock.clone()), received(2)).await;

    let requests = seen.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 2);
    let (during, after) = (&requests[0], &requests[1]);
    assert!(verifies(&new, &during.0, &during.1));
    assert!(
        verifies(&old, &during.0, &during.1),
        "the old secret verifies during the overlap"
    );
    assert!(verifies(&new, &after.0, &after.1));
    assert!(!verifies(&old, &after.0, &after.1), "and not after it");
    assert_eq!(
        after.0["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    drop(store);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_public_addresses_are_refused_at_delivery_unless_allowed() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let (url, seen) = start_receiver(0).await;
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    // Stored directly, as an endpoint whose name resolved to a public address when it was
    // written would be: `localhost` reaches the resolver, the literal the pre-connect check.
    let by_name = store
        .create_endpoint(
            &new_endpoint(format!("http://localhost:{port}/hooks"), generate_secret()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let by_literal = store
        .create_endpoint(
            &new_endpoint(format!("http://127.0.0.1:{port}/hooks"), generate_secret()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store.append_events(status_events(1)).await.unwrap();
    let refused_before = refused_count("webhook_private_address");

    let check = || async {
        all_finished(&store, &by_name.id).await && all_finished(&store, &by_literal.id).await
    };
    run_until(
        deliverer_with(&store, Arc::new(SystemClock), false, 0),
        check,
    )
    .await;
    assert!(
        seen.lock().unwrap().requests.is_empty(),
        "nothing reached the receiver"
    );
    for endpoint in [&by_name, &by_literal] {
        let deliveries = store.list_deliveries(&endpoint.id, None, 10).await.unwrap();
        assert_eq!(deliveries[0].status, DeliveryStatus::Failed);
        let attempts = store.list_attempts(deliveries[0].id).await.unwrap();
        let error = attempts[0].error.clone().unwrap_or_default();
        assert!(error.contains("non-public"), "{error}");
    }
    assert!(refused_count("webhook_private_address") >= refused_before + 2);

    // The same endpoints, private addresses allowed: the refusal was the address check's.
    for endpoint in [&by_name, &by_literal] {
        let event = store.list_deliveries(&endpoint.id, None, 1).await.unwrap()[0]
            .event_id
            .clone();
        store
            .replay_event(&endpoint.id, &event, chrono::Utc::now())
            .await
            .unwrap();
    }
    let seen_twice = || async { seen.lock().unwrap().requests.len() >= 2 };
    run_until(
        deliverer_with(&store, Arc::new(SystemClock), true, 0),
        seen_twice,
    )
    .await;
    assert_eq!(seen.lock().unwrap().requests.len(), 2);
    drop(store);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let (target, seen) = start_receiver(0).await;
    let redirect = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let target = target.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirect).await });
    let endpoint = store
        .create_endpoint(
            &new_endpoint(format!("http://{address}/hooks"), generate_secret()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store.append_events(status_events(1)).await.unwrap();
    run_until(
        deliverer_with(&store, Arc::new(SystemClock), true, 0),
        || all_finished(&store, &endpoint.id),
    )
    .await;
    assert!(
        seen.lock().unwrap().requests.is_empty(),
        "the redirect was followed"
    );
    let delivery = &store.list_deliveries(&endpoint.id, None, 1).await.unwrap()[0];
    assert_eq!(
        (delivery.status, delivery.last_status_code),
        (DeliveryStatus::Failed, Some(307))
    );
    drop(store);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_secret_is_recorded_as_failed_attempts_and_given_up() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let (url, seen) = start_receiver(0).await;
    let endpoint = store
        .create_endpoint(
            &new_endpoint(url, "whsec_not base64!".to_owned()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store.append_events(status_events(1)).await.unwrap();
    run_until(
        deliverer_with(&store, Arc::new(SystemClock), true, 2),
        || all_finished(&store, &endpoint.id),
    )
    .await;
    assert!(seen.lock().unwrap().requests.is_empty());
    let delivery = &store.list_deliveries(&endpoint.id, None, 1).await.unwrap()[0];
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Failed, 3)
    );
    let attempts = store.list_attempts(delivery.id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| {
        a.error
            .as_deref()
            .is_some_and(|e| e.contains("secret is unusable"))
    }));
    drop(store);
    database.drop_database().await;
}
