//! Figure 5: the API's latency under concurrent load, for the event feed and the application
//! list, over real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::report::{Figure, format_value, progress};
use crate::server::{API_KEY, LiveServer};
use crate::stats::Latencies;

/// Clients sending requests at once.
const CLIENTS: usize = 8;
/// Items per page, as a consumer would ask.
const PAGE: u32 = 100;

/// Loads `GET /v1/events` and then `GET /v1/applications` for `duration` each.
pub(crate) async fn run(server: &LiveServer, duration: Duration) -> anyhow::Result<Vec<Figure>> {
    let head = server.store.feed_head().await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let mut figures = Vec::new();
    for (name, path, paging) in [
        ("GET /v1/events", "/v1/events", Paging::FeedCursor(head)),
        (
            "GET /v1/applications",
            "/v1/applications",
            Paging::NextCursor,
        ),
    ] {
        progress(&format!(
            "api: {name} with {CLIENTS} clients for {} s",
            duration.as_secs()
        ));
        let url = Arc::new(format!("{}{path}", server.api_url));
        let started = Instant::now();
        let mut clients = Vec::with_capacity(CLIENTS);
        for client_number in 0..CLIENTS {
            let client = client.clone();
            let url = Arc::clone(&url);
            clients.push(tokio::spawn(async move {
                load(&client, &url, paging, client_number, started + duration).await
            }));
        }
        let mut samples = Vec::new();
        for handle in clients {
            samples.extend(handle.await.context("a load client panicked")??);
        }
        let elapsed = started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let rate = samples.len() as f64 / elapsed;
        let latencies = Latencies::new(samples);
        let p50 = latencies.percentile_ms(50.0);
        let p99 = latencies.percentile_ms(99.0);
        progress(&format!(
            "api: {name}: {} requests/s, p50 {} ms, p99 {} ms",
            format_value(rate),
            format_value(p50),
            format_value(p99)
        ));
        figures.push(Figure::reported(
            "5 api",
            format!("{name}, {CLIENTS} clients: request rate"),
            rate,
            "req/s",
        ));
        figures.push(Figure::reported(
            "5 api",
            format!("{name}, {CLIENTS} clients: p50"),
            p50,
            "ms",
        ));
        figures.push(Figure::reported(
            "5 api",
            format!("{name}, {CLIENTS} clients: p99"),
            p99,
            "ms",
        ));
    }
    Ok(figures)
}

/// Which pages the clients read, so that they do not all read the first one.
#[derive(Debug, Clone, Copy)]
enum Paging {
    /// `after` cursors spread over a feed of this many events.
    FeedCursor(i64),
    /// Every page in turn through `next_cursor`, from the start again at the end.
    NextCursor,
}

/// Sends requests one after another until `until`; fails on the first error answer.
async fn load(
    client: &reqwest::Client,
    url: &str,
    paging: Paging,
    client_number: usize,
    until: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::new();
    let mut request_number: i64 = 0;
    let offset = i64::try_from(client_number)? * 997;
    let mut next_cursor: Option<String> = None;
    while Instant::now() < until {
        let mut request = client
            .get(url)
            .bearer_auth(API_KEY)
            .query(&[("limit", PAGE.to_string())]);
        match paging {
            Paging::FeedCursor(head) => {
                let spread = (head - i64::from(PAGE)).max(1);
                let after = (offset + request_number * 7919) % spread;
                request = request.query(&[("after", after.to_string())]);
            }
            Paging::NextCursor => {
                if let Some(cursor) = &next_cursor {
                    request = request.query(&[("cursor", cursor)]);
                }
            }
        }
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        samples.push(started.elapsed());
        if !status.is_success() {
            anyhow::bail!(
                "{url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if matches!(paging, Paging::NextCursor) {
            let page: serde_json::Value = serde_json::from_slice(&body)?;
            next_cursor = page["next_cursor"].as_str().map(str::to_owned);
        }
        request_number += 1;
    }
    Ok(samples)
}
