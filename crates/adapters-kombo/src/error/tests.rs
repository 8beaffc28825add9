use std::time::Duration;

use domain::ports::AtsError;
use reqwest::StatusCode;
use serde_json::json;

use super::*;

const READ: RequestKind = RequestKind { had_cursor: false };
const NEXT_PAGE: RequestKind = RequestKind { had_cursor: true };

fn envelope(code: Option<&str>, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "status": "error",
        "error": {"code": code, "title": null, "message": message, "log_url": null}
    }))
    .unwrap()
}

fn mapped(status: u16, code: Option<&str>) -> Failure {
    from_response(
        StatusCode::from_u16(status).unwrap(),
        Some(Duration::from_secs(7)),
        &envelope(code, "msg"),
        READ,
    )
}

/// Every code Kombo documents, with the port error it becomes and whether a read is retried.
/// The HTTP status is deliberately the same (400) for all: the code alone decides.
#[test]
fn each_code_maps_to_its_port_error() {
    let rate_limited = AtsError::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
    };
    let not_ready = |code: &str| AtsError::NotReady {
        code: code.into(),
        message: "msg".into(),
    };
    let unsupported = |code: &str| AtsError::Unsupported {
        code: code.into(),
        message: "msg".into(),
    };
    let attention = |code: &str| AtsError::NeedsAttention {
        code: code.into(),
        message: "msg".into(),
    };
    let rejected = |code: &str| AtsError::Rejected {
        code: code.into(),
        message: "msg".into(),
    };
    let unauthorized = AtsError::Unauthorized {
        message: "msg".into(),
    };
    let transient = |code: &str| AtsError::Transient {
        reason: format!("{code}: msg"),
    };
    let table = [
        ("PLATFORM.RATE_LIMIT_EXCEEDED", rate_limited.clone(), true),
        ("REMOTE.RATE_LIMIT_EXCEEDED", rate_limited.clone(), true),
        ("PLATFORM.CONCURRENCY_LIMIT_EXCEEDED", rate_limited, true),
        (
            "INTEGRATION.SETUP_SYNC_PENDING",
            not_ready("INTEGRATION.SETUP_SYNC_PENDING"),
            false,
        ),
        (
            "INTEGRATION.SETUP_INCOMPLETE",
            not_ready("INTEGRATION.SETUP_INCOMPLETE"),
            false,
        ),
        (
            "INTEGRATION.QA_FAILED",
            not_ready("INTEGRATION.QA_FAILED"),
            false,
        ),
        (
            "INTEGRATION.MODEL_NOT_AVAILABLE",
            unsupported("INTEGRATION.MODEL_NOT_AVAILABLE"),
            false,
        ),
        (
            "INTEGRATION.MODEL_DISABLED",
            unsupported("INTEGRATION.MODEL_DISABLED"),
            false,
        ),
        (
            "INTEGRATION.ACTION_NOT_AVAILABLE",
            unsupported("INTEGRATION.ACTION_NOT_AVAILABLE"),
            false,
        ),
        (
            "INTEGRATION.ACTION_DISABLED",
            unsupported("INTEGRATION.ACTION_DISABLED"),
            false,
        ),
        (
            "INTEGRATION.INACTIVE",
            attention("INTEGRATION.INACTIVE"),
            false,
        ),
        (
            "INTEGRATION.AUTHENTICATION_INVALID",
            attention("INTEGRATION.AUTHENTICATION_INVALID"),
            false,
        ),
        (
            "PLATFORM.INTEGRATION_NOT_FOUND",
            attention("PLATFORM.INTEGRATION_NOT_FOUND"),
            false,
        ),
        (
            "PLATFORM.AUTHENTICATION_INVALID",
            unauthorized.clone(),
            false,
        ),
        ("PLATFORM.IP_NOT_WHITELISTED", unauthorized, false),
        (
            "REMOTE.SERVICE_UNAVAILABLE",
            transient("REMOTE.SERVICE_UNAVAILABLE"),
            true,
        ),
        (
            "REMOTE.UNKNOWN_HTTP_ERROR",
            transient("REMOTE.UNKNOWN_HTTP_ERROR"),
            true,
        ),
        (
            "PLATFORM.UNKNOWN_ERROR",
            transient("PLATFORM.UNKNOWN_ERROR"),
            true,
        ),
        (
            "PLATFORM.TASK_TIMED_OUT",
            transient("PLATFORM.TASK_TIMED_OUT"),
            true,
        ),
        (
            "PLATFORM.INPUT_INVALID",
            rejected("PLATFORM.INPUT_INVALID"),
            false,
        ),
        (
            "REMOTE.INPUT_INVALID",
            rejected("REMOTE.INPUT_INVALID"),
            false,
        ),
        (
            "INTEGRATION.PERMISSION_MISSING",
            rejected("INTEGRATION.PERMISSION_MISSING"),
            false,
        ),
        ("ATS.JOB_CLOSED", rejected("ATS.JOB_CLOSED"), false),
        (
            "ATS.APPLICATION_ALREADY_EXISTS",
            AtsError::AlreadyExists {
                message: "msg".into(),
            },
            false,
        ),
    ];
    for (code, expected, retryable) in table {
        let failure = mapped(400, Some(code));
        assert_eq!(failure.error, expected, "{code}");
        assert_eq!(failure.retryable, retryable, "{code}");
    }
}

