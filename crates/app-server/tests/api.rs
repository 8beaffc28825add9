//! The HTTP API through real HTTP: every endpoint, good and bad input, against a running Kombo
//! sandbox and a store on SQLite (and, for the create path, PostgreSQL).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::Store;
use app_server::config::{Secret, Settings};
use app_server::http::{ApiParts, auth::hash_key};
use common::{TestDatabase, kombo_client};
use domain::ports::SystemClock;
use kombo_sandbox::{Endpoint, Fault, FaultRule, RunningSandbox, Sandbox, SandboxConfig, Trigger};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const API_KEY: &str = "test-key";
const KOMBO_SECRET: &str = "kombo-webhook-secret";
const GREENHOUSE: &str = "acme-greenhouse";
const PERSONIO: &str = "globex-personio";
const PROBLEM_JSON: &str = "application/problem+json";
/// Small, so that the oversize test needs no large body.
const BODY_LIMIT: usize = 8 * 1024;

/// What a test may change in the server's settings.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    allow_private_urls: bool,
}

/// The API serving a store, in front of a sandbox.
struct Api {
    base: String,
    http: reqwest::Client,
    sandbox: RunningSandbox,
    store: Store,
    database: Option<TestDatabase>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Api {
    async fn sqlite() -> Self {
        Self::start(TestDatabase::sqlite(), Options::default()).await
    }

    async fn start(database: TestDatabase, options: Options) -> Self {
        let sandbox = Sandbox::start(SandboxConfig::showcase(7, 2, 2).with_manual_clock())
            .await
            .expect("sandbox");
        let store = database.store().await;
        let mut settings = Settings::default();
        settings.api.key_hashes = vec![hash_key(API_KEY)];
        settings.api.body_limit_bytes = BODY_LIMIT;
        settings.api.max_feed_wait = Duration::from_secs(10);
        settings.kombo.webhook_secret = Secret::new(KOMBO_SECRET);
        settings.webhooks.allow_private_urls = options.allow_private_urls;
        let shutdown = CancellationToken::new();
        let (address, server) = app_server::http::start(
            &settings,
            ApiParts {
                store: store.clone(),
                ats: kombo_client(&sandbox.base_url(), sandbox.api_key()),
                clock: Arc::new(SystemClock),
                sync_waker: Arc::new(Notify::new()),
                metrics: None,
            },
            Some("127.0.0.1:0".parse().expect("address")),
            shutdown.clone(),
        )
        .await
        .expect("start the API");
        Self {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
            sandbox,
            store,
            database: Some(database),
            shutdown,
            server,
        }
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.sandbox.shutdown().await;
        drop(self.store);
        if let Some(database) = self.database.take() {
            database.drop_database().await;
        }
    }

    /// An unauthenticated request.
    fn open(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// A request with the API key.
    fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.open(method, path).bearer_auth(API_KEY)
    }

    async fn get(&self, path: &str) -> Value {
        ok_json(self.call(Method::GET, path).send().await.expect("GET")).await
    }

    async fn register(&self, id: &str) -> Response {
        self.call(Method::POST, "/v1/integrations")
            .json(&json!({ "id": id }))
            .send()
            .await
            .expect("register")
    }

    async fn create(&self, integration: &str, body: &Value) -> Response {
        self.call(
            Method::POST,
            &format!("/v1/integrations/{integration}/applications"),
        )
        .json(body)
        .send()
        .await
        .expect("create")
    }

    /// Every event of the feed, oldest first.
    async fn feed(&self) -> Vec<Value> {
        self.get("/v1/events?after=0&limit=1000").await["events"]
            .as_array()
            .expect("events")
            .clone()
    }

    async fn integration(&self, id: &str) -> Value {
        self.get(&format!("/v1/integrations/{id}")).await
    }

    /// The sandbox's jobs of `integration`, from the applications it serves.
    fn job_ids(&self, integration: &str) -> Vec<String> {
        let jobs: BTreeSet<String> = self
            .sandbox
            .handle()
            .current_applications(integration)
            .iter()
            .filter_map(|a| a["job_id"].as_str().map(str::to_owned))
            .collect();
        jobs.into_iter().collect()
    }

    /// Pushes the integration's next sync an hour ahead, as a finished pass would.
    async fn schedule_later(&self, id: &str) {
        let now = chrono::Utc::now();
        let claimed = self
            .store
            .claim_due("api-test", 10, Duration::from_secs(30), now)
            .await
            .expect("claim");
        assert!(claimed.iter().any(|record| record.id.as_str() == id));
        for record in claimed {
            self.store
                .release_lease(&record, now + chrono::Duration::hours(1), None)
                .await
                .expect("release");
        }
    }

    async fn kombo_webhook(&self, body: &Value, signature: Option<&str>) -> Response {
        let raw = serde_json::to_vec(body).expect("JSON");
        let mut request = self
            .open(Method::POST, "/v1/kombo/webhooks")
            .header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("X-Kombo-Signature", signature);
        }
        request.body(raw).send().await.expect("webhook")
    }

    async fn signed_kombo_webhook(&self, body: &Value) -> Response {
        let raw = serde_json::to_vec(body).expect("JSON");
        let signature = adapters_kombo::webhook::sign(KOMBO_SECRET.as_bytes(), &raw);
        self.open(Method::POST, "/v1/kombo/webhooks")
            .header("content-type", "application/json")
            .header("X-Kombo-Signature", signature)
            .body(raw)
            .send()
            .await
            .expect("webhook")
    }
}

fn application_body(job_id: &str, email: &str) -> Value {
    json!({
        "job_id": job_id,
        "candidate": { "first_name": "Jane", "last_name": "Doe", "email_address": email },
    })
}

async fn ok_json(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "status {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a problem body of `status` and `type` ending in `slug`; returns the body.
async fn expect_problem(response: Response, status: StatusCode, slug: &str) -> Value {
    let actual = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "{text}");
    assert_eq!(content_type, PROBLEM_JSON, "{text}");
    let body: Value = serde_json::from_str(&text).expect("problem JSON");
    let kind = body["type"].as_str().expect("type");
    assert_eq!(
        kind,
        format!("https://stagewatch.dev/problems/{slug}"),
        "{text}"
    );
    assert_eq!(body["status"], status.as_u16(), "{text}");
    assert!(
        !body["detail"].as_str().expect("detail").is_empty(),
        "{text}"
    );
    body
}

/// Asserts a validation problem naming `field`.
async fn expect_invalid(response: Response, field: &str) -> Value {
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert_eq!(body["field"], field, "{body}");
    body
}

