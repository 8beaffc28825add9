//! Kombo's error envelope: `{"status": "error", "error": {code, title, message, log_url}}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered the way Kombo answers it.
#[derive(Debug, Clone)]
pub(crate) struct KomboError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) title: &'static str,
    pub(crate) message: String,
    pub(crate) rate_limit_reset: Option<u64>,
}

impl KomboError {
    fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            message: message.into(),
            rate_limit_reset: None,
        }
    }

    pub(crate) fn input_invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "PLATFORM.INPUT_INVALID",
            "Invalid input",
            message,
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "PLATFORM.INPUT_INVALID",
            "Not found",
            message,
        )
    }

    pub(crate) fn authentication_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "PLATFORM.AUTHENTICATION_INVALID",
            "Authentication invalid",
            "The API key in the Authorization header is missing or invalid.",
        )
    }

    pub(crate) fn integration_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "PLATFORM.INTEGRATION_NOT_FOUND",
            "Integration not found",
            format!("No integration with the ID \"{id}\" exists in this environment."),
        )
    }

    pub(crate) fn setup_sync_pending() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "INTEGRATION.SETUP_SYNC_PENDING",
            "Initial sync pending",
            "The integration's initial sync has not finished yet.",
        )
    }

    pub(crate) fn model_not_available(model: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "INTEGRATION.MODEL_NOT_AVAILABLE",
            "Model not available",
            format!("The model \"{model}\" is not available for this integration's ATS."),
        )
    }

    pub(crate) fn action_not_available(action: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "INTEGRATION.ACTION_NOT_AVAILABLE",
            "Action not available",
            format!("The action \"{action}\" is not available for this integration's ATS."),
        )
    }

    pub(crate) fn job_closed() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ATS.JOB_CLOSED",
            "Job closed",
            "The job is closed.",
        )
    }

    pub(crate) fn application_already_exists() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ATS.APPLICATION_ALREADY_EXISTS",
            "Application already exists",
            "The candidate has already applied to this job.",
        )
    }

    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "PLATFORM.RATE_LIMIT_EXCEEDED",
            "Rate limit exceeded",
            "You have exceeded the rate limit. Please retry later.",
        );
        error.rate_limit_reset = Some(retry_after_secs);
        error
    }

    pub(crate) fn concurrency_limited() -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "PLATFORM.CONCURRENCY_LIMIT_EXCEEDED",
            "Concurrency limit exceeded",
            "More than 30 actions are in flight for this integration.",
        );
        error.rate_limit_reset = Some(1);
        error
    }

    pub(crate) fn expired_cursor() -> Self {
        Self::input_invalid("The cursor has expired. Restart pagination without a cursor.")
    }

    /// A server-side failure with the code Kombo uses for that status.
    pub(crate) fn server(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, title) = match status.as_u16() {
            502 => ("REMOTE.UNKNOWN_HTTP_ERROR", "Remote error"),
            503 => ("REMOTE.SERVICE_UNAVAILABLE", "Service unavailable"),
            504 => ("PLATFORM.TASK_TIMED_OUT", "Task timed out"),
            _ => ("PLATFORM.UNKNOWN_ERROR", "Unknown error"),
        };
        Self::new(
            status,
            code,
            title,
            format!("The request failed with status {}.", status.as_u16()),
        )
    }
}

impl IntoResponse for KomboError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "error": {
                "code": self.code,
                "title": self.title,
                "message": self.message,
                "log_url": format!("https://app.kombo.dev/logs?code={}", self.code),
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(reset) = self.rate_limit_reset {
            let headers = response.headers_mut();
            headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("ratelimit-reset", HeaderValue::from(reset));
        }
        response
    }
}