#[test]
fn the_code_wins_over_the_status() {
    // Kombo moved the setup errors from 503 to 409; both must read as "not ready".
    for status in [503, 409] {
        assert!(matches!(
            mapped(status, Some("INTEGRATION.SETUP_SYNC_PENDING")).error,
            AtsError::NotReady { .. }
        ));
    }
    assert!(matches!(
        mapped(500, Some("ATS.JOB_CLOSED")).error,
        AtsError::Rejected { .. }
    ));
}

#[test]
fn without_a_code_the_status_decides() {
    for (status, kind) in [
        (429, "rate_limited"),
        (401, "unauthorized"),
        (403, "unauthorized"),
        (404, "not_found"),
        (409, "not_ready"),
        (500, "transient"),
        (503, "transient"),
        (400, "rejected"),
        (422, "rejected"),
    ] {
        assert_eq!(mapped(status, None).error.kind(), kind, "{status}");
    }
}

#[test]
fn an_unknown_code_falls_back_to_the_status_and_keeps_its_name() {
    let failure = mapped(400, Some("ATS.SOMETHING_NEW"));
    assert_eq!(
        failure.error,
        AtsError::Rejected {
            code: "ATS.SOMETHING_NEW".into(),
            message: "msg".into()
        }
    );
    assert_eq!(mapped(503, Some("PLATFORM.NEW")).error.kind(), "transient");
}

#[test]
fn a_load_balancer_page_is_transient_and_retryable() {
    let failure = from_response(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        b"<html>503 Service Unavailable</html>",
        READ,
    );
    assert_eq!(failure.error.kind(), "transient");
    assert!(failure.retryable);
}

#[test]
fn a_refused_cursor_restarts_the_pass_instead_of_retrying() {
    let failure = from_response(
        StatusCode::BAD_REQUEST,
        None,
        &envelope(Some("PLATFORM.INPUT_INVALID"), "cursor expired"),
        NEXT_PAGE,
    );
    assert_eq!(failure.error.kind(), "cursor_expired");
    assert!(!failure.retryable);
}

#[test]
fn excerpts_are_bounded_on_a_character_boundary() {
    let body = "é".repeat(EXCERPT_LIMIT);
    let excerpt = excerpt(body.as_bytes());
    assert!(excerpt.len() <= EXCERPT_LIMIT + '…'.len_utf8());
    assert!(excerpt.ends_with('…'));
    assert_eq!(super::excerpt(b"short"), "short");
}
