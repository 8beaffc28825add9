//! The integrations: health, capabilities, sync times and the operator's buttons.

use adapters_postgres::IntegrationRecord;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Extension, response::IntoResponse};
use domain::{IntegrationStatus, Support};
use maud::{Markup, html};

use super::layout::{Notice, Section, action_button, badge, maybe_time, page, time};
use super::session::{CheckedForm, Session};
use super::{ConsoleError, Gate};
use crate::http::integrations as api;

/// `/ui`: every integration as a card.
pub(super) async fn overview(
    State(gate): State<Gate>,
    Extension(session): Extension<Session>,
) -> Result<Response, ConsoleError> {
    render_overview(&gate, &session, None).await
}

async fn render_overview(
    gate: &Gate,
    session: &Session,
    notice: Option<Notice>,
) -> Result<Response, ConsoleError> {
    let store = &gate.state.store;
    let integrations = store.list_integrations().await?;
    let now = gate.state.clock.now();
    let events = store
        .events_per_integration_since(now - chrono::TimeDelta::hours(24), None)
        .await?;
    let tracked = store.tracked_per_integration(None).await?;
    Ok(page(
        "Integrations",
        Section::Integrations,
        Some(session),
        notice.as_ref(),
        &html! {
            @if integrations.is_empty() {
                p { "No integration is registered yet. Register one with "
                    code { "POST /v1/integrations" } " or " code { "stagewatch integrations add" } "." }
            }
            div.cards {
                @for record in &integrations {
                    @let id = record.id.to_string();
                    (card(
                        session,
                        record,
                        tracked.get(&id).copied().unwrap_or_default(),
                        events.get(&id).copied().unwrap_or_default(),
                    ))
                }
            }
        },
    ))
}

/// One integration's card, also the head of its own page.
pub(super) fn card(
    session: &Session,
    record: &IntegrationRecord,
    tracked: u64,
    events_24h: u64,
) -> Markup {
    let id = record.id.to_string();
    let base = format!("/ui/integrations/{}", urlencode(&id));
    let label = record.label.clone().unwrap_or_else(|| id.clone());
    html! {
        article.card aria-labelledby={ "integration-" (css_id(&id)) } data-integration=(id) {
            h3 id={ "integration-" (css_id(&id)) } { a href=(base) { (label) } }
            p.muted { code { (id) } " · " (record.tool.as_deref().unwrap_or("unknown ATS")) }
            p {
                (status_badge(record))
                @if let Some(capabilities) = &record.capabilities {
                    (support_badge("applications", capabilities.applications))
                    (support_badge("outcome", capabilities.outcome))
                    (support_badge("stage", capabilities.current_stage))
                } @else {
                    (badge("capabilities not read yet", "neutral"))
                }
            }
            dl.facts {
                dt { "Tracked" } dd data-tracked=(tracked) { (tracked) " applications" }
                dt { "Events, 24 h" } dd data-events-24h=(events_24h) { (events_24h) }
                dt { "Last sync" } dd { (maybe_time(record.last_pass_finished_at)) }
                dt { "Next sync" } dd { @if record.paused { "paused" } @else { (time(record.next_sync_at)) } }
                @if let Some(error) = &record.last_error {
                    dt { "Last error" } dd.failed {
                        (badge(&error.kind, "bad")) " " (error.message)
                        @if let Some(since) = record.failing_since { br; span.muted { "failing since " (time(since)) } }
                    }
                }
            }
            @if record.deletions_held {
                p { (badge("deletions held", "warn"))
                    " The mass-deletion guard holds deletions until you confirm them." }
            }
            div.actions {
                (action_button(session, &format!("{base}/sync"), "Sync now", "primary"))
                @if record.paused {
                    (action_button(session, &format!("{base}/resume"), "Resume", ""))
                } @else {
                    (action_button(session, &format!("{base}/pause"), "Pause", ""))
                }
                @if record.deletions_held {
                    (action_button(session, &format!("{base}/confirm-deletions"), "Confirm held deletions", "danger"))
                }
            }
        }
    }
}

fn status_badge(record: &IntegrationRecord) -> Markup {
    if record.paused {
        return badge("paused", "warn");
    }
    if record.failing_since.is_some() {
        return badge("failing", "bad");
    }
    match record.status {
        Some(IntegrationStatus::Active) => badge("active", "good"),
        Some(IntegrationStatus::Invalid) => badge("invalid: reconnect in Kombo", "bad"),
        Some(IntegrationStatus::Inactive) => badge("inactive", "warn"),
        Some(IntegrationStatus::Deleted) => badge("deleted in Kombo", "bad"),
        Some(IntegrationStatus::Unknown) => badge("status unknown", "neutral"),
        None => badge("first sync pending", "neutral"),
    }
}

