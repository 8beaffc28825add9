//! Every API error is an RFC 9457 `application/problem+json` body with a stable `type`, a human
//! `detail` and, for validation errors, the offending `field`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::ports::{AtsError, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// Base of every problem `type`.
pub const PROBLEM_BASE: &str = "https://stagewatch.dev/problems/";

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// The last segment of the `type` URI, e.g. `validation`.
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub field: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    /// Stable URI naming the kind of problem, e.g. `https://stagewatch.dev/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// The offending field (JSON path, query parameter or header) of a validation error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            field: None,
        }
    }

    /// 400 or 422 for an input that cannot be used, naming the field.
    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid input",
                detail,
            )
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    pub fn conflict(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, "Conflict", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("{PROBLEM_BASE}{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), problem = self.slug, detail = %self.detail, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), problem = self.slug, detail = %self.detail, "request refused");
        }
        let mut response = (self.status, axum::Json(self.body())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UnknownIntegration(id) => {
                Self::not_found(format!("integration {id} is not registered"))
            }
            StoreError::Unavailable(reason) => {
                Self::unavailable(format!("the database is unavailable: {reason}"))
            }
            StoreError::FeedPruned {
                after,
                pruned_through,
            } => Self::new(
                StatusCode::GONE,
                "feed-pruned",
                "Gone",
                format!(
                    "events up to sequence {pruned_through} were removed by the feed's \
                     retention (retention.feed_max_age) and your cursor `after={after}` is \
                     before them: read on with `after={pruned_through}` (the oldest kept \
                     event) and reconcile what was missed from /v1/applications"
                ),
            ),
            // Only a sync pass writes under a lease; an API request never meets this.
            lost @ StoreError::LeaseLost { .. } => Self::conflict("lease-lost", lost.to_string()),
            StoreError::Corrupt(reason) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                format!("stored data is inconsistent: {reason}"),
            ),
        }
    }
}

impl From<AtsError> for Problem {
    fn from(error: AtsError) -> Self {
        let detail = error.to_string();
        match error {
            AtsError::RateLimited { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "kombo-rate-limited",
                "Kombo rate limit",
                detail,
            ),
            AtsError::NotReady { .. } => Self::new(
                StatusCode::CONFLICT,
                "integration-not-ready",
                "Integration not ready",
                detail,
            ),
            AtsError::Unsupported { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported-by-ats",
                "Not supported by this ATS",
                detail,
            ),
            AtsError::NeedsAttention { .. } => Self::new(
                StatusCode::CONFLICT,
                "integration-needs-attention",
                "Integration needs attention",
                detail,
            ),
            AtsError::Unauthorized { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                "kombo-unauthorized",
                "Kombo refused stagewatch's API key",
                detail,
            ),
            AtsError::Transient { .. }
            | AtsError::CursorExpired { .. }
            | AtsError::Malformed { .. }
            | AtsError::Unreachable { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                "kombo-unavailable",
                "Kombo is unavailable",
                detail,
            ),
            AtsError::Rejected { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rejected-by-kombo",
                "Refused by Kombo",
                detail,
            ),
            AtsError::AlreadyExists { .. } => Self::conflict("application-already-exists", detail),
            AtsError::NotFound { .. } => Self::not_found(detail),
        }
    }
}

/// Middleware: error responses made outside the handlers (the body limit, the timeout, a method
/// the route does not have) become problem bodies too, so that every error a client sees has
/// the same shape.
pub async fn bare_errors_as_problems(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // Whether the limit layer or a handler's extractor noticed it.
        super::refused::Refusal::BodyTooLarge.count();
    }
    // Problems already, and the console's own error pages.
    let is_answered = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/problem+json")
                || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_answered {
        return response;
    }
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            status,
            "body-too-large",
            "Body too large",
            "the request body is larger than the server accepts (api.body_limit_bytes)",
        ),
        StatusCode::REQUEST_TIMEOUT => Problem::new(
            status,
            "timeout",
            "Request timeout",
            "the request took longer than the server allows (api.request_timeout)",
        ),
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            status,
            "method-not-allowed",
            "Method not allowed",
            "this route does not accept that method; see /openapi.json",
        ),
        _ => Problem::new(
            status,
            "http-error",
            "HTTP error",
            status.canonical_reason().unwrap_or("error").to_owned(),
        ),
    };
    let mut replaced = problem.into_response();
    // Keep headers such as `Allow` that tell the client what to do.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}
