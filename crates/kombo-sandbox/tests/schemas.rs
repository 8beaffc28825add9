//! Every kind of response the sandbox serves, and every webhook it sends, validated against
//! Kombo's JSON Schemas kept in `kombo-schemas` (taken from Kombo's official Python SDK).

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use common::{Answer, start};
use kombo_sandbox::{Fault, FaultRule, SandboxConfig, Trigger};
use reqwest::Method;
use serde_json::{Value, json};

const ALL: [&str; 4] = [
    "acme-greenhouse",
    "globex-personio",
    "initech-workday",
    "umbrella-recruitee",
];

fn validator(name: &str) -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(kombo_schemas::get(name).expect("schema exists")).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

fn assert_valid(name: &str, instance: &Value) {
    let validator = validator(name);
    let problems: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .take(5)
        .collect();
    assert!(problems.is_empty(), "{name}: {problems:#?}\n{instance:#}");
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{}",
        answer.body
    );
    assert_valid("error.ats", &answer.body);
}

#[tokio::test]
async fn list_responses_match_the_schemas_after_lots_of_activity() {
    let (sandbox, client) = start(SandboxConfig::showcase(21, 4, 15)).await;
    let handle = sandbox.handle();
    handle.advance(600);
    handle.mass_delete("acme-greenhouse", 0.1);
    let mut pages = 0;
    for integration in ALL {
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![
                ("page_size", "9".to_owned()),
                ("include_deleted", "true".to_owned()),
            ];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let answer = client
                .send(client.get(integration, "/ats/applications").query(&query))
                .await;
            if integration == "initech-workday" {
                assert_error(&answer, 403, "INTEGRATION.MODEL_NOT_AVAILABLE");
                break;
            }
            assert_valid("get-ats-applications.response", &answer.body);
            pages += 1;
            match answer.next() {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let jobs = client.list(integration, "/ats/jobs", &[]).await;
        assert_valid("get-ats-jobs.response", &jobs.body);
        let details = client
            .send(client.get(integration, &format!("/integrations/{integration}")))
            .await;
        assert_valid("get-integrations-integration-id.response", &details.body);
    }
    assert!(pages > 10);
    let key = client
        .send(
            client
                .http
                .get(format!("{}/check-api-key", client.base))
                .bearer_auth(&client.key),
        )
        .await;
    assert_valid("get-check-api-key.response", &key.body);
}

#[tokio::test]
async fn write_requests_and_responses_match_the_schemas() {
    let (sandbox, client) = start(SandboxConfig::showcase(22, 3, 5)).await;
    let acme = "acme-greenhouse";
    let jobs = client
        .list(acme, "/ats/jobs", &[("statuses", "OPEN")])
        .await;
    let job = &jobs.results()[0];
    let create = json!({
        "candidate": {"first_name": "Annie", "last_name": "Easley", "email_address": "annie@example.com"},
        "stage_id": job["stages"][0]["id"],
    });
    assert_valid("post-ats-jobs-job-id-applications.request", &create);
    let created = client
        .send(client.write(
            Method::POST,
            acme,
            &format!("/ats/jobs/{}/applications", job["id"].as_str().unwrap()),
            &create,
        ))
        .await;
    assert_valid("post-ats-jobs-job-id-applications.response", &created.body);
    let id = created.body["data"]["id"].as_str().unwrap();

    let stage = json!({"stage_id": job["stages"][1]["id"]});
    assert_valid("put-ats-applications-application-id-stage.request", &stage);
    let moved = client
        .send(client.write(
            Method::PUT,
            acme,
            &format!("/ats/applications/{id}/stage"),
            &stage,
        ))
        .await;
    assert_valid(
        "put-ats-applications-application-id-stage.response",
        &moved.body,
    );

    let reasons = client
        .send(client.get(acme, "/ats/rejection-reasons"))
        .await;
    assert_valid("get-ats-rejection-reasons.response", &reasons.body);
    let reason = reasons.body["data"]["results"][0]["id"].clone();
    let reject = json!({"rejection_reason_id": reason, "note": "Thanks"});
    assert_valid(
        "post-ats-applications-application-id-reject.request",
        &reject,
    );
    let rejected = client
        .send(client.write(
            Method::POST,
            acme,
            &format!("/ats/applications/{id}/reject"),
            &reject,
        ))
        .await;
    assert_valid(
        "post-ats-applications-application-id-reject.response",
        &rejected.body,
    );

    let remote_id = sandbox.handle().untracked_remote_ids(acme).remove(0);
    let import = json!({"tracked_at": "2026-11-01T00:00:00.000Z", "greenhouse": {"id_type": "application_id", "application_id": remote_id}});
    assert_valid("post-ats-import-tracked-application.request", &import);
    let imported = client
        .send(client.write(
            Method::POST,
            acme,
            "/ats/import-tracked-application",
            &import,
        ))
        .await;
    assert_valid(
        "post-ats-import-tracked-application.response",
        &imported.body,
    );
}

/// With raw ATS objects on: every record still matches Kombo's schemas, and carries an object
/// keyed by the ATS endpoint it came from, about a kilobyte per application.
#[tokio::test]
async fn remote_data_is_a_realistic_raw_object_when_asked_for() {
    let (_sandbox, client) = start(SandboxConfig::showcase(23, 2, 6).with_remote_data()).await;
    let acme = "acme-greenhouse";
    let page = client
        .send(
            client
                .get(acme, "/ats/applications")
                .query(&[("page_size", "50")]),
        )
        .await;
    assert_valid("get-ats-applications.response", &page.body);
    let results = page.results();
    assert!(!results.is_empty());
    for application in results {
        let raw = application["remote_data"]
            .as_object()
            .expect("remote_data is an object");
        let (endpoint, record) = raw.iter().next().expect("one endpoint");
        assert!(endpoint.starts_with("/v1/applications/"), "{endpoint}");
        assert_eq!(record["id"], application["remote_id"]);
    }
    let bytes: usize = results
        .iter()
        .map(|a| a["remote_data"].to_string().len())
        .sum();
    assert!(
        bytes / results.len() > 800,
        "about a kilobyte per application, got {}",
        bytes / results.len()
    );
    let jobs = client.send(client.get(acme, "/ats/jobs")).await;
    assert_valid("get-ats-jobs.response", &jobs.body);
    assert!(jobs.results()[0]["remote_data"].is_object());
    assert!(jobs.results()[0]["stages"][0]["remote_data"].is_object());

    let (_plain, plain_client) = start(SandboxConfig::showcase(23, 2, 6)).await;
    let plain = plain_client
        .send(plain_client.get(acme, "/ats/applications"))
        .await;
    assert!(plain.results().iter().all(|a| a["remote_data"].is_null()));
}

#[tokio::test]
async fn error_responses_match_the_schema() {
    let config = SandboxConfig::showcase(23, 2, 3).with_integration(
        kombo_sandbox::IntegrationConfig::new("late", "lever", kombo_sandbox::AtsProfile::Full)
            .not_ready(),
    );
    let (sandbox, client) = start(config).await;
    let acme = "acme-greenhouse";
    let unauthenticated = client
        .send(
            client
                .http
                .get(format!("{}/ats/jobs", client.base))
                .header("X-Integration-Id", acme),
        )
        .await;
    assert_error(&unauthenticated, 401, "PLATFORM.AUTHENTICATION_INVALID");
    assert_error(
        &client.list("nobody", "/ats/jobs", &[]).await,
        404,
        "PLATFORM.INTEGRATION_NOT_FOUND",
    );
    assert_error(
        &client.list("late", "/ats/jobs", &[]).await,
        409,
        "INTEGRATION.SETUP_SYNC_PENDING",
    );
    assert_error(
        &client
            .list(acme, "/ats/jobs", &[("page_size", "999")])
            .await,
        400,
        "PLATFORM.INPUT_INVALID",
    );
    let handle = sandbox.handle();
    handle.set_faults(vec![FaultRule::new(
        Fault::RateLimited {
            retry_after_secs: 3,
        },
        Trigger::Next(1),
    )]);
    assert_error(
        &client.list(acme, "/ats/jobs", &[]).await,
        429,
        "PLATFORM.RATE_LIMIT_EXCEEDED",
    );
    handle.set_faults(vec![FaultRule::new(Fault::Status(503), Trigger::Next(1))]);
    assert_error(
        &client.list(acme, "/ats/jobs", &[]).await,
        503,
        "REMOTE.SERVICE_UNAVAILABLE",
    );
}

#[tokio::test]
async fn webhook_payloads_match_the_schemas() {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let store = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |body: Bytes| {
            let store = Arc::clone(&store);
            async move { store.lock().unwrap().push(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = SandboxConfig::showcase(24, 2, 5)
        .with_integration(
            kombo_sandbox::IntegrationConfig::new("late", "lever", kombo_sandbox::AtsProfile::Full)
                .not_ready(),
        )
        .with_webhook(url, "secret".to_owned());
    let (sandbox, _client) = start(config).await;
    sandbox.handle().advance(50);
    sandbox.handle().mark_ready("late");
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..200 {
        if received.lock().unwrap().len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for body in received.lock().unwrap().iter() {
        let payload: Value = serde_json::from_slice(body).unwrap();
        let kind = payload["type"].as_str().unwrap().to_owned();
        assert_valid(&format!("webhook.{kind}"), &payload);
        kinds.insert(kind);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["data-changed", "integration-state-changed"]
    );
}

#[tokio::test]
async fn the_schemas_reject_a_page_that_drifts_from_kombo() {
    let (_sandbox, client) = start(SandboxConfig::showcase(25, 1, 3)).await;
    let mut page = client
        .list("acme-greenhouse", "/ats/applications", &[])
        .await
        .body;
    assert!(validator("get-ats-applications.response").is_valid(&page));
    let broken = [
        ("/data/results/0", "changed_at", Value::Null),
        ("/data/results/0", "outcome", json!("WITHDRAWN")),
        ("/data/results/0", "remote_created_at", json!("yesterday")),
    ];
    for (pointer, field, value) in broken {
        let mut drifted = page.clone();
        drifted.pointer_mut(pointer).unwrap()[field] = value;
        assert!(
            !validator("get-ats-applications.response").is_valid(&drifted),
            "{field}"
        );
    }
    page["data"]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("current_stage");
    assert!(!validator("get-ats-applications.response").is_valid(&page));
}
