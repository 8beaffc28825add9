//! Kombo's failures → the port's [`AtsError`]. Kombo's `error.code` decides; the HTTP status is
//! used only when the code is missing or unknown to this version, because Kombo has changed the
//! status of the same error before (the setup errors moved from 503 to 409).

use std::time::Duration;

use domain::ports::AtsError;
use reqwest::StatusCode;

use crate::generated::error::{ErrorCode, ErrorEnvelope};

/// Longest excerpt of a body kept for the log.
pub const EXCERPT_LIMIT: usize = 512;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KomboError {
    #[error("invalid Kombo configuration: {0}")]
    Config(String),
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// What the request was, as far as error mapping cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestKind {
    /// The request continued a pagination with a cursor.
    pub(crate) had_cursor: bool,
}

/// A failed request: the port error, and whether sending the same read again may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) error: AtsError,
    pub(crate) retryable: bool,
}

impl Failure {
    /// A failure a retry may cure when it is a rate limit or a transient fault.
    pub(crate) fn new(error: AtsError) -> Self {
        let retryable = matches!(
            error,
            AtsError::RateLimited { .. }
                | AtsError::Transient { .. }
                | AtsError::Unreachable { .. }
        );
        Self { error, retryable }
    }
}

/// The failure for a non-success answer.
pub(crate) fn from_response(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    request: RequestKind,
) -> Failure {
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
    // An expired cursor is not retryable: the same cursor would be refused again.
    Failure::new(map_envelope(status, retry_after, body, envelope, request))
}

fn map_envelope(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    envelope: Option<ErrorEnvelope>,
    request: RequestKind,
) -> AtsError {
    match envelope {
        Some(envelope) => {
            let message = envelope.error.message;
            match envelope.error.code {
                Some(code) if !matches!(code, ErrorCode::Other(_)) => {
                    from_code(&code, message, retry_after, request)
                }
                code => {
                    let code =
                        code.map_or_else(|| format!("HTTP_{}", status.as_u16()), String::from);
                    from_status(status, code, message, retry_after)
                }
            }
        }
        None => from_status(
            status,
            format!("HTTP_{}", status.as_u16()),
            excerpt(body),
            retry_after,
        ),
    }
}

/// The table of the adapter's documentation, one arm per Kombo code.
pub(crate) fn from_code(
    code: &ErrorCode,
    message: String,
    retry_after: Option<Duration>,
    request: RequestKind,
) -> AtsError {
    let code_name = code.as_str().to_owned();
    match code {
        ErrorCode::PlatformRateLimitExceeded
        | ErrorCode::RemoteRateLimitExceeded
        | ErrorCode::PlatformConcurrencyLimitExceeded => AtsError::RateLimited { retry_after },
        ErrorCode::IntegrationSetupSyncPending
        | ErrorCode::IntegrationSetupIncomplete
        | ErrorCode::IntegrationQaFailed => AtsError::NotReady {
            code: code_name,
            message,
        },
        ErrorCode::IntegrationModelNotAvailable
        | ErrorCode::IntegrationModelDisabled
        | ErrorCode::IntegrationActionNotAvailable
        | ErrorCode::IntegrationActionDisabled => AtsError::Unsupported {
            code: code_name,
            message,
        },
        ErrorCode::IntegrationInactive
        | ErrorCode::IntegrationAuthenticationInvalid
        | ErrorCode::PlatformIntegrationNotFound => AtsError::NeedsAttention {
            code: code_name,
            message,
        },
        ErrorCode::PlatformAuthenticationInvalid | ErrorCode::PlatformIpNotWhitelisted => {
            AtsError::Unauthorized { message }
        }
        ErrorCode::RemoteServiceUnavailable
        | ErrorCode::RemoteUnknownHttpError
        | ErrorCode::PlatformUnknownError
        | ErrorCode::PlatformTaskTimedOut => AtsError::Transient {
            reason: format!("{code_name}: {message}"),
        },
        // Kombo does not say how long a cursor lives; one it no longer accepts means the listing
        // must start over, which the sync pass does.
        ErrorCode::PlatformInputInvalid if request.had_cursor => AtsError::CursorExpired {
            message: format!("{code_name}: {message}"),
        },
        ErrorCode::AtsApplicationAlreadyExists => AtsError::AlreadyExists { message },
        ErrorCode::PlatformInputInvalid
        | ErrorCode::RemoteInputInvalid
        | ErrorCode::IntegrationPermissionMissing
        | ErrorCode::AtsJobClosed
        | ErrorCode::Other(_) => AtsError::Rejected {
            code: code_name,
            message,
        },
    }
}

/// The fallback when Kombo gave no code this version knows.
pub(crate) fn from_status(
    status: StatusCode,
    code: String,
    message: String,
    retry_after: Option<Duration>,
) -> AtsError {
    match status.as_u16() {
        429 => AtsError::RateLimited { retry_after },
        401 | 403 => AtsError::Unauthorized { message },
        404 => AtsError::NotFound { message },
        409 => AtsError::NotReady { code, message },
        500..=599 => AtsError::Transient {
            reason: format!("HTTP {status}: {message}"),
        },
        _ => AtsError::Rejected { code, message },
    }
}

/// A body Kombo sent with a success status that could not be decoded.
pub(crate) fn malformed(reason: impl std::fmt::Display, body: &[u8]) -> AtsError {
    AtsError::Malformed {
        reason: reason.to_string(),
        excerpt: excerpt(body),
    }
}

/// At most [`EXCERPT_LIMIT`] bytes of the body, cut on a character boundary.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= EXCERPT_LIMIT {
        return text.into_owned();
    }
    let mut end = EXCERPT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests;
