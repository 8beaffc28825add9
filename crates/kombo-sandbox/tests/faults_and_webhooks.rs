//! Fault injection, the concurrency limit, the control API and signed webhooks.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::start;
use kombo_sandbox::{Endpoint, Fault, FaultRule, SandboxConfig, Trigger, sign};
use reqwest::Method;
use serde_json::{Value, json};

const ACME: &str = "acme-greenhouse";

fn showcase() -> SandboxConfig {
    SandboxConfig::showcase(11, 3, 10)
}

#[tokio::test]
async fn status_and_rate_limit_faults_answer_with_kombo_envelopes_then_stop() {
    let (sandbox, client) = start(showcase()).await;
    let handle = sandbox.handle();
    handle.add_fault(
        FaultRule::new(
            Fault::RateLimited {
                retry_after_secs: 7,
            },
            Trigger::Next(1),
        )
        .on(&[Endpoint::Applications]),
    );
    let limited = client.list(ACME, "/ats/applications", &[]).await;
    assert_eq!(
        (limited.status, limited.code()),
        (429, "PLATFORM.RATE_LIMIT_EXCEEDED")
    );
    assert_eq!(limited.headers["ratelimit-reset"], "7");
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    assert_eq!(
        client.list(ACME, "/ats/applications", &[]).await.status,
        200,
        "Next(1) fires once"
    );
    for (status, code) in [
        (500, "PLATFORM.UNKNOWN_ERROR"),
        (502, "REMOTE.UNKNOWN_HTTP_ERROR"),
        (503, "REMOTE.SERVICE_UNAVAILABLE"),
    ] {
        handle.set_faults(vec![FaultRule::new(
            Fault::Status(status),
            Trigger::Next(1),
        )]);
        let failed = client.list(ACME, "/ats/jobs", &[]).await;
        assert_eq!((failed.status, failed.code()), (status, code));
    }
    // A rule aimed elsewhere leaves this endpoint alone.
    handle.set_faults(vec![
        FaultRule::new(Fault::Status(500), Trigger::Next(1))
            .on(&[Endpoint::Jobs])
            .for_integration("other"),
    ]);
    assert_eq!(client.list(ACME, "/ats/jobs", &[]).await.status, 200);
    assert_eq!(handle.faults().len(), 1);
    handle.clear_faults();
    assert!(handle.request_count(Endpoint::Applications) >= 2);
    assert!(handle.request_count(Endpoint::Jobs) >= 4);
}

#[tokio::test]
async fn probability_faults_fire_on_some_requests_only() {
    let (sandbox, client) = start(showcase()).await;
    sandbox.handle().set_faults(vec![FaultRule::new(
        Fault::Status(503),
        Trigger::Probability(0.5),
    )]);
    let mut failures = 0;
    for _ in 0..40 {
        if client.list(ACME, "/ats/jobs", &[]).await.status == 503 {
            failures += 1;
        }
    }
    assert!((5..=35).contains(&failures), "{failures} of 40 failed");
}

#[tokio::test]
async fn every_nth_request_fails_on_schedule() {
    let (sandbox, client) = start(showcase()).await;
    sandbox.handle().set_faults(vec![
        FaultRule::new(Fault::Status(502), Trigger::Every(3)).on(&[Endpoint::Jobs]),
    ]);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(client.list(ACME, "/ats/jobs", &[]).await.status);
    }
    assert_eq!(statuses, [200, 200, 502, 200, 200, 502, 200]);
    assert_eq!(
        client.list(ACME, "/ats/applications", &[]).await.status,
        200
    );
}

#[tokio::test]
async fn connection_drops_and_truncated_bodies_fail_the_read() {
    let (sandbox, client) = start(showcase()).await;
    let handle = sandbox.handle();
    for fault in [Fault::ConnectionDrop, Fault::TruncatedBody] {
        handle.set_faults(vec![FaultRule::new(fault.clone(), Trigger::Next(1))]);
        let read = async {
            let response = client.get(ACME, "/ats/applications").send().await?;
            response.bytes().await
        };
        assert!(read.await.is_err(), "{fault:?} must fail the read");
        assert_eq!(
            client.list(ACME, "/ats/applications", &[]).await.status,
            200,
            "after {fault:?}"
        );
    }
}

