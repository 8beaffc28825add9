//! The live event feed: newest first, filtered by type and integration, each event expandable
//! to the JSON the API and webhooks carry. The page long-polls for what arrives next.

use std::collections::HashMap;
use std::time::Duration;

use adapters_postgres::RecentEvents;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use domain::event::{EVENT_TYPES, EventKind};
use domain::{FeedEvent, IntegrationId};
use maud::{Markup, html};

use super::integrations::urlencode;
use super::layout::{Section, page, time};
use super::session::Session;
use super::{ConsoleError, Gate};

const PAGE: u64 = 50;
/// The longest a live read waits for a new event before answering empty.
const LIVE_WAIT: Duration = Duration::from_secs(20);

/// The feed's filters, from the query string; unknown values are ignored, not refused: a
/// stale bookmark still opens.
#[derive(Debug, Default)]
struct Filter {
    kind: Option<String>,
    integration: Option<IntegrationId>,
}

impl Filter {
    fn from_query(query: &HashMap<String, String>) -> Self {
        Self {
            kind: query
                .get("type")
                .filter(|t| EVENT_TYPES.contains(&t.as_str()))
                .cloned(),
            integration: query
                .get("integration")
                .filter(|i| !i.is_empty())
                .and_then(|i| IntegrationId::parse(i.clone()).ok()),
        }
    }

    fn query(&self) -> RecentEvents {
        RecentEvents {
            types: self.kind.iter().cloned().collect(),
            integration: self.integration.clone(),
            limit: PAGE,
            ..RecentEvents::default()
        }
    }

    /// `&type=…&integration=…`, for the live reads.
    fn as_query_string(&self) -> String {
        let mut out = String::new();
        if let Some(kind) = &self.kind {
            out.push_str("&type=");
            out.push_str(&urlencode(kind));
        }
        if let Some(integration) = &self.integration {
            out.push_str("&integration=");
            out.push_str(&urlencode(integration.as_str()));
        }
        out
    }
}

/// `/ui/events`.
pub(super) async fn page_view(
    State(gate): State<Gate>,
    Extension(session): Extension<Session>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let filter = Filter::from_query(&query);
    let store = &gate.state.store;
    let events = store.recent_events(&filter.query()).await?;
    let head = store.feed_head().await?;
    let integrations = store.list_integrations().await?;
    Ok(page(
        "Live events",
        Section::Events,
        Some(&session),
        None,
        &html! {
            form.filters method="get" action="/ui/events" {
                label for="filter-type" { "Type"
                    select id="filter-type" name="type" {
                        option value="" { "every type" }
                        @for kind in EVENT_TYPES {
                            option value=(kind) selected[filter.kind.as_deref() == Some(kind)] { (kind) }
                        }
                    }
                }
                label for="filter-integration" { "Integration"
                    select id="filter-integration" name="integration" {
                        option value="" { "every integration" }
                        @for record in &integrations {
                            @let id = record.id.to_string();
                            option value=(id) selected[filter.integration.as_ref() == Some(&record.id)] {
                                (record.label.as_deref().unwrap_or(&id))
                            }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            p.muted id="live-status" role="status" aria-live="polite" { "Loading live updates…" }
            (feed_list(&events, Some((head, &filter.as_query_string()))))
        },
    ))
}

/// Events as a list, newest first; `live` makes the page's script extend it from `head`.
pub(super) fn feed_list(events: &[FeedEvent], live: Option<(i64, &str)>) -> Markup {
    html! {
        ol.feed data-live-feed[live.is_some()] data-after=[live.map(|(head, _)| head)]
            data-filter=[live.map(|(_, filter)| filter)] aria-label="Events, newest first" {
            @for event in events { (feed_item(event, false)) }
        }
        @if events.is_empty() {
            p.muted id="feed-empty" { "No event yet." }
        }
    }
}

fn feed_item(event: &FeedEvent, fresh: bool) -> Markup {
    let e = &event.event;
    let json = serde_json::to_string_pretty(event).unwrap_or_default();
    let link = match (&e.integration, &e.application) {
        (Some(integration), Some(application)) => Some(format!(
            "/ui/integrations/{}/applications/{}",
            urlencode(integration.id.as_str()),
            urlencode(application.id.as_str())
        )),
        _ => None,
    };
    html! {
        li class=[fresh.then_some("fresh")] data-sequence=(event.sequence) data-type=(e.kind.name()) {
            details {
                summary {
                    span { (time(e.detected_at)) }
                    span.type { (e.kind.name()) }
                    @if let Some(integration) = &e.integration { span.muted { (integration.id.as_str()) } }
                    @if let Some(name) = e.application.as_ref().and_then(|a| a.candidate_name.as_deref()) { span { (name) } }
                    @if let Some(job) = e.job.as_ref().and_then(|j| j.name.as_deref()) { span.muted { (job) } }
                    span { (summary(&e.kind)) }
                }
                @if let Some(link) = link { p { a href=(link) { "Application timeline" } } }
                pre { code { (json) } }
            }
        }
    }
}

/// What happened, in a few words.
fn summary(kind: &EventKind) -> String {
    let stage = |s: Option<&domain::StageRef>| {
        s.map_or_else(
            || "no stage".to_owned(),
            |s| s.name.clone().unwrap_or_else(|| s.stage_id.to_string()),
        )
    };
    match kind {
        EventKind::ApplicationCreated(b) | EventKind::ApplicationDiscovered(b) => {
            format!("in {}", stage(b.stage.as_ref()))
        }
        EventKind::StageChanged(c) => {
            format!("{} → {}", stage(c.from.as_ref()), stage(Some(&c.to)))
        }
        EventKind::Declined(d) => d
            .rejection_reason
            .as_ref()
            .map_or_else(String::new, |r| format!("reason: {r}")),
        EventKind::OutcomeChanged(o) | EventKind::Reopened(o) => format!(
            "{} → {}",
            o.from.as_ref().map_or("unknown", |f| f.as_str()),
            o.to.as_str()
        ),
        EventKind::JobChanged(j) => format!(
            "→ {}",
            j.to.name.clone().unwrap_or_else(|| j.to.id.to_string())
        ),
        EventKind::SyncFailed(f) => f.error.message.clone(),
        EventKind::DeletionsHeld(h) => format!("{} deletions held", h.held),
        EventKind::EndpointDisabled(e) => e.url.clone(),
        _ => String::new(),
    }
}

/// `/ui/events/live?after=N`: the events after `N`, newest first, as list items; waits up to
/// twenty seconds for one. `X-Next-After` says where to read on.
pub(super) async fn live(
    State(gate): State<Gate>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let filter = Filter::from_query(&query);
    let store = &gate.state.store;
    let after = query
        .get("after")
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0);
    let query = RecentEvents {
        after: Some(after),
        ..filter.query()
    };
    let events = crate::http::events::long_poll(
        store,
        after,
        LIVE_WAIT.min(gate.state.max_feed_wait),
        || store.recent_events(&query),
    )
    .await?;
    // Newest first; a burst larger than a page shows its newest events (the page, reloaded,
    // lists them all). Nothing found: read on from the same place, since an event of the
    // filter may have been appended just below the head read above.
    let next = events.first().map_or(after, |e| e.sequence);
    let rows = html! { @for event in &events { (feed_item(event, true)) } };
    let mut response = Html(rows.into_string()).into_response();
    if let Ok(value) = HeaderValue::from_str(&next.to_string()) {
        response.headers_mut().insert("x-next-after", value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