fn ids(values: &[Value], key: &str) -> Vec<String> {
    values
        .iter()
        .map(|v| v[key].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn the_api_needs_a_key_except_on_open_routes() {
    let api = Api::sqlite().await;
    for (method, path) in [
        (Method::GET, "/v1/integrations"),
        (Method::GET, "/v1/events"),
        (Method::GET, "/v1/applications"),
        (Method::GET, "/v1/webhook-endpoints"),
        (Method::POST, "/v1/integrations"),
    ] {
        let missing = api.open(method.clone(), path).send().await.unwrap();
        expect_problem(missing, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let wrong = api
            .open(method.clone(), path)
            .bearer_auth("not-the-key")
            .send()
            .await
            .unwrap();
        expect_problem(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // A refused registration wrote nothing.
    let refused = api
        .open(Method::POST, "/v1/integrations")
        .bearer_auth("not-the-key")
        .json(&json!({ "id": GREENHOUSE }))
        .send()
        .await
        .unwrap();
    expect_problem(refused, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(api.get("/v1/integrations").await["integrations"], json!([]));

    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = api.open(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let openapi = ok_json(api.open(Method::GET, "/openapi.json").send().await.unwrap()).await;
    assert!(openapi["paths"]["/v1/events"].is_object());
    assert!(openapi["paths"]["/v1/webhook-endpoints/{endpoint_id}/replay"].is_object());

    let unknown = api
        .call(Method::GET, "/v1/nothing-here")
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND, "not-found").await;
    api.stop().await;
}

#[tokio::test]
async fn integrations_register_list_get_sync_pause_and_resume() {
    let api = Api::sqlite().await;
    let created = expect_json(api.register(GREENHOUSE).await, StatusCode::CREATED).await;
    assert_eq!(created["id"], GREENHOUSE);
    assert_eq!(created["paused"], false);
    let again = expect_json(api.register(GREENHOUSE).await, StatusCode::OK).await;
    assert_eq!(again["id"], GREENHOUSE);
    assert_eq!(again["created_at"], created["created_at"]);
    let labelled = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": PERSONIO, "label": "Globex", "poll_interval_seconds": 60.0 }))
        .send()
        .await
        .unwrap();
    let labelled = expect_json(labelled, StatusCode::CREATED).await;
    assert_eq!(labelled["label"], "Globex");
    assert_eq!(labelled["poll_interval_seconds"], 60);

    let list = api.get("/v1/integrations").await;
    let mut listed = ids(list["integrations"].as_array().unwrap(), "id");
    listed.sort();
    assert_eq!(listed, vec![GREENHOUSE.to_owned(), PERSONIO.to_owned()]);
    assert_eq!(api.integration(GREENHOUSE).await["id"], GREENHOUSE);

    let sync = api
        .call(Method::POST, &format!("/v1/integrations/{GREENHOUSE}/sync"))
        .send()
        .await
        .unwrap();
    let sync = expect_json(sync, StatusCode::ACCEPTED).await;
    assert!(sync["message"].as_str().unwrap().contains(GREENHOUSE));

    let paused = api
        .call(
            Method::POST,
            &format!("/v1/integrations/{GREENHOUSE}/pause"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(paused, StatusCode::OK).await["paused"], true);
    assert_eq!(api.integration(GREENHOUSE).await["paused"], true);
    let resumed = api
        .call(
            Method::POST,
            &format!("/v1/integrations/{GREENHOUSE}/resume"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(resumed, StatusCode::OK).await["paused"], false);

    for (method, path) in [
        (Method::GET, "/v1/integrations/unknown-integration"),
        (Method::POST, "/v1/integrations/unknown-integration/sync"),
        (Method::POST, "/v1/integrations/unknown-integration/pause"),
        (Method::POST, "/v1/integrations/unknown-integration/resume"),
        (Method::GET, "/v1/integrations/unknown-integration/jobs"),
    ] {
        let response = api.call(method, path).send().await.unwrap();
        expect_problem(response, StatusCode::NOT_FOUND, "not-found").await;
    }

    // Bad registrations name the field and register nothing.
    let short = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": "initech-workday", "poll_interval_seconds": 5 }))
        .send()
        .await
        .unwrap();
    expect_invalid(short, "poll_interval_seconds").await;
    let long = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": "initech-workday", "poll_interval_seconds": 86_401 }))
        .send()
        .await
        .unwrap();
    expect_invalid(long, "poll_interval_seconds").await;
    let fraction = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": "initech-workday", "poll_interval_seconds": 60.5 }))
        .send()
        .await
        .unwrap();
    expect_invalid(fraction, "poll_interval_seconds").await;
    let not_ascii = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": "greenhouse:Zürich" }))
        .send()
        .await
        .unwrap();
    expect_invalid(not_ascii, "id").await;
    let unknown_field = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": "initech-workday", "colour": "blue" }))
        .send()
        .await
        .unwrap();
    expect_problem(
        unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let missing = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "label": "no id" }))
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let bad_id = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": "" }))
        .send()
        .await
        .unwrap();
    expect_invalid(bad_id, "id").await;
    let list = api.get("/v1/integrations").await;
    assert_eq!(list["integrations"].as_array().unwrap().len(), 2);
    api.stop().await;
}

/// Creates, replays by `Idempotency-Key` and refuses a reused key; on either backend.
async fn create_is_tracked_and_idempotent(api: &Api) {
    api.register(GREENHOUSE).await;
    let job = api.job_ids(GREENHOUSE)[0].clone();
    let body = application_body(&job, "jane.doe@example.com");
    let first = create_with_key(api, "order-4711", &body).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, StatusCode::CREATED).await;
    let id = first["id"].as_str().expect("application id").to_owned();
    assert_eq!(first["integration_id"], GREENHOUSE);
    assert_eq!(first["job_id"], job);
    assert_eq!(first["event"]["type"], "application.created");
    let feed = api.feed().await;
    let created: Vec<&Value> = feed
        .iter()
        .filter(|e| e["type"] == "application.created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["id"], first["event"]["id"]);

    let replay = create_with_key(api, "order-4711", &body).await;
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replay = expect_json(replay, StatusCode::CREATED).await;
    assert_eq!(replay["id"], id.as_str());
    assert_eq!(
        api.sandbox
            .handle()
            .request_count(Endpoint::CreateApplication),
        1
    );

    let other = create_with_key(
        api,
        "order-4711",
        &application_body(&job, "john.roe@example.com"),
    )
    .await;
    let problem = expect_problem(
        other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    )
    .await;
    assert_eq!(problem["field"], "Idempotency-Key");
    assert_eq!(
        api.sandbox
            .handle()
            .request_count(Endpoint::CreateApplication),
        1
    );
    assert_eq!(api.feed().await.len(), feed.len());
}

#[tokio::test]
async fn create_is_tracked_and_idempotent_on_sqlite() {
    let api = Api::sqlite().await;
    create_is_tracked_and_idempotent(&api).await;
    api.stop().await;
}

#[tokio::test]
async fn create_is_tracked_and_idempotent_on_postgres() {
    let api = Api::start(TestDatabase::postgres().await, Options::default()).await;
    create_is_tracked_and_idempotent(&api).await;
    api.stop().await;
}

/// A create sent with `key` through the API.
async fn create_with_key(api: &Api, key: &str, body: &Value) -> Response {
    api.call(
        Method::POST,
        &format!("/v1/integrations/{GREENHOUSE}/applications"),
    )
    .header("Idempotency-Key", key)
    .json(body)
    .send()
    .await
    .expect("create")
}

/// Makes the SQLite database refuse every insert into `table` (a failed write, a pool
/// timeout…) until [`accept_inserts`].
async fn refuse_inserts(api: &Api, table: &str) {
    api.store
        .connection()
        .execute_unprepared(&format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'the database refused the write'); END"
        ))
        .await
        .expect("trigger");
}

async fn accept_inserts(api: &Api, table: &str) {
    api.store
        .connection()
        .execute_unprepared(&format!("DROP TRIGGER refuse_{table}"))
        .await
        .expect("drop the trigger");
}

/// Makes the sandbox fail the next create the way `fault` says.
fn fail_next_create(api: &Api, fault: Fault) {
    api.sandbox
        .handle()
        .add_fault(FaultRule::new(fault, Trigger::Next(1)).on(&[Endpoint::CreateApplication]));
}

#[tokio::test]
async fn a_create_whose_outcome_is_unknown_is_never_sent_twice() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let job = api.job_ids(GREENHOUSE)[0].clone();
    let held_before = api.sandbox.handle().current_applications(GREENHOUSE).len();
    let creates = || {
        api.sandbox
            .handle()
            .request_count(Endpoint::CreateApplication)
    };

    // Kombo created the application, but its answer broke off: the ATS holds it.
    let lost = application_body(&job, "lost.answer@example.com");
    fail_next_create(&api, Fault::TruncatedBody);
    let first = create_with_key(&api, "order-lost", &lost).await;
    expect_problem(first, StatusCode::BAD_GATEWAY, "kombo-outcome-unknown").await;
    assert_eq!(
        api.sandbox.handle().current_applications(GREENHOUSE).len(),
        held_before + 1,
        "the sandbox created it"
    );
    let retry = create_with_key(&api, "order-lost", &lost).await;
    let problem = expect_problem(retry, StatusCode::CONFLICT, "idempotency-outcome-unknown").await;
    assert_eq!(problem["field"], "Idempotency-Key");
    assert_eq!(creates(), 1, "a retry with the key is not sent to Kombo");

    // A 5xx may come after the ATS acted: just as unknown.
    let failed = application_body(&job, "server.error@example.com");
    fail_next_create(&api, Fault::Status(503));
    let first = create_with_key(&api, "order-503", &failed).await;
    expect_problem(first, StatusCode::BAD_GATEWAY, "kombo-outcome-unknown").await;
    let retry = create_with_key(&api, "order-503", &failed).await;
    expect_problem(retry, StatusCode::CONFLICT, "idempotency-outcome-unknown").await;
    assert_eq!(creates(), 2);

    // A rate limit proves nothing was created: the key is free, and the retry creates.
    let limited = application_body(&job, "rate.limited@example.com");
    fail_next_create(
        &api,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let first = create_with_key(&api, "order-429", &limited).await;
    expect_problem(first, StatusCode::TOO_MANY_REQUESTS, "kombo-rate-limited").await;
    let retry = create_with_key(&api, "order-429", &limited).await;
    expect_json(retry, StatusCode::CREATED).await;
    assert_eq!(creates(), 4);
    let created = api
        .feed()
        .await
        .iter()
        .filter(|event| event["type"] == "application.created")
        .count();
    assert_eq!(created, 1, "only the create Kombo answered is announced");
    api.stop().await;
}

#[tokio::test]
async fn a_create_that_could_not_be_stored_answers_with_the_application() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let job = api.job_ids(GREENHOUSE)[0].clone();
    refuse_inserts(&api, "applications").await;
    let body = application_body(&job, "unstored@example.com");
    let first = create_with_key(&api, "order-unstored", &body).await;
    let first = expect_json(first, StatusCode::CREATED).await;
    assert!(first["id"].is_string(), "{first}");
    assert!(first["event"].is_null(), "nothing was recorded: {first}");

    // The retry answers with the same application; Kombo is not asked again.
    let replay = create_with_key(&api, "order-unstored", &body).await;
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let replay = expect_json(replay, StatusCode::CREATED).await;
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(
        api.sandbox
            .handle()
            .request_count(Endpoint::CreateApplication),
        1
    );
    api.stop().await;
}

#[tokio::test]
async fn create_refuses_bad_input_and_writes_nothing() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let job = api.job_ids(GREENHOUSE)[0].clone();
    let feed_before = api.feed().await;
    let path = format!("/v1/integrations/{GREENHOUSE}/applications");

    let bad_email = api
        .create(GREENHOUSE, &application_body(&job, "jane@"))
        .await;
    expect_invalid(bad_email, "candidate.email_address").await;
    let wrong_type = api
        .create(
            GREENHOUSE,
            &json!({ "job_id": 42, "candidate": {
            "first_name": "Jane", "last_name": "Doe", "email_address": "jane@example.com" } }),
        )
        .await;
    expect_invalid(wrong_type, "job_id").await;
    let unknown_field = api
        .create(
            GREENHOUSE,
            &json!({ "job_id": job, "candidate": {
            "first_name": "Jane", "last_name": "Doe", "email_address": "jane@example.com",
            "shoe_size": 42 } }),
        )
        .await;
    let problem = expect_problem(
        unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert!(
        problem["field"].as_str().unwrap().starts_with("candidate"),
        "{problem}"
    );
    let missing = api
        .create(
            GREENHOUSE,
            &json!({ "job_id": job, "candidate": {
            "first_name": "Jane", "last_name": "Doe" } }),
        )
        .await;
    let problem = expect_problem(missing, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("email_address"),
        "{problem}"
    );
    let empty_name = api
        .create(
            GREENHOUSE,
            &json!({ "job_id": job, "candidate": {
            "first_name": " ", "last_name": "Doe", "email_address": "jane@example.com" } }),
        )
        .await;
    expect_invalid(empty_name, "candidate.first_name").await;

    let malformed = api
        .call(Method::POST, &path)
        .header("content-type", "application/json")
        .body("{\"job_id\": ")
        .send()
        .await
        .unwrap();
    expect_problem(malformed, StatusCode::BAD_REQUEST, "malformed-request").await;
    let not_json = api
        .call(Method::POST, &path)
        .header("content-type", "text/plain")
        .body(application_body(&job, "jane@example.com").to_string())
        .send()
        .await
        .unwrap();
    expect_problem(
        not_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let blank_key = api
        .call(Method::POST, &path)
        .header("Idempotency-Key", " ")
        .json(&application_body(&job, "jane@example.com"))
        .send()
        .await
        .unwrap();
    expect_invalid(blank_key, "Idempotency-Key").await;

    let unknown_integration = api
        .create(
            "unknown-integration",
            &application_body(&job, "jane@example.com"),
        )
        .await;
    expect_problem(unknown_integration, StatusCode::NOT_FOUND, "not-found").await;
    let unknown_job = api
        .create(
            GREENHOUSE,
            &application_body("no-such-job", "jane@example.com"),
        )
        .await;
    let status = unknown_job.status();
    assert!(status.is_client_error(), "{status}");
    let content_type = unknown_job.headers()["content-type"].clone();
    assert_eq!(content_type, PROBLEM_JSON);
    let problem: Value = unknown_job.json().await.unwrap();
    assert!(problem["type"].is_string() && problem["detail"].is_string());

    assert_eq!(api.feed().await, feed_before);
    assert_eq!(api.get("/v1/applications").await["applications"], json!([]));
    // Only the unknown job reached Kombo.
    assert_eq!(
        api.sandbox
            .handle()
            .request_count(Endpoint::CreateApplication),
        1
    );
    api.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_a_problem() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let job = api.job_ids(GREENHOUSE)[0].clone();
    let feed_before = api.feed().await;
    let padding = "x".repeat(BODY_LIMIT * 2);
    let mut huge = application_body(&job, "jane@example.com");
    huge["extra"] = json!({ "cover_letter": padding });
    let oversize = api.create(GREENHOUSE, &huge).await;
    expect_problem(oversize, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large").await;
    let endpoint = api
        .call(Method::POST, "/v1/webhook-endpoints")
        .json(&json!({ "url": "https://hooks.example.com/a", "description": padding }))
        .send()
        .await
        .unwrap();
    expect_problem(endpoint, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large").await;
    assert_eq!(api.feed().await, feed_before);
    assert_eq!(
        api.get("/v1/webhook-endpoints").await["endpoints"],
        json!([])
    );
    assert_eq!(
        api.sandbox
            .handle()
            .request_count(Endpoint::CreateApplication),
        0
    );
    api.stop().await;
}

#[tokio::test]
async fn import_tracks_an_existing_application() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let untracked = api.sandbox.handle().untracked_remote_ids(GREENHOUSE);
    assert!(untracked.len() >= 2, "{untracked:?}");
    let (remote_id, second_remote_id) = (untracked[0].clone(), untracked[1].clone());
    let path = format!("/v1/integrations/{GREENHOUSE}/applications/import");
    let imported = api
        .call(Method::POST, &path)
        .json(&json!({
            "tool": "greenhouse",
            "identifiers": { "id_type": "application_remote_id", "application_remote_id": remote_id },
            "tracked_at": "2026-01-05T10:00:00Z",
        }))
        .send()
        .await
        .unwrap();
    let imported = expect_json(imported, StatusCode::ACCEPTED).await;
    assert!(!imported["id"].as_str().unwrap().is_empty());
    assert_eq!(api.sandbox.handle().request_count(Endpoint::Import), 1);
    // Without `tracked_at`, the application counts as tracked from now.
    let now_tracked = api
        .call(Method::POST, &path)
        .json(&json!({
            "tool": "greenhouse",
            "identifiers": { "id_type": "application_remote_id", "application_remote_id": second_remote_id },
        }))
        .send()
        .await
        .unwrap();
    expect_json(now_tracked, StatusCode::ACCEPTED).await;
    assert_eq!(api.sandbox.handle().request_count(Endpoint::Import), 2);
    assert!(
        !api.sandbox
            .handle()
            .untracked_remote_ids(GREENHOUSE)
            .contains(&remote_id)
    );

    let empty_tool = api
        .call(Method::POST, &path)
        .json(&json!({ "tool": "", "identifiers": {} }))
        .send()
        .await
        .unwrap();
    expect_invalid(empty_tool, "tool").await;
    let unknown = api
        .call(
            Method::POST,
            "/v1/integrations/unknown-integration/applications/import",
        )
        .json(&json!({ "tool": "greenhouse", "identifiers": {} }))
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND, "not-found").await;
    assert_eq!(api.sandbox.handle().request_count(Endpoint::Import), 2);
    api.stop().await;
}

/// Creates `count` applications spread over the integration's jobs; returns (id, job) pairs.
async fn create_several(api: &Api, count: usize) -> Vec<(String, String)> {
    let jobs = api.job_ids(GREENHOUSE);
    let mut created = Vec::new();
    for n in 0..count {
        let job = &jobs[n % jobs.len()];
        let body = application_body(job, &format!("candidate{n}@example.com"));
        let answer = expect_json(api.create(GREENHOUSE, &body).await, StatusCode::CREATED).await;
        created.push((answer["id"].as_str().unwrap().to_owned(), job.clone()));
    }
    created
}

#[tokio::test]
async fn applications_list_pages_filters_and_details() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    api.register(PERSONIO).await;
    let created = create_several(&api, 5).await;
    let all: BTreeSet<String> = created.iter().map(|(id, _)| id.clone()).collect();

    // Pages of two: every application exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/applications?limit=2&cursor={c}"),
            None => "/v1/applications?limit=2".to_owned(),
        };
        let page = api.get(&path).await;
        let apps = page["applications"].as_array().unwrap();
        assert!(apps.len() <= 2);
        seen.extend(ids(apps, "id"));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), all.len(), "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);

    let job = &created[0].1;
    let in_job: BTreeSet<String> = created
        .iter()
        .filter(|(_, j)| j == job)
        .map(|(id, _)| id.clone())
        .collect();
    let by_job = api
        .get(&format!(
            "/v1/applications?integration={GREENHOUSE}&job={job}"
        ))
        .await;
    let by_job: BTreeSet<String> = ids(by_job["applications"].as_array().unwrap(), "id")
        .into_iter()
        .collect();
    assert_eq!(by_job, in_job);
    let other_integration = api
        .get(&format!("/v1/applications?integration={PERSONIO}"))
        .await;
    assert_eq!(other_integration["applications"], json!([]));

    let detail = api
        .get(&format!(
            "/v1/integrations/{GREENHOUSE}/applications/{}",
            created[0].0
        ))
        .await;
    assert_eq!(detail["id"], created[0].0.as_str(), "{detail}");
    assert_eq!(detail["job_id"], job.as_str());
    let stage = detail["current_stage"]["stage_id"]
        .as_str()
        .expect("current stage")
        .to_owned();
    let timeline = detail["timeline"].as_array().expect("timeline");
    assert_eq!(
        timeline.last().expect("a visit")["stage"]["stage_id"],
        stage.as_str()
    );

    let by_stage = api.get(&format!("/v1/applications?stage={stage}")).await;
    let by_stage = by_stage["applications"].as_array().unwrap();
    assert!(ids(by_stage, "id").contains(&created[0].0));
    assert!(
        by_stage
            .iter()
            .all(|a| a["current_stage"]["stage_id"] == stage.as_str())
    );
    let outcome = api.get("/v1/applications?outcome=HIRED").await;
    assert!(
        outcome["applications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome"] == "HIRED")
    );
    let future = api
        .get("/v1/applications?changed_since=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(future["applications"], json!([]));

    // Jobs count the tracked applications per stage.
    let jobs = api
        .get(&format!("/v1/integrations/{GREENHOUSE}/jobs"))
        .await;
    let listed = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == job.as_str())
        .expect("the job")
        .clone();
    assert_eq!(listed["tracked_applications"], in_job.len());
    let per_stage: u64 = listed["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tracked_applications"].as_u64().unwrap())
        .sum();
    assert_eq!(per_stage, in_job.len() as u64);
    let current = listed["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage_id"] == stage.as_str())
        .expect("the current stage");
    assert!(current["tracked_applications"].as_u64().unwrap() >= 1);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("outcome=MAYBE", "outcome"),
        ("cursor=not-a-cursor", "cursor"),
        ("changed_since=yesterday", "changed_since"),
        ("colour=blue", "colour"),
    ] {
        let response = api
            .call(Method::GET, &format!("/v1/applications?{query}"))
            .send()
            .await
            .unwrap();
        expect_invalid(response, field).await;
    }
    let unknown = api
        .call(
            Method::GET,
            &format!("/v1/integrations/{GREENHOUSE}/applications/no-such-application"),
        )
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND, "not-found").await;
    api.stop().await;
}