#[tokio::test]
async fn slow_responses_still_arrive() {
    let (sandbox, client) = start(showcase()).await;
    sandbox.handle().set_faults(vec![FaultRule::new(
        Fault::Slow(Duration::from_millis(50)),
        Trigger::Next(1),
    )]);
    assert_eq!(
        client.list(ACME, "/ats/applications", &[]).await.status,
        200
    );
    assert!(sandbox.handle().faults().is_empty());
}

#[tokio::test]
async fn an_expired_cursor_fault_only_hits_requests_with_a_cursor() {
    let (sandbox, client) = start(showcase()).await;
    sandbox
        .handle()
        .set_faults(vec![FaultRule::new(Fault::ExpiredCursor, Trigger::Next(1))]);
    let first = client
        .list(ACME, "/ats/applications", &[("page_size", "5")])
        .await;
    assert_eq!(first.status, 200);
    let cursor = first.next().unwrap();
    let expired = client
        .list(
            ACME,
            "/ats/applications",
            &[("page_size", "5"), ("cursor", &cursor)],
        )
        .await;
    assert_eq!(
        (expired.status, expired.code()),
        (400, "PLATFORM.INPUT_INVALID")
    );
    let retried = client
        .list(
            ACME,
            "/ats/applications",
            &[("page_size", "5"), ("cursor", &cursor)],
        )
        .await;
    assert_eq!(retried.status, 200);
}

#[tokio::test]
async fn more_than_30_actions_in_flight_hit_the_concurrency_limit() {
    let (sandbox, client) = start(SandboxConfig::showcase(11, 5, 10)).await;
    let handle = sandbox.handle();
    // Hold every action long enough for all 40 to be in flight together.
    handle.set_faults(vec![
        FaultRule::new(Fault::Slow(Duration::from_millis(1500)), Trigger::Next(40))
            .on(&[Endpoint::Reject]),
    ]);
    let applications = client
        .list(ACME, "/ats/applications", &[("page_size", "40")])
        .await;
    assert_eq!(applications.results().len(), 40);
    let requests = applications.results().iter().map(|item| {
        let id = item["id"].as_str().unwrap().to_owned();
        client.send(client.write(
            Method::POST,
            ACME,
            &format!("/ats/applications/{id}/reject"),
            &json!({"rejection_reason_id": "culture-fit"}),
        ))
    });
    let answers = futures::future::join_all(requests).await;
    let limited = answers
        .iter()
        .filter(|answer| answer.code() == "PLATFORM.CONCURRENCY_LIMIT_EXCEEDED")
        .count();
    assert!(
        limited > 0,
        "some of 40 concurrent actions exceed the limit of 30"
    );
    assert!(answers.iter().filter(|answer| answer.status == 200).count() <= 30);
    assert!(
        answers
            .iter()
            .all(|answer| answer.status == 200 || answer.status == 429)
    );
}

