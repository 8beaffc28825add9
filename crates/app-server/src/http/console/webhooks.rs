//! Webhook endpoints: their deliveries and attempts, and the operator's buttons (replay,
//! rotate the secret, enable, disable, add an endpoint). Each button runs the API's handler.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};

use super::integrations::{css_id, urlencode};
use super::layout::{Notice, Section, action_button, badge, csrf_field, page, time};
use super::session::{CheckedForm, Session};
use super::{ConsoleError, Gate};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::webhook_endpoints::{
    self as api, AttemptParams, CreateEndpoint, EndpointView, Replay, UpdateEndpoint,
};

/// Deliveries shown per endpoint.
const DELIVERIES: u32 = 10;

/// `/ui/webhooks`.
pub(super) async fn overview(
    State(gate): State<Gate>,
    Extension(session): Extension<Session>,
) -> Result<Response, ConsoleError> {
    render(&gate, &session, None, None).await
}

async fn render(
    gate: &Gate,
    session: &Session,
    notice: Option<Notice>,
    secret: Option<(String, String)>,
) -> Result<Response, ConsoleError> {
    let Json(list) = api::list(State(gate.state.clone())).await?;
    let mut sections = Vec::with_capacity(list.endpoints.len());
    for endpoint in &list.endpoints {
        let Json(page) = api::attempts(
            State(gate.state.clone()),
            Path(endpoint.id.clone()),
            ApiQuery(AttemptParams {
                limit: Some(DELIVERIES),
                before: None,
            }),
        )
        .await?;
        sections.push(endpoint_section(session, endpoint, &page));
    }
    Ok(page(
        "Webhooks",
        Section::Webhooks,
        Some(session),
        notice.as_ref(),
        &html! {
            @if let Some((endpoint, secret)) = secret {
                section aria-labelledby="new-secret" {
                    h2 id="new-secret" { "Signing secret of " (endpoint) }
                    p { "Shown this once: store it where the receiver verifies signatures (Standard Webhooks)." }
                    p.secret data-secret { (secret) }
                }
            }
            @if list.endpoints.is_empty() {
                p { "No endpoint yet: events are only in the feed." }
            }
            @for section in sections { (section) }
            h2 { "Add an endpoint" }
            form.stacked method="post" action="/ui/webhooks" {
                (csrf_field(session))
                label for="new-url" { "URL" input id="new-url" name="url" type="url" required placeholder="https://example.com/stagewatch"; }
                label for="new-description" { "Description" input id="new-description" name="description" type="text"; }
                button.primary type="submit" { "Add endpoint" }
            }
        },
    ))
}

