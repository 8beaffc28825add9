//! The layer every `/v1` request passes: counts it, enforces the rate limit and the action
//! concurrency limit, holds the answer for the configured answer time, injects faults and adds
//! Kombo's `ratelimit-*` headers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::KomboError;
use crate::faults::{Endpoint, Fault};
use crate::rate_window::Admission;
use crate::server::Shared;

pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(endpoint) = Endpoint::classify(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    shared.count(endpoint);
    let admission = shared.admit();
    if !admission.allowed {
        return with_rate_limit_headers(
            KomboError::rate_limited(admission.reset_secs).into_response(),
            admission,
        );
    }
    let integration = match endpoint {
        Endpoint::Integration => request.uri().path().rsplit('/').next().map(str::to_owned),
        _ => request
            .headers()
            .get("x-integration-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    let has_cursor = request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair.starts_with("cursor=")));

    let action_slot = match (&integration, endpoint.is_action()) {
        (Some(integration), true) => {
            if !shared.action_started(integration) {
                return with_rate_limit_headers(
                    KomboError::concurrency_limited().into_response(),
                    admission,
                );
            }
            Some(integration.clone())
        }
        _ => None,
    };
    let answer_time = shared.answer_time();
    if !answer_time.is_zero() {
        tokio::time::sleep(answer_time).await;
    }
    let fault = shared
        .faults()
        .fire(Some(endpoint), integration.as_deref(), has_cursor);
    let response = match fault {
        None | Some(Fault::DuplicateWebhook) => next.run(request).await,
        Some(Fault::RateLimited { retry_after_secs }) => {
            KomboError::rate_limited(retry_after_secs).into_response()
        }
        Some(Fault::Status(status)) => KomboError::server(status).into_response(),
        Some(Fault::ExpiredCursor) => KomboError::expired_cursor().into_response(),
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::ConnectionDrop) => dropped_connection(),
        Some(Fault::TruncatedBody) => truncated(next.run(request).await).await,
    };
    if let Some(integration) = action_slot {
        shared.action_finished(&integration);
    }
    with_rate_limit_headers(response, admission)
}

/// The window's account, unless the answer set its own (an injected 429 says 0 remaining).
fn with_rate_limit_headers(mut response: Response, admission: Admission) -> Response {
    let headers = response.headers_mut();
    headers
        .entry("ratelimit-limit")
        .or_insert(HeaderValue::from(admission.limit));
    headers
        .entry("ratelimit-remaining")
        .or_insert(HeaderValue::from(admission.remaining));
    headers
        .entry("ratelimit-reset")
        .or_insert(HeaderValue::from(admission.reset_secs));
    response
}

/// A body that fails before its first byte: the server aborts the connection without a
/// complete response.
fn dropped_connection() -> Response {
    let body = Body::from_stream(futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault: connection drop",
        ))
    }));
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1024_u64));
    response
}

/// Announces the full length, sends half the body, then aborts the connection.
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return dropped_connection();
    };
    let half = bytes.slice(..bytes.len() / 2);
    let stream = futures::stream::iter([
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault: truncated body",
        )),
    ]);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, Body::from_stream(stream))
}
