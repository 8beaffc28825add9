//! The funnel routes through real HTTP, over a store on SQLite whose stage history the tracker's
//! own writes built: the shape of each answer, an unknown job, and a bad window.

mod common;

use std::sync::Arc;

use adapters_postgres::{NewIntegration, Store};
use app_server::config::Settings;
use app_server::http::{ApiParts, auth::hash_key};
use common::{TestDatabase, kombo_client};
use domain::detect::StageEntry;
use domain::fixtures::{at, pipeline};
use domain::ports::{PageChanges, SystemClock, TrackerStore};
use domain::{ApplicationId, IntegrationId, JobId, Origin, Outcome, StageRef, TrackedApplication};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const API_KEY: &str = "funnel-key";
const INTEGRATION: &str = "greenhouse:acme";

fn stage(id: &str) -> StageRef {
    pipeline()
        .stage(&domain::StageId::parse(id).unwrap())
        .unwrap()
        .to_ref()
}

fn state(app: &str, current: &str, minute: i64) -> TrackedApplication {
    TrackedApplication {
        integration_id: IntegrationId::parse(INTEGRATION).unwrap(),
        id: ApplicationId::parse(app).unwrap(),
        remote_id: None,
        job_id: Some(JobId::parse("backend").unwrap()),
        job_name: Some("Backend Engineer".into()),
        candidate_id: None,
        candidate_name: None,
        current_stage: Some(stage(current)),
        stage_unknown_since: None,
        outcome: Some(Outcome::Pending),
        outcome_unknown_since: None,
        rejection_reason_name: None,
        rejected_at: None,
        changed_at: at(minute),
        deleted_at: None,
        remote_created_at: Some(at(0)),
        origin: Origin::Discovered,
        first_seen_at: at(0),
        last_seen_at: at(minute),
        entered_current_stage_at: Some(at(minute)),
    }
}

/// Writes the states as a page would, each entering its current stage.
async fn page(store: &Store, states: Vec<TrackedApplication>) {
    store
        .apply_page(PageChanges {
            integration_id: IntegrationId::parse(INTEGRATION).unwrap(),
            lease: None,
            stage_entries: states
                .iter()
                .map(|s| StageEntry {
                    application_id: s.id.clone(),
                    stage: s.current_stage.clone().unwrap(),
                    entered_at: s.entered_current_stage_at,
                })
                .collect(),
            applications: states,
            events: Vec::new(),
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> (StatusCode, String, Value) {
    let response = http
        .get(format!("{base}{path}"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_routes_answer_with_counts_404_and_400() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let integration = IntegrationId::parse(INTEGRATION).unwrap();
    store
        .register_integration(
            &NewIntegration {
                id: integration.clone(),
                tool: None,
                label: None,
                poll_interval: None,
            },
            at(0),
        )
        .await
        .unwrap();
    store
        .save_pipelines(&integration, &[pipeline()])
        .await
        .unwrap();
    page(
        &store,
        vec![state("a1", "applied", 0), state("a2", "applied", 0)],
    )
    .await;
    // a1 moves on after ten minutes; a2 stays.
    page(&store, vec![state("a1", "phone_screen", 10)]).await;

    let mut settings = Settings::default();
    settings.api.key_hashes = vec![hash_key(API_KEY)];
    let shutdown = CancellationToken::new();
    let (address, server) = app_server::http::start(
        &settings,
        ApiParts {
            store: store.clone(),
            // Never called: the funnel reads the store only.
            ats: kombo_client("http://127.0.0.1:9", "unused"),
            clock: Arc::new(SystemClock),
            sync_waker: Arc::new(Notify::new()),
            metrics: None,
        },
        Some("127.0.0.1:0".parse().unwrap()),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let base = format!("http://{address}");
    let http = reqwest::Client::new();

    let (status, _, job) = get(
        &http,
        &base,
        "/v1/integrations/greenhouse:acme/jobs/backend/funnel",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["applications"]["total"], 2);
    assert_eq!(job["applications"]["active"], 2);
    let stages = job["stages"].as_array().unwrap();
    // The inactive `archived` stage holds nobody: not listed.
    assert_eq!(stages.len(), 5, "{job}");
    let applied = &stages[0];
    assert_eq!(applied["stage_id"], "applied");
    assert_eq!(applied["name"], "Applied");
    assert_eq!(applied["position"], 0);
    assert_eq!(applied["current"], 1);
    assert_eq!(applied["entered"], 2);
    assert_eq!(applied["reached"], 2);
    assert_eq!(applied["conversion_to_next"], 0.5);
    assert_eq!(applied["median_seconds"], 600);
    assert_eq!(applied["p90_seconds"], 600);
    assert_eq!(applied["completed_stays"], 1);
    assert_eq!(applied["top_rejection_reasons"], Value::Array(Vec::new()));
    assert_eq!(stages[1]["current"], 1);
    assert_eq!(stages[4]["conversion_to_next"], Value::Null);
    assert_eq!(stages[4]["median_seconds"], Value::Null);

    let (status, _, all_jobs) = get(&http, &base, "/v1/integrations/greenhouse:acme/funnel").await;
    assert_eq!(status, StatusCode::OK, "{all_jobs}");
    assert_eq!(all_jobs["stages"][0]["stage_id"], Value::Null);
    assert_eq!(all_jobs["stages"][0]["entered"], 2);
    let (status, _, everything) = get(
        &http,
        &base,
        "/v1/funnel?since=2026-11-28T00:00:00Z&until=2026-11-29T00:00:00%2B01:00",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{everything}");
    assert_eq!(everything["applications"]["total"], 2);
    let (_, _, before) = get(&http, &base, "/v1/funnel?until=2026-11-28T10:00:00Z").await;
    assert_eq!(before["applications"]["total"], 0, "until is exclusive");

    for (path, status, problem) in [
        (
            "/v1/integrations/greenhouse:acme/jobs/nope/funnel",
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            "/v1/integrations/greenhouse:other/jobs/backend/funnel",
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            "/v1/integrations/greenhouse:other/funnel",
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            "/v1/funnel?since=yesterday",
            StatusCode::BAD_REQUEST,
            "validation",
        ),
        (
            "/v1/integrations/greenhouse:acme/funnel?until=2026-13-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "validation",
        ),
    ] {
        let (actual, content_type, body) = get(&http, &base, path).await;
        assert_eq!(actual, status, "{path}: {body}");
        assert_eq!(content_type, "application/problem+json", "{path}");
        assert_eq!(
            body["type"],
            format!("https://stagewatch.dev/problems/{problem}"),
            "{path}: {body}"
        );
    }
    // A window that ends before it starts is empty, not an error.
    let (status, _, reversed) = get(
        &http,
        &base,
        "/v1/integrations/greenhouse:acme/jobs/backend/funnel?since=2026-11-29T00:00:00Z&until=2026-11-28T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reversed}");
    assert_eq!(reversed["applications"]["total"], 0, "{reversed}");
    let (_, _, bad_since) = get(&http, &base, "/v1/funnel?since=yesterday").await;
    assert_eq!(bad_since["field"], "since");

    let unauthenticated = http.get(format!("{base}/v1/funnel")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    shutdown.cancel();
    let _ = server.await;
}