#[tokio::test]
async fn the_event_feed_filters_pages_and_long_polls() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    api.register(PERSONIO).await;
    let created = create_several(&api, 3).await;

    let feed = api.feed().await;
    assert_eq!(feed.len(), 3);
    let sequences: Vec<i64> = feed
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "{sequences:?}"
    );

    let first = api.get("/v1/events?limit=1").await;
    assert_eq!(first["events"].as_array().unwrap().len(), 1);
    assert_eq!(first["next_after"], sequences[0]);
    let rest = api
        .get(&format!("/v1/events?after={}&limit=10", sequences[0]))
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next_after"], sequences[2]);
    let nothing_new = api.get(&format!("/v1/events?after={}", sequences[2])).await;
    assert_eq!(nothing_new["events"], json!([]));
    assert_eq!(nothing_new["next_after"], sequences[2]);

    let typed = api
        .get("/v1/events?types=application.created,application.hired")
        .await;
    assert_eq!(typed["events"].as_array().unwrap().len(), 3);
    let hired = api.get("/v1/events?types=application.hired").await;
    assert_eq!(hired["events"], json!([]));
    let greenhouse = api
        .get(&format!("/v1/events?integration={GREENHOUSE}"))
        .await;
    assert_eq!(greenhouse["events"].as_array().unwrap().len(), 3);
    let personio = api.get(&format!("/v1/events?integration={PERSONIO}")).await;
    assert_eq!(personio["events"], json!([]));
    assert!(
        feed.iter()
            .zip(&created)
            .all(|(event, (id, _))| event["application"]["id"] == id.as_str()),
        "{feed:?}"
    );

    for (query, field) in [
        ("types=application.exploded", "types"),
        ("types=application.hired,", "types"),
        ("types=application.hired,%20application.declined", "types"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=-1", "after"),
        ("after=soon", "after"),
        ("wait=3601", "wait"),
    ] {
        let response = api
            .call(Method::GET, &format!("/v1/events?{query}"))
            .send()
            .await
            .unwrap();
        expect_invalid(response, field).await;
    }

    // A waiting read answers with the event appended while it waits.
    let head = sequences[2];
    let waiting = api
        .call(Method::GET, &format!("/v1/events?after={head}&wait=10"))
        .send();
    let job = api.job_ids(GREENHOUSE)[0].clone();
    let append = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        expect_json(
            api.create(GREENHOUSE, &application_body(&job, "late@example.com"))
                .await,
            StatusCode::CREATED,
        )
        .await
    };
    let (waited, appended) = tokio::join!(waiting, append);
    let waited = ok_json(waited.unwrap()).await;
    let events = waited["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{waited}");
    assert_eq!(events[0]["id"], appended["event"]["id"]);
    assert_eq!(waited["next_after"], head + 1);
    api.stop().await;
}