fn endpoint_section(
    session: &Session,
    endpoint: &EndpointView,
    page: &api::DeliveryPage,
) -> Markup {
    let base = format!("/ui/webhooks/{}", urlencode(&endpoint.id));
    let heading = format!("endpoint-{}", css_id(&endpoint.id));
    html! {
        section.card aria-labelledby=(heading) data-endpoint=(endpoint.id) {
            h2 id=(heading) { (endpoint.url) }
            p {
                @if endpoint.enabled { (badge("enabled", "good")) } @else { (badge("disabled", "bad")) }
                @if let Some(reason) = &endpoint.disabled_reason { " " (reason) }
            }
            dl.facts {
                @if let Some(description) = &endpoint.description { dt { "Description" } dd { (description) } }
                dt { "Events" } dd { @if endpoint.event_types.is_empty() { "every type" } @else { (endpoint.event_types.join(", ")) } }
                dt { "Created" } dd { (time(endpoint.created_at)) }
            }
            div.actions {
                @if endpoint.enabled {
                    (action_button(session, &format!("{base}/disable"), "Disable", ""))
                } @else {
                    (action_button(session, &format!("{base}/enable"), "Enable", "primary"))
                }
                (action_button(session, &format!("{base}/rotate-secret"), "Rotate secret", ""))
            }
            h3 { "Latest deliveries" }
            @if page.deliveries.is_empty() {
                p.muted { "No delivery yet." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Latest deliveries" { table {
                    thead { tr {
                        th scope="col" { "Event" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Replay" }
                    } }
                    tbody {
                        @for delivery in &page.deliveries {
                            tr data-delivery=(delivery.id) {
                                td { "#" (delivery.event_sequence) br; code.muted { (delivery.event_id) } }
                                td { (badge(&delivery.status, match delivery.status.as_str() { "delivered" => "good", "failed" => "bad", _ => "warn" })) }
                                td {
                                    ol {
                                        @for attempt in &delivery.attempts {
                                            li {
                                                (time(attempt.attempted_at)) " · "
                                                @if let Some(code) = attempt.status_code { "HTTP " (code) } @else { "no answer" }
                                                " · " (attempt.latency_ms) " ms"
                                                @if let Some(error) = &attempt.error { " · " (error) }
                                                @if let Some(excerpt) = &attempt.response_excerpt { br; code.muted { (super::charts::clip(excerpt, 120)) } }
                                            }
                                        }
                                    }
                                }
                                td {
                                    form.inline method="post" action={ (base) "/replay" } {
                                        (csrf_field(session))
                                        input type="hidden" name="event_id" value=(delivery.event_id);
                                        button type="submit" { "Replay" }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// The buttons of one endpoint.
pub(super) async fn act(
    State(gate): State<Gate>,
    Path((endpoint_id, action)): Path<(String, String)>,
    form: CheckedForm,
) -> Result<Response, ConsoleError> {
    let state = gate.state.clone();
    let path = Path(endpoint_id.clone());
    let enable = |enabled| UpdateEndpoint {
        url: None,
        description: None,
        event_types: None,
        enabled: Some(enabled),
    };
    let mut secret = None;
    let outcome = match action.as_str() {
        "enable" => api::update(State(state), path, ApiJson(enable(true)))
            .await
            .map(|Json(e)| format!("{} is enabled", e.url)),
        "disable" => api::update(State(state), path, ApiJson(enable(false)))
            .await
            .map(|Json(e)| format!("{} is disabled", e.url)),
        "rotate-secret" => api::rotate_secret(State(state), path)
            .await
            .map(|Json(rotated)| {
                secret = Some((rotated.endpoint.url.clone(), rotated.secret));
                "The secret is rotated; the previous one still signs for the overlap period."
                    .to_owned()
            }),
        "replay" => {
            let replay = Replay {
                event_id: form.field("event_id").map(str::to_owned),
                from: None,
                to: None,
            };
            api::replay(State(state), path, ApiJson(replay))
                .await
                .map(|(_, Json(r))| format!("{} delivery queued again", r.queued))
        }
        _ => return Ok(super::not_found(Some(&form.session))),
    };
    let notice = match outcome {
        Ok(text) => Notice::Done(text),
        Err(problem) => Notice::Failed(problem.detail),
    };
    render(&gate, &form.session, Some(notice), secret).await
}

/// Adds an endpoint; its secret is shown once.
pub(super) async fn create(
    State(gate): State<Gate>,
    form: CheckedForm,
) -> Result<Response, ConsoleError> {
    let body = CreateEndpoint {
        url: form.field("url").unwrap_or_default().to_owned(),
        description: form.field("description").map(str::to_owned),
        event_types: Vec::new(),
    };
    match api::create(State(gate.state.clone()), ApiJson(body)).await {
        Ok((_, Json(created))) => {
            let url = created.endpoint.url.clone();
            render(
                &gate,
                &form.session,
                Some(Notice::Done(format!("{url} is added"))),
                Some((url, created.secret)),
            )
            .await
        }
        Err(problem) => {
            render(
                &gate,
                &form.session,
                Some(Notice::Failed(problem.detail)),
                None,
            )
            .await
        }
    }
}