fn support_badge(what: &str, support: Support) -> Markup {
    match support {
        Support::Supported => badge(&format!("{what} ✓"), "good"),
        Support::Unsupported => badge(&format!("{what}: ATS cannot tell"), "bad"),
        Support::NotImplemented => badge(&format!("{what}: not read by Kombo"), "warn"),
        Support::Unknown => badge(&format!("{what}: unknown"), "neutral"),
    }
}

/// The buttons: each runs the API's own handler, then shows the overview with what happened.
pub(super) async fn act(
    State(gate): State<Gate>,
    Path((integration_id, action)): Path<(String, String)>,
    form: CheckedForm,
) -> Result<Response, ConsoleError> {
    let state = gate.state.clone();
    let path = Path(integration_id.clone());
    let notice = match action.as_str() {
        "sync" => api::trigger_sync(State(state), path)
            .await
            .map(|(_, Json(accepted))| accepted.message),
        "pause" => api::pause(State(state), path)
            .await
            .map(|_| format!("{integration_id} is paused")),
        "resume" => api::resume(State(state), path)
            .await
            .map(|_| format!("{integration_id} syncs again")),
        "confirm-deletions" => {
            api::confirm_deletions(State(state), path)
                .await
                .map(|Json(done)| {
                    format!(
                        "{} held deletions of {integration_id} entered the feed",
                        done.released
                    )
                })
        }
        _ => return Ok(super::not_found(Some(&form.session))),
    };
    let notice = match notice {
        Ok(text) => Notice::Done(text),
        Err(problem) => Notice::Failed(problem.detail),
    };
    render_overview(&gate, &form.session, Some(notice)).await
}

/// `/ui/integrations/{id}`: the card, its jobs and its latest events.
pub(super) async fn detail(
    State(gate): State<Gate>,
    Extension(session): Extension<Session>,
    Path(integration_id): Path<String>,
) -> Result<Response, ConsoleError> {
    let Ok(id) = domain::IntegrationId::parse(integration_id) else {
        return Ok(super::not_found(Some(&session)));
    };
    let store = &gate.state.store;
    let Some(record) = store.integration(&id).await? else {
        return Ok(super::not_found(Some(&session)));
    };
    let now = gate.state.clock.now();
    // This integration's counts only: the page must not cost more with every other one.
    let tracked = store.tracked_per_integration(Some(&id)).await?;
    let events = store
        .events_per_integration_since(now - chrono::TimeDelta::hours(24), Some(&id))
        .await?;
    let jobs = store.list_jobs(&id).await?;
    let recent = store
        .recent_events(&adapters_postgres::RecentEvents {
            integration: Some(id.clone()),
            limit: 20,
            ..Default::default()
        })
        .await?;
    let key = id.to_string();
    let base = format!("/ui/integrations/{}", urlencode(&key));
    Ok(page(
        record.label.as_deref().unwrap_or(&key),
        Section::Integrations,
        Some(&session),
        None,
        &html! {
            (card(&session, &record, tracked.get(&key).copied().unwrap_or_default(), events.get(&key).copied().unwrap_or_default()))
            h2 { "Jobs" }
            p { a href={ "/ui/funnel?integration=" (urlencode(&key)) } { "Funnel across all jobs of this integration" } }
            @if jobs.is_empty() {
                p.muted { "No job is stored yet: jobs arrive with the first sync." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Jobs" { table {
                    thead { tr { th scope="col" { "Job" } th.num scope="col" { "Tracked" } th scope="col" { "Pipeline" } } }
                    tbody {
                        @for job in &jobs {
                            tr {
                                td { a href={ (base) "/jobs/" (urlencode(job.job_id.as_str())) } { (job.name.as_deref().unwrap_or(job.job_id.as_str())) } }
                                td.num { (job.tracked) }
                                td { (job.stages.iter().map(|s| s.stage.name.clone().unwrap_or_else(|| s.stage.id.to_string())).collect::<Vec<_>>().join(" → ")) }
                            }
                        }
                    }
                } }
            }
            h2 { "Latest events" }
            (super::events::feed_list(&recent, None))
            p { a href={ "/ui/events?integration=" (urlencode(&key)) } { "All events of this integration, live" } }
        },
    )
    .into_response())
}

/// A path or query segment.
pub(super) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// An HTML id made of a Kombo id (which may hold `:`).
pub(super) fn css_id(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