#[tokio::test]
async fn the_control_api_drives_the_sandbox_over_http() {
    let (sandbox, client) = start(showcase()).await;
    let control = sandbox.control_url();
    let http = &client.http;
    let entries: Vec<Value> = http
        .post(format!("{control}/advance"))
        .json(&json!({"steps": 25}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!entries.is_empty());
    let integration = entries[0]["integration"].as_str().unwrap();
    let truth: Vec<Value> = http
        .get(format!("{control}/truth/{integration}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(truth.iter().any(|entry| *entry == entries[0]));
    let rule = json!({"fault": {"Status": 503}, "trigger": {"Next": 1}, "endpoints": ["Jobs"]});
    let added = http
        .post(format!("{control}/faults"))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success());
    assert_eq!(client.list(ACME, "/ats/jobs", &[]).await.status, 503);
    let slow = json!([{"fault": {"Slow": "10ms"}, "trigger": {"Probability": 1.0}}]);
    http.put(format!("{control}/faults"))
        .json(&slow)
        .send()
        .await
        .unwrap();
    let listed: Vec<Value> = http
        .get(format!("{control}/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    http.delete(format!("{control}/faults"))
        .send()
        .await
        .unwrap();
    assert!(sandbox.handle().faults().is_empty());
    let deleted: Value = http
        .post(format!("{control}/integrations/{ACME}/mass-delete"))
        .json(&json!({"fraction": 0.5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(deleted["deleted"].as_u64().unwrap() > 0);
    let counts: Value = http
        .get(format!("{control}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["Jobs"], 1);
    let fired: Value = http
        .get(format!("{control}/faults/fired"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fired, json!({"Status503": 1}), "only the 503 rule fired");
    let unknown = http
        .get(format!("{control}/truth/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = Arc::clone(&store);
            async move {
                store.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn wait_for(received: &Received, count: usize) -> Vec<(HeaderMap, Bytes)> {
    for _ in 0..200 {
        if received.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received.lock().unwrap().clone()
}

#[tokio::test]
async fn webhooks_are_signed_like_kombo_and_name_the_changed_models() {
    let (url, received) = receiver().await;
    let config = SandboxConfig::showcase(12, 2, 5).with_webhook(url, "whsec-test".to_owned());
    let (sandbox, _client) = start(config).await;
    let handle = sandbox.handle();
    let entries = handle.advance(30);
    let integrations: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|entry| entry.integration.as_str())
        .collect();
    let deliveries = wait_for(&received, integrations.len()).await;
    assert_eq!(
        deliveries.len(),
        integrations.len(),
        "one data-changed per changed integration"
    );
    for (headers, body) in &deliveries {
        let signature = headers["x-kombo-signature"].to_str().unwrap();
        assert_eq!(signature, sign("whsec-test", body));
        assert_ne!(signature, sign("another-secret", body));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "data-changed");
        assert_eq!(payload["data"]["integration_category"], "ATS");
        let integration = payload["data"]["integration_id"].as_str().unwrap();
        assert!(integrations.contains(integration));
        let names: Vec<&str> = payload["data"]["changed_models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|model| model["name"].as_str().unwrap())
            .collect();
        let expected_application_change = entries
            .iter()
            .any(|entry| entry.integration == integration && entry.change.is_transition());
        assert_eq!(
            names.contains(&"ats_applications"),
            expected_application_change,
            "{names:?}"
        );
    }
}

#[tokio::test]
async fn duplicate_webhook_faults_deliver_the_same_webhook_twice() {
    let (url, received) = receiver().await;
    let config = SandboxConfig::new("key")
        .with_integration(
            kombo_sandbox::IntegrationConfig::new("late", "lever", kombo_sandbox::AtsProfile::Full)
                .with_jobs(1, 1)
                .not_ready(),
        )
        .with_webhook(url, "s".to_owned());
    let (sandbox, _client) = start(config).await;
    let handle = sandbox.handle();
    handle.set_faults(vec![FaultRule::new(
        Fault::DuplicateWebhook,
        Trigger::Next(1),
    )]);
    handle.mark_ready("late");
    let deliveries = wait_for(&received, 2).await;
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].1, deliveries[1].1);
    let payload: Value = serde_json::from_slice(&deliveries[0].1).unwrap();
    assert_eq!(payload["type"], "integration-state-changed");
    assert_eq!(payload["data"]["setup_status"], "COMPLETED");
}

#[tokio::test]
async fn answers_are_held_for_the_configured_answer_time() {
    let answer_time = Duration::from_millis(300);
    let (_sandbox, client) = start(showcase().with_answer_time(answer_time)).await;
    let started = std::time::Instant::now();
    let page = client.list(ACME, "/ats/applications", &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        started.elapsed() >= answer_time,
        "answered after {:?}, before the answer time of {answer_time:?}",
        started.elapsed()
    );
}
