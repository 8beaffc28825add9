//! Signing in with an API key, and out.

use std::collections::HashMap;

use adapters_postgres::ConsoleSession;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{Notice, Section, page};
use super::session::{
    CheckedForm, Gate, LIFETIME, expired_cookie, random_token, refused_cross_site, safe_next,
    same_origin, session_cookie, token_hash,
};
use crate::http::auth::hash_key;
use crate::http::refused::Refusal;

/// The sign-in page.
pub(super) async fn form(Query(query): Query<HashMap<String, String>>) -> Response {
    render(query.get("next").map(String::as_str), None)
}

fn render(next: Option<&str>, notice: Option<&Notice>) -> Response {
    page(
        "Sign in",
        Section::None,
        None,
        notice,
        &html! {
            p { "Sign in with one of this server's API keys (create one with "
                code { "stagewatch api-key new" } "). The key is kept only as a session cookie's check; the session lasts 12 hours or until you sign out." }
            form.stacked method="post" action="/ui/sign-in" {
                input type="hidden" name="next" value=(safe_next(next));
                label for="api_key" { "API key"
                    input id="api_key" name="api_key" type="password" autocomplete="current-password" required;
                }
                button.primary type="submit" { "Sign in" }
            }
        },
    )
}

/// Exchanges an API key for a session cookie.
pub(super) async fn submit(
    State(gate): State<Gate>,
    headers: HeaderMap,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    // Sign-in has no session and so no CSRF token yet: a cross-site post could sign a browser
    // in with the attacker's key; the origin check refuses it.
    if !same_origin(&headers) {
        return refused_cross_site();
    }
    let next = safe_next(fields.get("next").map(String::as_str)).to_owned();
    let key = fields.get("api_key").map(|k| k.trim()).unwrap_or_default();
    if key.is_empty() || !gate.keys.accepts(key) {
        Refusal::ConsoleSignInWrong.count();
        let mut response = render(
            Some(&next),
            Some(&Notice::Failed("That API key is not accepted.".to_owned())),
        );
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let token = random_token();
    let now = gate.state.clock.now();
    let session = ConsoleSession {
        key_hash: hash_key(key),
        csrf_token: random_token(),
        expires_at: now + LIFETIME,
    };
    if let Err(error) = gate
        .state
        .store
        .create_console_session(&token_hash(&token), &session, now)
        .await
    {
        tracing::error!(%error, "could not store a console session");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is not available",
        )
            .into_response();
    }
    tracing::info!("console sign-in");
    with_cookie(
        Redirect::to(&next).into_response(),
        &session_cookie(&token, &headers),
    )
}

/// Ends the session, here and on every replica.
pub(super) async fn sign_out(State(gate): State<Gate>, form: CheckedForm) -> Response {
    if let Err(error) = gate
        .state
        .store
        .end_console_session(form.session.token_hash())
        .await
    {
        tracing::error!(%error, "could not end a console session");
    }
    with_cookie(
        Redirect::to("/ui/sign-in").into_response(),
        &expired_cookie(),
    )
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
