//! `Idempotency-Key` for the writes that go to the ATS (create, move, reject). Kombo has no
//! idempotency of its own, so a retried request with the same key gets the first answer back
//! instead of acting twice; a request whose effect is unknown (Kombo's answer was lost) keeps
//! its key from ever acting again.

use std::future::Future;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::problem::Problem;

/// The header that makes a write safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Why a write failed: refused (nothing happened, the key may be used again), or with its
/// effect unknown (the ATS may have acted, so the key must never act again).
#[derive(Debug)]
pub(super) enum WriteFailure {
    Refused(Problem),
    OutcomeUnknown(Problem),
}

impl From<Problem> for WriteFailure {
    fn from(problem: Problem) -> Self {
        Self::Refused(problem)
    }
}

impl WriteFailure {
    pub(super) fn into_problem(self) -> Problem {
        match self {
            Self::Refused(problem) | Self::OutcomeUnknown(problem) => problem,
        }
    }
}

/// The request's `Idempotency-Key`, if it sent one.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| Problem::validation("Idempotency-Key", "must be printable ASCII"))?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(Problem::validation(
            "Idempotency-Key",
            "must be 1 to 255 characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Runs `write` once per `Idempotency-Key` within `scope` (the operation and its target): a
/// retry with the same key and body gets the stored answer (`Idempotent-Replayed: true`), the
/// same key with another body is refused, and a key whose first request's effect is unknown is
/// refused with `unknown_effect` saying what may have happened. Without a key, `write` runs
/// as is.
pub(super) async fn run_once<W, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    scope: String,
    body: &[u8],
    unknown_effect: &str,
    write: W,
) -> Result<Response, Problem>
where
    W: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), WriteFailure>>,
{
    let Some(key) = idempotency_key(headers)? else {
        let (status, answer) = write().await.map_err(WriteFailure::into_problem)?;
        return Ok((status, Json(answer)).into_response());
    };
    let request_hash = format!("{:x}", Sha256::digest(body));
    let now = state.clock.now();
    match state
        .store
        .begin_idempotent(&scope, &key, &request_hash, now)
        .await?
    {
        adapters_postgres::IdempotencyClaim::Started => {}
        adapters_postgres::IdempotencyClaim::InFlight => {
            return Err(Problem::conflict(
                "idempotency-key-in-use",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .with_field("Idempotency-Key"));
        }
        adapters_postgres::IdempotencyClaim::Mismatch => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                "this Idempotency-Key was used with a different request body",
            )
            .with_field("Idempotency-Key"));
        }
        adapters_postgres::IdempotencyClaim::OutcomeUnknown { detail } => {
            return Err(Problem::conflict(
                "idempotency-outcome-unknown",
                format!(
                    "the first request with this Idempotency-Key may have {unknown_effect} \
                     ({detail}); it is not sent again. If the ATS made the change, the next sync \
                     pass announces it; to act anyway, use a new key"
                ),
            )
            .with_field("Idempotency-Key"));
        }
        adapters_postgres::IdempotencyClaim::Completed { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let body: serde_json::Value =
                serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
            let mut response = (status, Json(body)).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
    }
    match write().await {
        Ok((status, answer)) => {
            if let Err(error) = state
                .store
                .complete_idempotent(
                    &scope,
                    &key,
                    status.as_u16(),
                    &answer.to_string(),
                    state.clock.now(),
                )
                .await
            {
                // The key stays in flight, and after `IN_FLIGHT_ABANDONED_AFTER` its outcome is
                // unknown: never a second write.
                tracing::warn!(%error, "could not record the idempotent answer");
            }
            Ok((status, Json(answer)).into_response())
        }
        Err(WriteFailure::Refused(problem)) => {
            // Refused before anything happened: the key is free for a retry.
            if let Err(error) = state.store.abandon_idempotent(&scope, &key).await {
                tracing::warn!(%error, "could not release an idempotency key");
            }
            Err(problem)
        }
        Err(WriteFailure::OutcomeUnknown(problem)) => {
            if let Err(error) = state
                .store
                .mark_outcome_unknown(&scope, &key, &problem.detail)
                .await
            {
                tracing::warn!(%error, "could not record an unknown outcome");
            }
            Err(problem)
        }
    }
}
