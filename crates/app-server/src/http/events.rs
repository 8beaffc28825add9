//! `/v1/events`: the event feed, by gap-free sequence, with long polling.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use domain::event::EVENT_TYPES;
use domain::ports::{EventReader as _, FeedQuery, MAX_FEED_LIMIT, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::ApiQuery;
use super::integrations::parse_integration_id;
use super::problem::Problem;

/// Default page of the feed.
const DEFAULT_LIMIT: u32 = 100;
/// The longest long poll a request may ask for (the server's own cap is usually lower).
const MAX_WAIT_SECONDS: u64 = 3600;

/// Parameters of a feed read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Events with a sequence greater than this (the `next_after` of the previous read); from
    /// the start (the oldest kept event) when omitted. A cursor before the oldest event the
    /// feed's retention kept is answered `410 Gone`.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Comma-separated event types, e.g. `application.hired,application.declined` (no spaces);
    /// every type when omitted.
    pub types: Option<String>,
    /// Only events of this integration.
    pub integration: Option<String>,
    /// Events per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Seconds to wait for an event when none is there yet (long polling), 0–3600; the server
    /// waits at most its `api.max_feed_wait` (30 s by default).
    #[param(minimum = 0, maximum = 3600)]
    pub wait: Option<u64>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    /// Events, oldest first. Each has `sequence`, `id` (use it to de-duplicate), `type`,
    /// `occurred_at`, `detected_at`, `integration`, `application`, `job` and `data`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<domain::FeedEvent>,
    /// Pass as `after` to read on; equal to `after` when there was nothing new.
    pub next_after: i64,
}

/// Reads the event feed.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(FeedParams),
    responses(
        (status = 200, body = FeedPage),
        (status = 410, description = "`after` is before the oldest event the feed's retention kept (`feed-pruned`); only when `retention.feed_max_age` is set", body = super::problem::ProblemBody),
        (status = 422, body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn read(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FeedParams>,
) -> Result<Json<FeedPage>, Problem> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_FEED_LIMIT).contains(&limit) {
        return Err(Problem::validation(
            "limit",
            format!("{limit} is out of range; 1 to {MAX_FEED_LIMIT}"),
        ));
    }
    if let Some(after) = params.after
        && after < 0
    {
        return Err(Problem::validation("after", "must not be negative"));
    }
    // Known types joined by commas, nothing else; an empty `types=` is no filter, as an absent
    // one (HTTP clients and the OpenAPI tooling read it so).
    let types: Vec<String> = params
        .types
        .as_deref()
        .filter(|list| !list.is_empty())
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(unknown) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(Problem::validation(
            "types",
            format!(
                "unknown event type `{unknown}`; known types: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    let wait = params.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(Problem::validation(
            "wait",
            format!("{wait} is out of range; 0 to {MAX_WAIT_SECONDS} seconds"),
        ));
    }
    let integration = params.integration.map(parse_integration_id).transpose()?;
    let wait = Duration::from_secs(wait).min(state.max_feed_wait);
    let query = FeedQuery {
        after: params.after,
        limit,
        types,
        integration,
    };
    let events = long_poll(&state.store, params.after.unwrap_or_default(), wait, || {
        state.store.read_events(&query)
    })
    .await?;
    let next_after = events
        .last()
        .map_or(params.after.unwrap_or(0), |e| e.sequence);
    Ok(Json(FeedPage { events, next_after }))
}

/// Reads with `read` until it finds events or `wait` has passed (then it answers empty): the
/// feed's long poll, for the API and the console's live list.
pub(super) async fn long_poll<Read>(
    store: &adapters_postgres::Store,
    after: i64,
    wait: Duration,
    mut read: impl FnMut() -> Read,
) -> Result<Vec<domain::FeedEvent>, StoreError>
where
    Read: Future<Output = Result<Vec<domain::FeedEvent>, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    // While filtering, new events of other types also wake the wait; the cursor to wait after is
    // the feed's head, so each wake-up means something new was appended.
    let mut head = after;
    loop {
        let events = read().await?;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !events.is_empty() || remaining.is_zero() {
            return Ok(events);
        }
        head = head.max(store.feed_head().await?);
        store.wait_for_events(head, remaining).await?;
    }
}
