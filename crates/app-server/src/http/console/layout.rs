//! The page shell every console page shares, and the small pieces pages are built from.

#![allow(
    clippy::cast_precision_loss,
    reason = "drawn sizes: counts and milliseconds far below 2^52, rounded to a tenth of a pixel"
)]

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Integrations,
    Events,
    Funnels,
    Webhooks,
    None,
}

/// A message at the top of a page, after an action.
#[derive(Debug, Clone)]
pub(super) enum Notice {
    Done(String),
    Failed(String),
}

/// A whole page.
pub(super) fn page(
    title: &str,
    section: Section,
    session: Option<&Session>,
    notice: Option<&Notice>,
    body: &Markup,
) -> Response {
    let nav = [
        (Section::Integrations, "/ui", "Integrations"),
        (Section::Events, "/ui/events", "Live events"),
        (Section::Funnels, "/ui/funnel", "Funnels"),
        (Section::Webhooks, "/ui/webhooks", "Webhooks"),
    ];
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · stagewatch" }
                link rel="stylesheet" href="/ui/assets/console.css";
                script src="/ui/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui" { "stagewatch" }
                    @if let Some(session) = session {
                        nav aria-label="Sections" {
                            ul {
                                @for (id, href, label) in nav {
                                    li {
                                        @if id == section {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.sign-out method="post" action="/ui/sign-out" {
                            (csrf_field(session))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @match notice {
                        Some(Notice::Done(text)) => p.notice.done role="status" { (text) },
                        Some(Notice::Failed(text)) => p.notice.failed role="alert" { (text) },
                        None => {},
                    }
                    (body)
                }
            }
        }
    };
    let mut response = Html(markup.into_string()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The hidden field every form carries.
pub(super) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token); }
}

/// A form that is one button posting to `action`.
pub(super) fn action_button(session: &Session, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(session))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// A time, readable and machine-readable.
pub(super) fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

pub(super) fn maybe_time(at: Option<DateTime<Utc>>) -> Markup {
    at.map_or_else(|| html! { span.muted { "never" } }, time)
}

/// A duration in the largest sensible unit: `45 s`, `12 min`, `5.5 h`, `3.2 d`.
pub(super) fn duration(seconds: i64) -> String {
    let s = seconds.max(0) as f64;
    if s < 60.0 {
        format!("{s:.0} s")
    } else if s < 3600.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// A small label; `tone` is one of `good`, `bad`, `warn`, `neutral`.
pub(super) fn badge(text: &str, tone: &str) -> Markup {
    html! { span class={ "badge " (tone) } { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_sensible_unit() {
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(720), "12 min");
        assert_eq!(duration(5 * 3600 + 1800), "5.5 h");
        assert_eq!(duration(3 * 86_400), "3.0 d");
        assert_eq!(duration(-5), "0 s");
    }

    #[test]
    fn text_is_escaped() {
        let markup = badge("<script>", "bad").into_string();
        assert!(markup.contains("&lt;script&gt;"), "{markup}");
    }
}
