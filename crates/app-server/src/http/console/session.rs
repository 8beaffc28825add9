//! Console sign-in: an API key exchanged for a session cookie (`HttpOnly`, `SameSite=Strict`), with
//! a CSRF token per session that every form carries, and a same-origin check on every POST.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::super::AppState;
pub(super) use super::super::auth::random_token;
use super::super::auth::{ApiKeys, hash_key};

/// The cookie holding the session token.
pub(super) const COOKIE: &str = "stagewatch_session";
/// How long a session lasts: a working day.
pub(super) const LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// The signed-in session, put in the request's extensions by [`require_session`].
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) csrf_token: String,
    token_hash: String,
}

impl Session {
    pub(super) fn token_hash(&self) -> &str {
        &self.token_hash
    }
}

/// What the console's middleware needs.
#[derive(Clone, Debug)]
pub(super) struct Gate {
    pub(super) state: AppState,
    pub(super) keys: ApiKeys,
}

pub(super) fn token_hash(token: &str) -> String {
    hash_key(token)
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Equal strings, compared in constant time (over their hashes, so lengths leak nothing).
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    digest(a).ct_eq(&digest(b)).into()
}

pub(super) fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value of a new session; `Secure` when the request came over HTTPS (as a
/// proxy in front says with `X-Forwarded-Proto`).
pub(super) fn session_cookie(token: &str, headers: &HeaderMap) -> String {
    let secure = if came_over_https(headers) {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.num_seconds()
    )
}

pub(super) fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn came_over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Whether an unsafe request comes from the console's own pages. Browsers say where a request
/// comes from (`Sec-Fetch-Site`, `Origin`); a form posted from another site is refused even
/// before its missing CSRF token would be.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // No browser hints at all: a non-browser client, which carries no ambient cookie
        // risk; the CSRF token still has to match.
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
        }
    }
}

/// Middleware on every console page but sign-in and the assets: a valid session, or a redirect
/// to sign-in (pages) or `401` (the live feed's fetches); a cross-site POST is `403`.
pub(super) async fn require_session(
    State(gate): State<Gate>,
    mut request: Request,
    next: Next,
) -> Response {
    let unsafe_method = request.method() != Method::GET && request.method() != Method::HEAD;
    if unsafe_method && !same_origin(request.headers()) {
        return refused_cross_site();
    }
    let session = match session_token(request.headers()) {
        Some(token) => {
            let hash = token_hash(&token);
            match gate
                .state
                .store
                .console_session(&hash, gate.state.clock.now())
                .await
            {
                Ok(Some(stored)) if gate.keys.accepts_hash(&stored.key_hash) => Some(Session {
                    csrf_token: stored.csrf_token,
                    token_hash: hash,
                }),
                Ok(_) => None,
                Err(error) => {
                    tracing::error!(%error, "could not read a console session");
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the store is not available",
                    )
                        .into_response();
                }
            }
        }
        None => None,
    };
    let Some(session) = session else {
        if request.uri().path().starts_with("/ui/events/live") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let next_page = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let target = format!(
            "/ui/sign-in?next={}",
            super::integrations::urlencode(&next_page)
        );
        return Redirect::to(&target).into_response();
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

pub(super) fn refused_cross_site() -> Response {
    super::super::refused::Refusal::CrossSiteForm.count();
    super::forbidden("Cross-site form posts are refused.")
}

/// A submitted console form whose CSRF token matched the session's.
#[derive(Debug)]
pub(super) struct CheckedForm {
    pub(super) session: Session,
    pub(super) fields: HashMap<String, String>,
}

impl CheckedForm {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl<S: Send + Sync> FromRequest<S> for CheckedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let session = request
            .extensions()
            .get::<Session>()
            .cloned()
            .ok_or_else(|| StatusCode::UNAUTHORIZED.into_response())?;
        let axum::Form(fields): axum::Form<HashMap<String, String>> =
            axum::Form::from_request(request, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let presented = fields.get("csrf").map(String::as_str).unwrap_or_default();
        if !same_secret(presented, &session.csrf_token) {
            super::super::refused::Refusal::CsrfTokenWrong.count();
            return Err(super::forbidden(
                "The form's CSRF token does not match this session: reload the page and try again.",
            ));
        }
        Ok(Self { session, fields })
    }
}

/// Whether `next` is a console page to return to after signing in (never another site).
pub(super) fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| {
        (n.starts_with("/ui/") || *n == "/ui") && !n.contains("//") && !n.contains('\\')
    })
    .unwrap_or("/ui")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_pages_are_returned_to() {
        assert_eq!(safe_next(Some("/ui/events?types=x")), "/ui/events?types=x");
        assert_eq!(safe_next(Some("/ui")), "/ui");
        assert_eq!(safe_next(Some("https://evil.example/ui")), "/ui");
        assert_eq!(safe_next(Some("//evil.example/ui/")), "/ui");
        assert_eq!(safe_next(Some("/ui/..//evil.example")), "/ui");
        assert_eq!(safe_next(None), "/ui");
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers), "no browser hints");
        headers.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(same_origin(&headers));
    }

    #[test]
    fn the_session_cookie_is_strict_and_http_only() {
        let mut headers = HeaderMap::new();
        let cookie = session_cookie("ab", &headers);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(!cookie.contains("Secure"));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(session_cookie("ab", &headers).contains("; Secure"));
    }

    #[test]
    fn session_tokens_are_read_from_the_cookie_header() {
        let token = random_token();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={token}").parse().unwrap(),
        );
        assert_eq!(session_token(&headers).as_deref(), Some(token.as_str()));
        headers.insert(header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(session_token(&headers), None);
    }
}
