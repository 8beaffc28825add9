//! Starting a sandbox, pointing a client at it, and reading every page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters_kombo::{KomboClient, KomboConfig};
use axum::body::Bytes;
use axum::http::HeaderMap;
use domain::ports::{ApplicationQuery, AtsError, AtsGateway, JobQuery, PageCursor};
use domain::{ApplicationSnapshot, IntegrationId, Pipeline};
use kombo_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use serde_json::Value;
use url::Url;

/// A sandbox that moves only when the test advances it.
pub(crate) async fn start(config: SandboxConfig) -> RunningSandbox {
    Sandbox::start(config.with_manual_clock())
        .await
        .expect("the sandbox starts")
}

/// The client settings a test varies; retries take milliseconds.
pub(crate) struct Settings {
    pub(crate) api_key: Option<String>,
    pub(crate) max_retries: u32,
    pub(crate) timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_key: None,
            max_retries: 3,
            timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) fn client(sandbox: &RunningSandbox, settings: Settings) -> KomboClient {
    let key = settings
        .api_key
        .unwrap_or_else(|| sandbox.api_key().to_owned());
    let base_url = Url::parse(&format!("{}/", sandbox.base_url())).unwrap();
    let mut config = KomboConfig::for_local_sandbox(base_url, key.into());
    config.max_retries = settings.max_retries;
    config.timeout = settings.timeout;
    KomboClient::new(config).unwrap()
}

pub(crate) fn integration(name: &str) -> IntegrationId {
    IntegrationId::parse(name).unwrap()
}

/// Parses an id of any kind from a wire field that must be present.
pub(crate) fn id<T: TryFrom<String>>(value: Option<&str>) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(value.expect("the field is set").to_owned()).unwrap()
}

/// The `id`s of wire applications, sorted.
pub(crate) fn sorted_ids<'a>(applications: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut ids: Vec<String> = applications
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Every page of `query`, in order; fails on the first error.
pub(crate) async fn all_applications(
    client: &KomboClient,
    integration_id: &str,
    query: &ApplicationQuery,
) -> Result<Vec<ApplicationSnapshot>, AtsError> {
    let integration = integration(integration_id);
    let mut all = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    loop {
        let page = client
            .fetch_applications(&integration, query, cursor)
            .await?;
        assert!(page.skipped.is_empty(), "skipped {:?}", page.skipped);
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// Every job, `page_size` at a time.
pub(crate) async fn all_jobs(
    client: &KomboClient,
    integration_id: &str,
    page_size: u16,
) -> Vec<Pipeline> {
    let integration = integration(integration_id);
    let query = JobQuery {
        page_size,
        ..JobQuery::default()
    };
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .fetch_jobs(&integration, &query, cursor)
            .await
            .unwrap();
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

pub(crate) type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A local endpoint the sandbox posts its webhooks to.
pub(crate) async fn webhook_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/kombo",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = Arc::clone(&store);
            async move {
                store.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/kombo", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// The deliveries received once `done` holds for them, or after about four seconds.
pub(crate) async fn wait_for(
    received: &Received,
    done: impl Fn(&[(HeaderMap, Bytes)]) -> bool,
) -> Vec<(HeaderMap, Bytes)> {
    for _ in 0..200 {
        if done(&received.lock().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received.lock().unwrap().clone()
}