#[tokio::test]
async fn webhook_endpoints_lifecycle() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let created_apps = create_several(&api, 2).await;
    assert_eq!(created_apps.len(), 2);

    let private = api
        .call(Method::POST, "/v1/webhook-endpoints")
        .json(&json!({ "url": "http://127.0.0.1:9000/hooks" }))
        .send()
        .await
        .unwrap();
    expect_invalid(private, "url").await;
    let not_a_url = api
        .call(Method::POST, "/v1/webhook-endpoints")
        .json(&json!({ "url": "hooks please" }))
        .send()
        .await
        .unwrap();
    expect_invalid(not_a_url, "url").await;
    let bad_type = api
        .call(Method::POST, "/v1/webhook-endpoints")
        .json(&json!({ "url": "https://hooks.example.com/a", "event_types": ["nope"] }))
        .send()
        .await
        .unwrap();
    expect_invalid(bad_type, "event_types").await;
    assert_eq!(
        api.get("/v1/webhook-endpoints").await["endpoints"],
        json!([])
    );

    let created = api
        .call(Method::POST, "/v1/webhook-endpoints")
        .json(&json!({
            "url": "https://hooks.example.com/stagewatch",
            "description": "CRM",
            "event_types": ["application.created", "application.hired"],
        }))
        .send()
        .await
        .unwrap();
    let created = expect_json(created, StatusCode::CREATED).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(!secret.is_empty());
    assert_eq!(created["enabled"], true);
    let list = api.get("/v1/webhook-endpoints").await;
    assert_eq!(list["endpoints"].as_array().unwrap().len(), 1);
    assert!(list["endpoints"][0].get("secret").is_none());
    assert!(!list.to_string().contains(&secret));
    let path = format!("/v1/webhook-endpoints/{id}");
    let one = api.get(&path).await;
    assert_eq!(one["url"], "https://hooks.example.com/stagewatch");
    assert!(one.get("secret").is_none());

    let patched = api
        .call(Method::PATCH, &path)
        .json(&json!({ "description": "CRM sync", "event_types": ["application.hired"] }))
        .send()
        .await
        .unwrap();
    let patched = expect_json(patched, StatusCode::OK).await;
    assert_eq!(patched["description"], "CRM sync");
    assert_eq!(patched["event_types"], json!(["application.hired"]));
    let bad_patch = api
        .call(Method::PATCH, &path)
        .json(&json!({ "url": "http://10.0.0.1/hooks" }))
        .send()
        .await
        .unwrap();
    expect_invalid(bad_patch, "url").await;
    assert_eq!(
        api.get(&path).await["url"],
        "https://hooks.example.com/stagewatch"
    );
    let disabled = api
        .call(Method::PATCH, &path)
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(disabled, StatusCode::OK).await["enabled"],
        false
    );
    assert_eq!(api.get(&path).await["enabled"], false);
    let enabled = api
        .call(Method::PATCH, &path)
        .json(&json!({ "enabled": true, "event_types": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(enabled, StatusCode::OK).await["enabled"], true);

    let rotated = api
        .call(Method::POST, &format!("{path}/rotate-secret"))
        .send()
        .await
        .unwrap();
    let rotated = expect_json(rotated, StatusCode::OK).await;
    let new_secret = rotated["secret"].as_str().expect("new secret");
    assert!(!new_secret.is_empty());
    assert_ne!(new_secret, secret);

    let attempts = api.get(&format!("{path}/attempts")).await;
    let before_replay = attempts["deliveries"].as_array().unwrap().len();
    let feed = api.feed().await;
    let event_id = feed[0]["id"].as_str().unwrap().to_owned();
    let replayed = api
        .call(Method::POST, &format!("{path}/replay"))
        .json(&json!({ "event_id": event_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(replayed, StatusCode::ACCEPTED).await["queued"],
        1
    );
    let attempts = api.get(&format!("{path}/attempts")).await;
    let deliveries = attempts["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), before_replay + 1);
    assert!(
        deliveries
            .iter()
            .any(|d| d["event_id"] == event_id.as_str())
    );

    let range = api
        .call(Method::POST, &format!("{path}/replay"))
        .json(&json!({
            "from": feed[0]["detected_at"],
            "to": feed[feed.len() - 1]["detected_at"],
        }))
        .send()
        .await
        .unwrap();
    let queued = expect_json(range, StatusCode::ACCEPTED).await["queued"]
        .as_u64()
        .unwrap();
    assert_eq!(queued, feed.len() as u64);
    let neither = api
        .call(Method::POST, &format!("{path}/replay"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_invalid(neither, "event_id").await;
    let only_from = api
        .call(Method::POST, &format!("{path}/replay"))
        .json(&json!({ "from": feed[0]["detected_at"] }))
        .send()
        .await
        .unwrap();
    expect_problem(only_from, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let unknown_event = api
        .call(Method::POST, &format!("{path}/replay"))
        .json(&json!({ "event_id": "no-such-event" }))
        .send()
        .await
        .unwrap();
    expect_problem(unknown_event, StatusCode::NOT_FOUND, "not-found").await;
    let bad_limit = api
        .call(Method::GET, &format!("{path}/attempts?limit=0"))
        .send()
        .await
        .unwrap();
    expect_invalid(bad_limit, "limit").await;
    let delivery_count = api.get(&format!("{path}/attempts?limit=100")).await["deliveries"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(delivery_count, before_replay + 1 + feed.len());

    let deleted = api.call(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for (method, suffix, body) in [
        (Method::GET, "", json!({})),
        (Method::DELETE, "", json!({})),
        (Method::PATCH, "", json!({ "enabled": true })),
        (Method::POST, "/rotate-secret", json!({})),
        (Method::GET, "/attempts", json!({})),
        (Method::POST, "/replay", json!({ "event_id": event_id })),
    ] {
        let response = api
            .call(method, &format!("{path}{suffix}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::NOT_FOUND, "not-found").await;
    }
    assert_eq!(
        api.get("/v1/webhook-endpoints").await["endpoints"],
        json!([])
    );
    api.stop().await;
}

#[tokio::test]
async fn private_webhook_urls_are_accepted_when_allowed() {
    let api = Api::start(
        TestDatabase::sqlite(),
        Options {
            allow_private_urls: true,
        },
    )
    .await;
    let created = api
        .call(Method::POST, "/v1/webhook-endpoints")
        .json(&json!({ "url": "http://127.0.0.1:9000/hooks" }))
        .send()
        .await
        .unwrap();
    let created = expect_json(created, StatusCode::CREATED).await;
    assert_eq!(created["url"], "http://127.0.0.1:9000/hooks");
    api.stop().await;
}

fn data_changed(id: &str, integration: &str, model: &str) -> Value {
    json!({
        "id": id,
        "type": "data-changed",
        "data": {
            "integration_id": integration,
            "integration_tool": "greenhouse",
            "integration_category": "ATS",
            "changed_models": [{ "name": model }],
        }
    })
}

fn state_changed(id: &str, integration: &str, state: &str) -> Value {
    state_changed_at(id, integration, state, "2026-01-05T10:00:00.000Z")
}

/// `integration-state-changed`, stamped by Kombo at `updated_at`.
fn state_changed_at(id: &str, integration: &str, state: &str, updated_at: &str) -> Value {
    json!({
        "id": id,
        "type": "integration-state-changed",
        "data": {
            "integration_tool": "greenhouse",
            "integration_id": integration,
            "integration_category": "ATS",
            "end_user": {
                "organization_name": "acme",
                "creator_email": null,
                "origin_id": integration,
            },
            "qa_status": "PASSED",
            "setup_status": "COMPLETED",
            "state": state,
            "updated_at": updated_at,
        }
    })
}

fn next_sync_at(integration: &Value) -> chrono::DateTime<chrono::Utc> {
    integration["next_sync_at"]
        .as_str()
        .expect("next_sync_at")
        .parse()
        .expect("a time")
}

#[tokio::test]
async fn kombo_webhooks_are_verified_deduplicated_and_applied() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    api.schedule_later(GREENHOUSE).await;
    let later = next_sync_at(&api.integration(GREENHOUSE).await);
    assert!(later > chrono::Utc::now());

    let body = data_changed("whk-1", GREENHOUSE, "ats_applications");
    let unsigned = api.kombo_webhook(&body, None).await;
    expect_problem(unsigned, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let forged_signature =
        adapters_kombo::webhook::sign(b"not-the-secret", &serde_json::to_vec(&body).unwrap());
    let forged = api.kombo_webhook(&body, Some(&forged_signature)).await;
    expect_problem(forged, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let garbage = api.kombo_webhook(&body, Some("AAAA")).await;
    expect_problem(garbage, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(next_sync_at(&api.integration(GREENHOUSE).await), later);

    let before = chrono::Utc::now();
    let accepted = api.signed_kombo_webhook(&body).await;
    assert_eq!(accepted.status(), StatusCode::NO_CONTENT);
    let due = next_sync_at(&api.integration(GREENHOUSE).await);
    assert!(
        due >= before - chrono::Duration::seconds(1) && due <= chrono::Utc::now(),
        "{due}"
    );

    // The same webhook again is acknowledged and does nothing.
    api.schedule_later(GREENHOUSE).await;
    let later = next_sync_at(&api.integration(GREENHOUSE).await);
    let duplicate = api.signed_kombo_webhook(&body).await;
    assert_eq!(duplicate.status(), StatusCode::NO_CONTENT);
    assert_eq!(next_sync_at(&api.integration(GREENHOUSE).await), later);
    // A model the sync does not read changes nothing either.
    let unrelated = api
        .signed_kombo_webhook(&data_changed("whk-2", GREENHOUSE, "hris_employees"))
        .await;
    assert_eq!(unrelated.status(), StatusCode::NO_CONTENT);
    assert_eq!(next_sync_at(&api.integration(GREENHOUSE).await), later);

    let signed_garbage = api.signed_kombo_webhook(&json!({ "hello": "world" })).await;
    expect_problem(signed_garbage, StatusCode::BAD_REQUEST, "malformed-request").await;

    let feed_before = api.feed().await;
    let inactive = api
        .signed_kombo_webhook(&state_changed("whk-3", GREENHOUSE, "INACTIVE"))
        .await;
    assert_eq!(inactive.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.integration(GREENHOUSE).await["status"], "INACTIVE");
    let feed = api.feed().await;
    assert_eq!(feed.len(), feed_before.len() + 1);
    let event = feed.last().unwrap();
    assert_eq!(event["type"], "integration.status_changed");
    assert_eq!(
        event["integration"]["id"]
            .as_str()
            .or(event["integration"].as_str()),
        Some(GREENHOUSE),
        "{event}"
    );
    // Seen before: no second event.
    let again = api
        .signed_kombo_webhook(&state_changed("whk-3", GREENHOUSE, "INACTIVE"))
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.feed().await.len(), feed.len());
    // An integration stagewatch does not track is ignored.
    let untracked = api
        .signed_kombo_webhook(&state_changed("whk-4", "initech-workday", "INVALID"))
        .await;
    assert_eq!(untracked.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.feed().await.len(), feed.len());
    assert_eq!(
        api.get("/v1/integrations").await["integrations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    api.stop().await;
}

#[tokio::test]
async fn a_kombo_webhook_whose_handling_failed_is_handled_on_redelivery() {
    let api = Api::sqlite().await;
    refuse_inserts(&api, "integrations").await;
    let created = json!({
        "id": "whk-created-1",
        "type": "integration-created",
        "data": {
            "id": "newco-greenhouse",
            "tool": "greenhouse",
            "category": "ATS",
            "end_user": {"organization_name": "Newco", "creator_email": null, "origin_id": "n1"},
        }
    });
    let failed = api.signed_kombo_webhook(&created).await;
    assert!(
        failed.status().is_server_error(),
        "a failed handling is an error, so that Kombo redelivers: {}",
        failed.status()
    );
    accept_inserts(&api, "integrations").await;

    // Kombo's redelivery, with the same webhook id, is handled this time.
    let redelivered = api.signed_kombo_webhook(&created).await;
    assert_eq!(redelivered.status(), StatusCode::NO_CONTENT);
    let integration = api.integration("newco-greenhouse").await;
    assert_eq!(integration["status"], "ACTIVE", "{integration}");
    // Once handled, a further redelivery is a duplicate.
    let feed = api.feed().await.len();
    let again = api.signed_kombo_webhook(&created).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.feed().await.len(), feed);
    api.stop().await;
}

#[tokio::test]
async fn an_integration_state_older_than_the_one_applied_is_dropped() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let invalid = api
        .signed_kombo_webhook(&state_changed_at(
            "whk-10h",
            GREENHOUSE,
            "INVALID",
            "2026-01-05T10:00:00.000Z",
        ))
        .await;
    assert_eq!(invalid.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.integration(GREENHOUSE).await["status"], "INVALID");
    let feed = api.feed().await.len();

    // Kombo's earlier ACTIVE arrives late (a retry): it must not win.
    let late = api
        .signed_kombo_webhook(&state_changed_at(
            "whk-9h",
            GREENHOUSE,
            "ACTIVE",
            "2026-01-05T09:00:00.000Z",
        ))
        .await;
    assert_eq!(late.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.integration(GREENHOUSE).await["status"], "INVALID");
    assert_eq!(api.feed().await.len(), feed, "no status_changed for it");

    // A newer state applies.
    let newer = api
        .signed_kombo_webhook(&state_changed_at(
            "whk-11h",
            GREENHOUSE,
            "ACTIVE",
            "2026-01-05T11:00:00.000Z",
        ))
        .await;
    assert_eq!(newer.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.integration(GREENHOUSE).await["status"], "ACTIVE");
    assert_eq!(api.feed().await.len(), feed + 1);
    api.stop().await;
}

/// An application of `integration`, deleted in the ATS at `deleted_at`.
fn deleted_application(
    integration: &domain::IntegrationId,
    id: &str,
    deleted_at: chrono::DateTime<chrono::Utc>,
) -> domain::TrackedApplication {
    domain::TrackedApplication {
        integration_id: integration.clone(),
        id: domain::ApplicationId::parse(id).unwrap(),
        remote_id: None,
        job_id: None,
        job_name: None,
        candidate_id: None,
        candidate_name: None,
        current_stage: None,
        stage_unknown_since: None,
        outcome: None,
        outcome_unknown_since: None,
        rejection_reason_name: None,
        rejected_at: None,
        changed_at: deleted_at,
        deleted_at: Some(deleted_at),
        remote_created_at: None,
        origin: domain::Origin::Discovered,
        first_seen_at: deleted_at,
        last_seen_at: deleted_at,
        entered_current_stage_at: None,
    }
}

#[tokio::test]
async fn an_operator_confirms_held_deletions_through_the_api() {
    use domain::ports::{HeldChange, PageChanges, TrackerStore};

    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let integration = domain::IntegrationId::parse(GREENHOUSE).unwrap();
    let now = chrono::Utc::now();
    let held: Vec<HeldChange> = ["gone-1", "gone-2"]
        .iter()
        .map(|id| {
            let state = deleted_application(&integration, id, now);
            let event = domain::ChangeEvent::for_application(
                &state,
                domain::EventKind::Deleted(domain::event::Deleted {
                    remote_deleted_at: now,
                }),
                now,
                now,
            );
            HeldChange {
                application: state,
                events: vec![event],
                stage_entry: None,
            }
        })
        .collect();
    api.store
        .apply_page(PageChanges {
            integration_id: integration.clone(),
            lease: None,
            applications: Vec::new(),
            events: Vec::new(),
            stage_entries: Vec::new(),
            held,
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
    let feed = api.feed().await.len();

    let confirmed = api
        .call(
            Method::POST,
            &format!("/v1/integrations/{GREENHOUSE}/deletions/confirm"),
        )
        .send()
        .await
        .unwrap();
    let confirmed = expect_json(confirmed, StatusCode::OK).await;
    assert_eq!(confirmed["released"], 2);
    let events = api.feed().await;
    assert_eq!(events.len(), feed + 2);
    assert!(
        events[feed..]
            .iter()
            .all(|e| e["type"] == "application.deleted")
    );
    assert_eq!(api.integration(GREENHOUSE).await["deletions_held"], false);

    // Nothing left: a second confirmation releases nothing.
    let again = api
        .call(
            Method::POST,
            &format!("/v1/integrations/{GREENHOUSE}/deletions/confirm"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(again, StatusCode::OK).await["released"], 0);
    let unknown = api
        .call(
            Method::POST,
            "/v1/integrations/nobody-greenhouse/deletions/confirm",
        )
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND, "not-found").await;
    api.stop().await;
}

#[tokio::test]
async fn a_cursor_before_the_oldest_kept_event_is_gone() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    for n in 0..3 {
        let state = api
            .signed_kombo_webhook(&state_changed_at(
                &format!("whk-{n}"),
                GREENHOUSE,
                if n % 2 == 0 { "INVALID" } else { "ACTIVE" },
                &format!("2026-01-05T1{n}:00:00.000Z"),
            ))
            .await;
        assert_eq!(state.status(), StatusCode::NO_CONTENT);
    }
    let feed = api.feed().await;
    assert_eq!(feed.len(), 3);

    // Retention removes everything detected before now: all three events.
    let removed = api
        .store
        .prune_feed(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let gone = api
        .call(Method::GET, "/v1/events?after=1")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(gone, StatusCode::GONE, "feed-pruned").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("after=3"),
        "{problem}"
    );
    // From the oldest kept event on, the feed reads as usual.
    let on = api.get("/v1/events?after=3").await;
    assert_eq!(on["events"].as_array().unwrap().len(), 0);
    assert_eq!(on["next_after"], 3);
    let from_start = api.get("/v1/events").await;
    assert_eq!(from_start["events"].as_array().unwrap().len(), 0);
    api.stop().await;
}

/// The test binary's metrics, rendered as Prometheus text (one recorder per process).
fn refused_count(reason: &str) -> u64 {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    let wanted = format!("stagewatch_http_refused_total{{reason=\"{reason}\"}} ");
    HANDLE
        .get_or_init(app_server::telemetry::init_metrics)
        .render()
        .lines()
        .find_map(|line| {
            line.strip_prefix(&wanted)
                .map(|n| n.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn refusals_are_answered_with_problems_and_counted() {
    let _ = refused_count("");
    let api = Api::sqlite().await;
    let before = |reasons: &[&str]| {
        reasons
            .iter()
            .map(|r| ((*r).to_owned(), refused_count(r)))
            .collect::<Vec<_>>()
    };
    let reasons = [
        "api_key_missing",
        "api_key_wrong",
        "kombo_signature_forged",
        "kombo_signature_missing",
        "private_webhook_url",
        "body_too_large",
        "json_too_deep",
    ];
    let counts = before(&reasons);

    let missing = api
        .open(Method::GET, "/v1/integrations")
        .send()
        .await
        .unwrap();
    expect_problem(missing, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = api
        .open(Method::GET, "/v1/integrations")
        .bearer_auth("not-the-key")
        .send()
        .await
        .unwrap();
    expect_problem(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A genuine signature, but over another body.
    let genuine = data_changed("wh_1", GREENHOUSE, "ats_applications");
    let signature = adapters_kombo::webhook::sign(
        KOMBO_SECRET.as_bytes(),
        &serde_json::to_vec(&genuine).unwrap(),
    );
    let forged = data_changed("wh_2", PERSONIO, "ats_applications");
    let response = api.kombo_webhook(&forged, Some(&signature)).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = api.kombo_webhook(&forged, None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;

    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hooks",
        "http://[::1]:8080/hooks",
        "http://[fd00::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://100.64.0.1/hooks",
        "http://LOCALHOST./hooks",
    ] {
        let response = api
            .call(Method::POST, "/v1/webhook-endpoints")
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        let body = expect_invalid(response, "url").await;
        assert!(
            body["detail"].as_str().unwrap().contains("non-public"),
            "{url}: {body}"
        );
    }

    let padding = "x".repeat(BODY_LIMIT * 2);
    let oversize = api
        .call(Method::POST, "/v1/integrations")
        .json(&json!({ "id": padding }))
        .send()
        .await
        .unwrap();
    expect_problem(oversize, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large").await;
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let nested = api
        .call(Method::POST, "/v1/webhook-endpoints")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"url": "https://hooks.example.com/", "description": {deep}}}"#
        ))
        .send()
        .await
        .unwrap();
    expect_problem(nested, StatusCode::BAD_REQUEST, "json-too-deep").await;

    let expected = [1, 1, 1, 1, 7, 1, 1];
    for ((reason, count), wanted) in counts.iter().zip(expected) {
        assert!(
            refused_count(reason) >= count + wanted,
            "{reason}: {} then {}",
            count,
            refused_count(reason)
        );
    }
    assert_eq!(
        api.get("/v1/webhook-endpoints").await["endpoints"],
        json!([])
    );
    api.stop().await;
}

/// A full sync pass of `integration`, as the scheduler would run it.
async fn sync_pass(api: &Api, integration: &str) {
    let id = domain::IntegrationId::parse(integration).expect("integration id");
    let claimed = match api
        .store
        .claim_integration(&id, "api-test", Duration::from_secs(30), chrono::Utc::now())
        .await
        .expect("claim")
    {
        adapters_postgres::Claim::Claimed(record) => record,
        other => panic!("the integration is free to claim, got {other:?}"),
    };
    let sync = domain::sync::SyncService::new(
        kombo_client(&api.sandbox.base_url(), api.sandbox.api_key()),
        Arc::new(api.store.clone()),
        Arc::new(SystemClock),
        domain::sync::SyncSettings::default(),
    );
    sync.run_pass(&id, claimed.lease_epoch, domain::sync::PassMode::Full, &())
        .await
        .expect("a sync pass");
    api.store
        .release_lease(
            &claimed,
            chrono::Utc::now() + chrono::Duration::hours(1),
            None,
        )
        .await
        .expect("release");
}

/// The events of the feed about one application.
async fn events_of(api: &Api, application: &str) -> Vec<Value> {
    api.feed()
        .await
        .into_iter()
        .filter(|e| e["application"]["id"] == application)
        .collect()
}

#[tokio::test]
async fn a_move_and_a_rejection_go_through_kombo_and_are_announced_once() {
    let api = Api::sqlite().await;
    api.register(GREENHOUSE).await;
    let job = api.job_ids(GREENHOUSE)[0].clone();
    let created = expect_json(
        api.create(GREENHOUSE, &application_body(&job, "mover@example.com"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let jobs = api
        .get(&format!("/v1/integrations/{GREENHOUSE}/jobs"))
        .await;
    let stages: Vec<String> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == job.as_str())
        .expect("the job's pipeline is stored")["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["stage_id"].as_str().expect("stage id").to_owned())
        .collect();
    let target = stages.last().expect("a stage").clone();
    let path = format!("/v1/integrations/{GREENHOUSE}/applications/{id}");
    let move_to = |stage: &str, key: &str| {
        api.call(Method::PUT, &format!("{path}/stage"))
            .header("Idempotency-Key", key)
            .json(&json!({ "stage_id": stage }))
            .send()
    };

    let moved = ok_json(move_to(&target, "move-1").await.expect("move")).await;
    assert_eq!(moved["application"]["current_stage"]["stage_id"], target);
    let [event] = moved["events"].as_array().expect("events").as_slice() else {
        panic!("one event: {moved}");
    };
    assert_eq!(event["type"], "application.stage_changed");
    assert_eq!(event["origin"], "stagewatch");
    assert_eq!(event["data"]["to"]["stage_id"], target);
    let in_kombo = api.sandbox.handle().current_applications(GREENHOUSE);
    let in_kombo = in_kombo
        .iter()
        .find(|a| a["id"] == id.as_str())
        .expect("served");
    assert_eq!(in_kombo["current_stage_id"], target, "Kombo made the move");

    // A retry with the key is answered from the first result, not sent again.
    let retried = move_to(&target, "move-1").await.expect("move");
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    assert_eq!(ok_json(retried).await["events"], moved["events"]);
    assert_eq!(api.sandbox.handle().request_count(Endpoint::MoveStage), 1);

    // Refused before Kombo is asked: a stage of no pipeline, an application not tracked.
    expect_invalid(
        move_to("no-such-stage", "move-2").await.expect("move"),
        "stage_id",
    )
    .await;
    expect_problem(
        api.call(
            Method::PUT,
            &format!("/v1/integrations/{GREENHOUSE}/applications/not-tracked/stage"),
        )
        .json(&json!({ "stage_id": target }))
        .send()
        .await
        .expect("move"),
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_eq!(api.sandbox.handle().request_count(Endpoint::MoveStage), 1);

    let reasons = api
        .get(&format!("/v1/integrations/{GREENHOUSE}/rejection-reasons"))
        .await;
    let reasons = reasons["reasons"].as_array().expect("reasons").clone();
    assert!(!reasons.is_empty());
    let reason = &reasons[0];
    expect_invalid(
        api.call(Method::POST, &format!("{path}/reject"))
            .json(&json!({ "rejection_reason_id": "no-such-reason" }))
            .send()
            .await
            .expect("reject"),
        "rejection_reason_id",
    )
    .await;
    let rejected = ok_json(
        api.call(Method::POST, &format!("{path}/reject"))
            .header("Idempotency-Key", "reject-1")
            .json(&json!({ "rejection_reason_id": reason["id"], "note": "thanks" }))
            .send()
            .await
            .expect("reject"),
    )
    .await;
    assert_eq!(rejected["application"]["outcome"], "DECLINED");
    let types: Vec<&str> = rejected["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert!(types.contains(&"application.declined"), "{types:?}");
    let declined = rejected["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "application.declined")
        .unwrap();
    assert_eq!(declined["data"]["rejection_reason"], reason["name"]);
    assert_eq!(api.sandbox.handle().request_count(Endpoint::Reject), 1);
    assert_eq!(
        api.sandbox
            .handle()
            .request_count(Endpoint::RejectionReasons),
        2,
        "read for the list, once more for the id it lacked, then kept"
    );

    // The next pass reads the same state from Kombo and announces nothing again.
    let before = events_of(&api, &id).await;
    sync_pass(&api, GREENHOUSE).await;
    let after = events_of(&api, &id).await;
    assert_eq!(
        after, before,
        "no second event for the product's own changes"
    );
    let kinds: Vec<&str> = after.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "application.stage_changed")
            .count(),
        1,
        "{kinds:?}"
    );
    api.stop().await;
}

#[tokio::test]
async fn an_ats_that_cannot_reject_is_answered_unsupported() {
    let api = Api::sqlite().await;
    api.register(PERSONIO).await;
    sync_pass(&api, PERSONIO).await;
    let tracked = api
        .get(&format!("/v1/applications?integration={PERSONIO}&limit=1"))
        .await;
    let id = tracked["applications"][0]["id"]
        .as_str()
        .expect("a tracked application")
        .to_owned();
    let reasons = api
        .get(&format!("/v1/integrations/{PERSONIO}/rejection-reasons"))
        .await;
    let reason = reasons["reasons"][0]["id"].clone();
    let refused = api
        .call(
            Method::POST,
            &format!("/v1/integrations/{PERSONIO}/applications/{id}/reject"),
        )
        .header("Idempotency-Key", "reject-personio")
        .json(&json!({ "rejection_reason_id": reason }))
        .send()
        .await
        .expect("reject");
    expect_problem(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unsupported-by-ats",
    )
    .await;
    assert!(
        events_of(&api, &id)
            .await
            .iter()
            .all(|e| e["type"] != "application.declined")
    );
    api.stop().await;
}
