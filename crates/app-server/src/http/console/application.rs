//! One application: where it stands, its stays in stages on a time chart, and its events.

use adapters_postgres::RecentEvents;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;

use super::charts::{Stay, timeline};
use super::integrations::urlencode;
use super::layout::{Section, badge, duration, maybe_time, page, time};
use super::session::Session;
use super::{ConsoleError, Gate};

/// `/ui/integrations/{integration}/applications/{application}`.
pub(super) async fn view(
    State(gate): State<Gate>,
    Extension(session): Extension<Session>,
    Path((integration_id, application_id)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let (Ok(integration), Ok(id)) = (
        domain::IntegrationId::parse(integration_id),
        domain::ApplicationId::parse(application_id),
    ) else {
        return Ok(super::not_found(Some(&session)));
    };
    let store = &gate.state.store;
    let Some(application) = store.application(&integration, &id).await? else {
        return Ok(super::not_found(Some(&session)));
    };
    let visits = store.application_timeline(&integration, &id).await?;
    let events = store
        .recent_events(&RecentEvents {
            integration: Some(integration.clone()),
            application: Some(id.clone()),
            limit: 100,
            ..RecentEvents::default()
        })
        .await?;
    let now = gate.state.clock.now();
    // A stay without a known start began before tracking: it is drawn from the first sighting.
    let stays: Vec<Stay> = visits
        .iter()
        .enumerate()
        .map(|(i, visit)| Stay {
            label: visit
                .stage
                .name
                .clone()
                .unwrap_or_else(|| visit.stage.stage_id.to_string()),
            from: visit.entered_at.unwrap_or(application.first_seen_at),
            until: visit
                .left_at
                .or_else(|| visits.get(i + 1).and_then(|next| next.entered_at)),
        })
        .collect();
    let name = application
        .candidate_name
        .clone()
        .unwrap_or_else(|| id.to_string());
    let job_link = application.job_id.as_ref().map(|job| {
        format!(
            "/ui/integrations/{}/jobs/{}",
            urlencode(integration.as_str()),
            urlencode(job.as_str())
        )
    });
    Ok(page(
        &name,
        Section::Integrations,
        Some(&session),
        None,
        &html! {
            dl.facts {
                dt { "Application" } dd { code { (id.as_str()) } }
                dt { "Integration" } dd { a href={ "/ui/integrations/" (urlencode(integration.as_str())) } { (integration.as_str()) } }
                dt { "Job" } dd {
                    @match (&job_link, &application.job_name) {
                        (Some(link), name) => a href=(link) { (name.as_deref().unwrap_or("(unnamed job)")) },
                        (None, _) => span.muted { "unknown" },
                    }
                }
                dt { "Stage" } dd {
                    (application.current_stage.as_ref().map_or_else(|| "unknown".to_owned(), |s| s.name.clone().unwrap_or_else(|| s.stage_id.to_string())))
                    @if let Some(since) = application.entered_current_stage_at { span.muted { " since " (time(since)) } }
                    @if application.stage_unknown_since.is_some() { " " (badge("ATS stopped telling the stage", "warn")) }
                }
                dt { "Outcome" } dd {
                    @match application.outcome.as_ref().map(domain::Outcome::as_str) {
                        Some("HIRED") => (badge("hired", "good")),
                        Some("DECLINED") => (badge("declined", "bad")),
                        Some(other) => (badge(&other.to_lowercase(), "neutral")),
                        None => (badge("ATS cannot tell", "neutral")),
                    }
                    @if let Some(reason) = &application.rejection_reason_name { " " (reason) }
                }
                @if let Some(deleted) = application.deleted_at { dt { "Deleted" } dd { (time(deleted)) } }
                dt { "First seen" } dd { (time(application.first_seen_at)) }
                dt { "Last changed" } dd { (maybe_time(Some(application.changed_at))) }
            }
            h2 { "Stage timeline" }
            (timeline(&format!("Stages of {name} over time"), &stays, now))
            div.scroll tabindex="0" role="region" aria-label="Stays in stages" { table {
                caption.muted { "Every stay, oldest first" }
                thead { tr { th scope="col" { "Stage" } th scope="col" { "Entered" } th scope="col" { "Left" } th.num scope="col" { "Time there" } } }
                tbody {
                    @for visit in &visits {
                        tr {
                            td { (visit.stage.name.as_deref().unwrap_or(visit.stage.stage_id.as_str())) }
                            td { @if let Some(at) = visit.entered_at { (time(at)) } @else { span.muted { "before tracking" } } }
                            td { @if let Some(at) = visit.left_at { (time(at)) } @else { span.muted { "still there" } } }
                            td.num { (visit.seconds.map(duration).unwrap_or_default()) }
                        }
                    }
                }
            } }
            h2 { "Events" }
            (super::events::feed_list(&events, None))
        },
    ))
}
