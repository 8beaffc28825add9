//! Funnels: a job's pipeline with where applications are, how far they got, how long they
//! stayed and why they were declined; the same across the jobs of an integration, or across
//! every integration, by stage name. The numbers are the funnel API's (`/v1/…/funnel`).

#![allow(
    clippy::cast_precision_loss,
    reason = "drawn sizes: counts and milliseconds far below 2^52, rounded to a tenth of a pixel"
)]

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use domain::funnel::{Funnel, FunnelQuery};
use domain::{IntegrationId, JobId};
use maud::{Markup, html};

use super::charts::{BarRow, bars};
use super::integrations::urlencode;
use super::layout::{Notice, Section, duration, page};
use super::session::Session;
use super::{ConsoleError, Gate};
use crate::http::applications::{self as api, ListParams};
use crate::http::extract::ApiQuery;

/// The window of the page: whole days, `until` inclusive.
#[derive(Debug, Default)]
struct Window {
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
}

impl Window {
    fn from_query(query: &HashMap<String, String>) -> Self {
        let day = |key: &str| {
            query
                .get(key)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        };
        Self {
            since: day("since"),
            until: day("until"),
        }
    }

    fn bounds(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        (
            self.since.and_then(midnight),
            self.until.and_then(|d| d.succ_opt()).and_then(midnight),
        )
    }

    fn form(&self, hidden: &[(&str, &str)]) -> Markup {
        html! {
            form.filters method="get" {
                @for (name, value) in hidden { input type="hidden" name=(name) value=(value); }
                label for="since" { "Applied from" input id="since" name="since" type="date" value=[self.since.map(|d| d.to_string())]; }
                label for="until" { "Applied until" input id="until" name="until" type="date" value=[self.until.map(|d| d.to_string())]; }
                button type="submit" { "Apply" }
            }
        }
    }
}

