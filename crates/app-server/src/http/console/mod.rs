//! The web console: server-rendered HTML for operators and recruiting teams, served by the
//! same process as the JSON API and built on its handlers and store reads. Integrations and
//! their health, the live feed, funnels per job, application timelines, webhook deliveries.
//!
//! Signing in exchanges an API key for a session cookie ([`session`]); every form carries the
//! session's CSRF token and must come from the console's own origin; every page is sent with a
//! strict Content-Security-Policy: only the console's own stylesheet and script, no inline
//! code, no frames. Charts are SVG drawn here ([`charts`]).

mod application;
mod charts;
mod events;
mod funnel;
mod integrations;
mod layout;
mod session;
mod sign_in;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use domain::ports::StoreError;
use maud::html;

use session::Gate;

use super::AppState;
use super::auth::ApiKeys;
use super::problem::Problem;
use layout::{Section, page};

/// The policy every console response carries: the console's own files only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The console's routes, under `/ui` (and `/`, which leads there).
pub(super) fn router(state: AppState, keys: ApiKeys) -> Router {
    let gate = Gate { state, keys };
    let signed_in = Router::new()
        .route("/ui", get(integrations::overview))
        .route(
            "/ui/integrations/{integration_id}",
            get(integrations::detail),
        )
        .route(
            "/ui/integrations/{integration_id}/{action}",
            post(integrations::act),
        )
        .route(
            "/ui/integrations/{integration_id}/jobs/{job_id}",
            get(funnel::job),
        )
        .route(
            "/ui/integrations/{integration_id}/applications/{application_id}",
            get(application::view),
        )
        .route("/ui/funnel", get(funnel::across))
        .route("/ui/events", get(events::page_view))
        .route("/ui/events/live", get(events::live))
        .route(
            "/ui/webhooks",
            get(webhooks::overview).post(webhooks::create),
        )
        .route("/ui/webhooks/{endpoint_id}/{action}", post(webhooks::act))
        .route("/ui/sign-out", post(sign_in::sign_out))
        .route(
            "/ui/{*rest}",
            get(
                |axum::Extension(session): axum::Extension<session::Session>| async move {
                    not_found(Some(&session))
                },
            ),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            session::require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/ui/assets/console.css", get(stylesheet))
        .route("/ui/assets/console.js", get(script))
        .merge(signed_in)
        .with_state(gate)
        .layer(axum::middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn stylesheet() -> Response {
    asset(
        include_str!("assets/console.css"),
        "text/css; charset=utf-8",
    )
}

async fn script() -> Response {
    asset(
        include_str!("assets/console.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A refused form, as a page.
fn forbidden(message: &str) -> Response {
    let mut response = page(
        "Refused",
        Section::None,
        None,
        None,
        &html! { p { (message) } p { a href="/ui" { "Back to the console" } } },
    );
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// A page for a path or record that does not exist.
fn not_found(session: Option<&session::Session>) -> Response {
    let mut response = page(
        "Not found",
        Section::None,
        session,
        None,
        &html! { p { "There is nothing here. " a href="/ui" { "Back to the integrations" } } },
    );
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// A failure while drawing a page: logged, and shown as a plain error page.
#[derive(Debug)]
pub(super) struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "console page failed");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "The store did not answer; try again in a moment.".to_owned(),
        }
    }
}

impl From<Problem> for ConsoleError {
    fn from(problem: Problem) -> Self {
        Self {
            status: problem.status,
            message: problem.detail,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let mut response = page(
            "Something went wrong",
            Section::None,
            None,
            None,
            &html! { p { (self.message) } p { a href="/ui" { "Back to the integrations" } } },
        );
        *response.status_mut() = self.status;
        response
    }
}
