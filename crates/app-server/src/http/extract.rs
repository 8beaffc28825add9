//! Extractors whose failures are problem bodies naming the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// A JSON body; a wrong content type, malformed JSON or a wrong field is a 4xx problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let bytes = json_body(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body, checked as [`ApiJson`] checks it, kept with its bytes: what an
/// `Idempotency-Key` fingerprints.
#[derive(Debug, Clone)]
pub struct RawJson<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for RawJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let raw = json_body(request, state).await?;
        let value = parse_json(&raw)?;
        Ok(RawJson { value, raw })
    }
}

/// The body of a request that says it is JSON (`application/json` or `…+json`), within the
/// body limit.
async fn json_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Problem> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or_default().trim();
            mime == "application/json" || mime.ends_with("+json")
        });
    if !is_json {
        return Err(Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "Body too large",
                    "the request body is larger than the server accepts (api.body_limit_bytes)",
                )
            } else {
                Problem::malformed(rejection.body_text())
            }
        })
}

/// The deepest nesting of arrays and objects a JSON body may have. No request of the API needs
/// more than a few levels; the limit keeps a body of `[[[[…` from costing a deep recursion.
pub const MAX_JSON_DEPTH: usize = 32;

/// Whether `bytes`, read as JSON, nests arrays and objects deeper than `max` (strings, with
/// their escapes, are skipped). Malformed JSON is left to the parser.
pub fn nests_deeper_than(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses JSON, naming the path of the offending field; too deep a body is refused first.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if nests_deeper_than(bytes, MAX_JSON_DEPTH) {
        super::refused::Refusal::JsonTooDeep.count();
        return Err(Problem::new(
            axum::http::StatusCode::BAD_REQUEST,
            "json-too-deep",
            "JSON nested too deeply",
            format!("the body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep"),
        ));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Problem::malformed(format!("the body is not valid JSON: {inner}"))
        } else if path == "." {
            Problem::validation("body", inner.to_string())
        } else {
            Problem::validation(path, inner.to_string())
        }
    })
}

/// Query parameters; a wrong one is a 4xx problem naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let detail = error.into_inner().to_string();
                let field = if path == "." {
                    detail
                        .split('`')
                        .nth(1)
                        .map_or_else(|| "query".to_owned(), str::to_owned)
                } else {
                    path
                };
                Problem::validation(field, detail)
            })
    }
}

/// An optional whole number of seconds. JSON has one number type, so `300.0` is the integer 300
/// to JSON Schema (and to many clients' serializers); serde's `u64` would refuse it.
pub fn whole_seconds<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(float) if float.fract() == 0.0 && (0.0..1.8e19).contains(&float) => {
            Ok(Some(float as u64))
        }
        _ => Err(D::Error::custom(format!(
            "{number} is not a whole, non-negative number of seconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings_only() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(nests_deeper_than(deep.as_bytes(), MAX_JSON_DEPTH));
        let at_limit = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(!nests_deeper_than(at_limit.as_bytes(), MAX_JSON_DEPTH));
        let quoted = format!(r#"{{"a": "{}\"{}"}}"#, "[".repeat(40), "{".repeat(40));
        assert!(!nests_deeper_than(quoted.as_bytes(), MAX_JSON_DEPTH));
        let sequential = "[[1],[2],{\"a\":{\"b\":[]}}]".repeat(50);
        assert!(!nests_deeper_than(sequential.as_bytes(), 4));
        assert!(nests_deeper_than(sequential.as_bytes(), 3));
    }
}