/// `/ui/integrations/{integration}/jobs/{job}`: one job's pipeline.
pub(super) async fn job(
    State(gate): State<Gate>,
    Extension(session): Extension<Session>,
    Path((integration_id, job_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let (Ok(integration), Ok(job)) = (IntegrationId::parse(integration_id), JobId::parse(job_id))
    else {
        return Ok(super::not_found(Some(&session)));
    };
    let store = &gate.state.store;
    let jobs = store.list_jobs(&integration).await?;
    let Some(overview) = jobs.iter().find(|j| j.job_id == job) else {
        return Ok(super::not_found(Some(&session)));
    };
    let window = Window::from_query(&query);
    let (since, until) = window.bounds();
    let funnel = store
        .funnel(&FunnelQuery {
            integration: Some(integration.clone()),
            job: Some(job.clone()),
            since,
            until,
        })
        .await?;
    let axum::Json(applications) = api::list(
        axum::extract::State(gate.state.clone()),
        ApiQuery(ListParams {
            integration: Some(integration.to_string()),
            job: Some(job.to_string()),
            stage: None,
            outcome: None,
            changed_since: None,
            cursor: None,
            limit: Some(100),
        }),
    )
    .await?;
    let title = overview.name.clone().unwrap_or_else(|| job.to_string());
    Ok(page(
        &title,
        Section::Funnels,
        Some(&session),
        None,
        &html! {
            p.muted {
                "Job " code { (job.as_str()) } " of "
                a href={ "/ui/integrations/" (urlencode(integration.as_str())) } { (integration.as_str()) }
            }
            (window.form(&[]))
            (funnel_view(&funnel, &title))
            h2 { "Applications" }
            @if applications.applications.is_empty() {
                p.muted { "No tracked application in this job." }
            } @else {
                div.scroll tabindex="0" role="region" aria-label="Applications of the job" { table {
                    thead { tr { th scope="col" { "Candidate" } th scope="col" { "Stage" } th scope="col" { "Outcome" } } }
                    tbody {
                        @for a in &applications.applications {
                            tr {
                                td { a href={ "/ui/integrations/" (urlencode(&a.integration_id)) "/applications/" (urlencode(&a.id)) } {
                                    (a.candidate_name.as_deref().unwrap_or(&a.id)) } }
                                td { (a.current_stage.as_ref().and_then(|s| s.get("name")).and_then(|n| n.as_str()).unwrap_or("unknown")) }
                                td { (a.outcome.as_deref().unwrap_or("unknown")) }
                            }
                        }
                    }
                } }
                @if applications.next_cursor.is_some() { p.muted { "The 100 most recently changed are listed." } }
            }
        },
    ))
}

/// `/ui/funnel[?integration=…]`: every job, by stage name.
pub(super) async fn across(
    State(gate): State<Gate>,
    Extension(session): Extension<Session>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let store = &gate.state.store;
    let integrations = store.list_integrations().await?;
    let integration = query
        .get("integration")
        .filter(|i| !i.is_empty())
        .and_then(|i| IntegrationId::parse(i.clone()).ok());
    let window = Window::from_query(&query);
    let (since, until) = window.bounds();
    let funnel = store
        .funnel(&FunnelQuery {
            integration: integration.clone(),
            job: None,
            since,
            until,
        })
        .await?;
    let scope = integration
        .as_ref()
        .map_or_else(|| "every integration".to_owned(), ToString::to_string);
    let notice = integration
        .is_none()
        .then(|| Notice::Done("Stages of different jobs are added up by their name.".to_owned()));
    Ok(page(
        "Funnels",
        Section::Funnels,
        Some(&session),
        notice.as_ref(),
        &html! {
            nav aria-label="Scope" {
                p { "Scope: " strong { (scope) } }
                ul {
                    li { a href="/ui/funnel" { "Every integration" } }
                    @for record in &integrations {
                        li {
                            a href={ "/ui/funnel?integration=" (urlencode(record.id.as_str())) } {
                                (record.label.as_deref().unwrap_or(record.id.as_str()))
                            }
                            " · jobs: "
                            a href={ "/ui/integrations/" (urlencode(record.id.as_str())) } { "one by one" }
                        }
                    }
                }
            }
            @let hidden: Vec<(&str, &str)> = integration.as_ref().map(|i| ("integration", i.as_str())).into_iter().collect();
            (window.form(&hidden))
            (funnel_view(&funnel, &scope))
        },
    ))
}

/// The charts and the table of one funnel.
fn funnel_view(funnel: &Funnel, scope: &str) -> Markup {
    let a = &funnel.applications;
    let name = |s: &domain::funnel::FunnelStage| {
        s.name
            .clone()
            .or_else(|| s.stage_id.clone())
            .unwrap_or_else(|| "(unnamed)".to_owned())
    };
    let reached: Vec<BarRow> = funnel
        .stages
        .iter()
        .map(|s| BarRow {
            label: name(s),
            value: s.reached as f64,
            inner: Some(s.current as f64),
            caption: format!(
                "{} reached · {} now{}",
                s.reached,
                s.current,
                s.conversion_to_next
                    .map(|c| format!(" · {:.0}% went on", c * 100.0))
                    .unwrap_or_default()
            ),
        })
        .collect();
    let times: Vec<BarRow> = funnel
        .stages
        .iter()
        .map(|s| BarRow {
            label: name(s),
            value: s.p90_seconds.unwrap_or(0) as f64,
            inner: s.median_seconds.map(|m| m as f64),
            caption: match (s.median_seconds, s.p90_seconds) {
                (Some(m), Some(p)) => format!("median {} · p90 {}", duration(m), duration(p)),
                _ => "no completed stay".to_owned(),
            },
        })
        .collect();
    html! {
        dl.facts data-funnel-totals {
            dt { "Applications" } dd data-total=(a.total) { (a.total) }
            dt { "In process" } dd { (a.active) }
            dt { "Hired" } dd { (a.hired) }
            dt { "Declined" } dd { (a.declined) }
            dt { "Deleted in the ATS" } dd { (a.deleted) }
            dt { "Stage unknown" } dd { (a.without_known_stage) }
        }
        @if funnel.stages.is_empty() {
            p.muted { "No stage to show: the pipeline arrives with the first sync." }
        } @else {
            h2 { "How far applications got" }
            p.muted { "Dark: reached the stage or a later one. Light: there now." }
            (bars(&format!("Applications reaching each stage, {scope}"), &reached))
            h2 { "Time in stage" }
            p.muted { "Completed stays. Dark: 90th percentile. Light: median." }
            (bars(&format!("Time spent in each stage, {scope}"), &times))
            h2 { "Stages" }
            div.scroll tabindex="0" role="region" aria-label="Funnel by stage" { table data-funnel {
                thead { tr {
                    th scope="col" { "Stage" } th.num scope="col" { "Now" } th.num scope="col" { "Entered" }
                    th.num scope="col" { "Reached" } th.num scope="col" { "On to next" }
                    th.num scope="col" { "Median" } th.num scope="col" { "p90" }
                    th.num scope="col" { "Hired" } th.num scope="col" { "Declined" } th scope="col" { "Top rejection reasons" }
                } }
                tbody {
                    @for s in &funnel.stages {
                        tr data-stage=(name(s)) {
                            th scope="row" { (name(s)) }
                            td.num data-current=(s.current) { (s.current) }
                            td.num data-entered=(s.entered) { (s.entered) }
                            td.num data-reached=(s.reached) { (s.reached) }
                            td.num { (s.conversion_to_next.map(|c| format!("{:.0}%", c * 100.0)).unwrap_or_default()) }
                            td.num { (s.median_seconds.map(duration).unwrap_or_default()) }
                            td.num { (s.p90_seconds.map(duration).unwrap_or_default()) }
                            td.num data-hired=(s.hired) { (s.hired) }
                            td.num data-declined=(s.declined) { (s.declined) }
                            td { (s.top_rejection_reasons.iter().map(|r| format!("{} ({})", r.reason, r.count)).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            } }
        }
    }
}
