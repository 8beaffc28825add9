//! The client over real HTTP against a scripted local server: what it sends, and how it reacts
//! to each kind of answer.

mod stub;

use std::time::Duration;

use adapters_kombo::{KomboClient, KomboConfig};
use chrono::{TimeZone, Utc};
use domain::ports::{
    ApplicationQuery, AtsError, AtsGateway, ImportRequest, NewApplication, NewCandidate, PageCursor,
};
use domain::{ApplicationId, IntegrationId, JobId, Outcome, StageId};
use serde_json::json;
use stub::{Reply, Stub};

fn integration() -> IntegrationId {
    IntegrationId::parse("greenhouse:8Aq").unwrap()
}

fn client(stub: &Stub, max_retries: u32) -> KomboClient {
    let mut config = KomboConfig::new(stub.base_url(), "test-key".to_owned().into());
    config.max_retries = max_retries;
    config.initial_backoff = Duration::from_millis(5);
    config.requests_per_second = 1000;
    config.requests_per_second_per_integration = 1000;
    KomboClient::new(config).unwrap()
}

fn application(id: &str) -> serde_json::Value {
    json!({"id": id, "remote_id": format!("r-{id}"), "outcome": "PENDING",
           "current_stage_id": "s1", "job_id": "j1", "candidate_id": "c1",
           "changed_at": "2026-11-28T10:00:00Z",
           "current_stage": {"id": "s1", "remote_id": null, "name": "Applied", "status": "ACTIVE", "index": 0}})
}

fn page(ids: &[&str], next: Option<&str>) -> Reply {
    let results: Vec<_> = ids.iter().map(|id| application(id)).collect();
    Reply::json(
        200,
        &json!({"status": "success", "data": {"next": next, "results": results}}),
    )
}

fn kombo_error(status: u16, code: &str) -> Reply {
    Reply::json(
        status,
        &json!({"status": "error", "error": {"code": code, "title": null, "message": "from Kombo", "log_url": null}}),
    )
}

fn query_with_every_filter() -> ApplicationQuery {
    ApplicationQuery {
        updated_after: Some(Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()),
        include_deleted: true,
        page_size: 2,
        outcomes: vec![Outcome::Hired, Outcome::Declined],
        job_ids: vec![JobId::parse("j1").unwrap(), JobId::parse("j2").unwrap()],
        ..ApplicationQuery::default()
    }
}

#[tokio::test]
async fn pages_are_read_one_at_a_time_with_the_same_filters() {
    let stub = Stub::start(vec![page(&["a1", "a2"], Some("c2")), page(&["a3"], None)]).await;
    let client = client(&stub, 0);
    let query = query_with_every_filter();

    let first = client
        .fetch_applications(&integration(), &query, None)
        .await
        .unwrap();
    let second = client
        .fetch_applications(&integration(), &query, first.next.clone())
        .await
        .unwrap();

    let ids: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|a| a.id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["a1", "a2", "a3"]);
    assert_eq!(first.next, Some(PageCursor("c2".into())));
    assert_eq!(second.next, None);

    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v1/ats/applications");
        assert_eq!(request.authorization.as_deref(), Some("Bearer test-key"));
        assert_eq!(request.integration.as_deref(), Some("greenhouse:8Aq"));
        assert_eq!(
            request.param("updated_after"),
            Some("2026-11-28T10:00:00.000Z")
        );
        assert_eq!(request.param("include_deleted"), Some("true"));
        assert_eq!(request.param("outcomes"), Some("HIRED,DECLINED"));
        assert_eq!(request.param("job_ids"), Some("j1,j2"));
        assert_eq!(request.param("page_size"), Some("2"));
    }
    assert_eq!(seen[0].param("cursor"), None);
    assert_eq!(seen[1].param("cursor"), Some("c2"));
}

#[tokio::test]
async fn a_rate_limit_reports_kombos_wait_when_retries_are_spent() {
    let stub = Stub::start(vec![
        kombo_error(429, "PLATFORM.RATE_LIMIT_EXCEEDED").with_header("ratelimit-reset", "42"),
    ])
    .await;
    let error = client(&stub, 0)
        .fetch_applications(&integration(), &ApplicationQuery::default(), None)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        AtsError::RateLimited {
            retry_after: Some(Duration::from_secs(42))
        }
    );
}

#[tokio::test]
async fn a_rate_limited_read_is_retried_after_the_wait() {
    let stub = Stub::start(vec![
        kombo_error(429, "REMOTE.RATE_LIMIT_EXCEEDED").with_header("ratelimit-reset", "0"),
        page(&["a1"], None),
    ])
    .await;
    let page = client(&stub, 3)
        .fetch_applications(&integration(), &ApplicationQuery::default(), None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn a_server_error_is_retried_with_the_same_cursor() {
    let stub = Stub::start(vec![
        Reply::text(500, "internal error"),
        Reply::text(503, "<html>Service Unavailable</html>"),
        page(&["a3"], None),
    ])
    .await;
    let page = client(&stub, 3)
        .fetch_applications(
            &integration(),
            &query_with_every_filter(),
            Some(PageCursor("c2".into())),
        )
        .await
        .unwrap();
    assert_eq!(page.items[0].id.as_str(), "a3");
    let seen = stub.seen();
    assert_eq!(seen.len(), 3);
    // The retry asks for the very same page: nothing skipped, nothing repeated.
    assert!(seen.iter().all(|request| request.query == seen[0].query));
    assert_eq!(seen[2].param("cursor"), Some("c2"));
}

#[tokio::test]
async fn retries_stop_after_the_configured_count() {
    let stub = Stub::start(vec![Reply::text(503, "busy"); 5]).await;
    let error = client(&stub, 2)
        .fetch_applications(&integration(), &ApplicationQuery::default(), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "transient");
    assert_eq!(stub.seen().len(), 3);
}

#[tokio::test]
async fn a_body_that_cannot_be_decoded_is_malformed_and_not_retried() {
    let stub = Stub::start(vec![
        Reply::text(200, "<html>not JSON</html>"),
        page(&[], None),
    ])
    .await;
    let error = client(&stub, 3)
        .fetch_applications(&integration(), &ApplicationQuery::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AtsError::Malformed { excerpt, .. } if excerpt == "<html>not JSON</html>"),
        "{error:?}"
    );
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn an_ats_that_cannot_read_applications_is_unsupported() {
    let stub = Stub::start(vec![kombo_error(400, "INTEGRATION.MODEL_NOT_AVAILABLE")]).await;
    let error = client(&stub, 3)
        .fetch_applications(&integration(), &ApplicationQuery::default(), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "unsupported");
    assert_eq!(stub.seen().len(), 1);
}

fn new_application() -> NewApplication {
    let mut extra = serde_json::Map::new();
    extra.insert("source".into(), json!({"name": "stagewatch"}));
    NewApplication {
        job_id: JobId::parse("remote:42").unwrap(),
        candidate: NewCandidate {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email_address: "ada@example.com".into(),
            phone_number: None,
            company: None,
            title: None,
        },
        stage_id: Some(StageId::parse("s1").unwrap()),
        extra,
    }
}

#[tokio::test]
async fn create_sends_the_candidate_and_returns_the_created_application() {
    let created = json!({"status": "success", "data": application("new-1"),
                         "warnings": [{"message": "phone number dropped"}]});
    let stub = Stub::start(vec![Reply::json(200, &created)]).await;
    let snapshot = client(&stub, 3)
        .create_application(&integration(), &new_application())
        .await
        .unwrap();
    assert_eq!(snapshot.id.as_str(), "new-1");

    let seen = stub.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1/ats/jobs/remote:42/applications");
    assert_eq!(seen[0].integration.as_deref(), Some("greenhouse:8Aq"));
    assert_eq!(
        seen[0].body,
        Some(json!({
            "candidate": {"first_name": "Ada", "last_name": "Lovelace", "email_address": "ada@example.com"},
            "stage_id": "s1",
            "source": {"name": "stagewatch"}
        }))
    );
}

#[tokio::test]
async fn a_failed_create_is_never_sent_again() {
    let stub = Stub::start(vec![
        Reply::text(503, "<html>Service Unavailable</html>"),
        Reply::json(
            200,
            &json!({"status": "success", "data": application("dup"), "warnings": []}),
        ),
    ])
    .await;
    let error = client(&stub, 5)
        .create_application(&integration(), &new_application())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "transient");
    assert!(
        error.may_have_been_applied(),
        "a 5xx may come after the ATS acted"
    );
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn an_existing_application_is_its_own_error() {
    let stub = Stub::start(vec![kombo_error(400, "ATS.APPLICATION_ALREADY_EXISTS")]).await;
    let error = client(&stub, 5)
        .create_application(&integration(), &new_application())
        .await
        .unwrap_err();
    assert!(matches!(error, AtsError::AlreadyExists { .. }), "{error:?}");
}

#[tokio::test]
async fn move_and_reject_send_kombos_bodies() {
    let done = json!({"status": "success", "data": {}, "warnings": []});
    let stub = Stub::start(vec![Reply::json(200, &done), Reply::json(200, &done)]).await;
    let client = client(&stub, 0);
    let application = ApplicationId::parse("app-1").unwrap();
    client
        .move_application(&integration(), &application, &StageId::parse("s2").unwrap())
        .await
        .unwrap();
    client
        .reject_application(
            &integration(),
            &application,
            "reason-1",
            Some("not a fit".into()),
        )
        .await
        .unwrap();

    let seen = stub.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("PUT", "/v1/ats/applications/app-1/stage")
    );
    assert_eq!(seen[0].body, Some(json!({"stage_id": "s2"})));
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("POST", "/v1/ats/applications/app-1/reject")
    );
    assert_eq!(
        seen[1].body,
        Some(json!({"rejection_reason_id": "reason-1", "note": "not a fit"}))
    );
}

#[tokio::test]
async fn import_sends_the_tool_identifiers() {
    let stub = Stub::start(vec![Reply::json(
        200,
        &json!({"status": "success", "data": {"id": "app-7", "tracked_at": "2026-11-28T10:00:00Z",
                 "imported_id": {}}, "warnings": []}),
    )])
    .await;
    let mut identifiers = serde_json::Map::new();
    identifiers.insert("id_type".into(), json!("application_id"));
    identifiers.insert("application_id".into(), json!(123));
    let imported = client(&stub, 0)
        .import_tracked_application(
            &integration(),
            &ImportRequest {
                tracked_at: None,
                tool: "greenhouse".into(),
                identifiers,
            },
        )
        .await
        .unwrap();
    assert_eq!(imported.id.as_str(), "app-7");
    assert_eq!(
        stub.seen()[0].body,
        Some(
            json!({"greenhouse": {"id_type": "application_id", "application_id": 123},
                    "tracked_at": null})
        )
    );
}

#[tokio::test]
async fn integration_info_reads_status_and_coverage() {
    let stub = Stub::start(vec![Reply::json(
        200,
        &json!({"status": "success", "data": {
            "id": "greenhouse:8Aq", "tool": {"id": "greenhouse", "label": "Greenhouse"},
            "status": "ACTIVE", "setup_status": "FINAL_SYNC_PENDING", "data_expired_at": null,
            "read_models": [{"id": "ats_applications", "is_available": true, "coverage_status": "SUPPORTED",
                             "fields": [{"id": "outcome", "is_available": true, "coverage_status": "UNSUPPORTED"}]}]
        }}),
    )])
    .await;
    let info = client(&stub, 0)
        .integration_info(&integration())
        .await
        .unwrap();
    assert_eq!(
        info.setup_status,
        Some(domain::SetupStatus::FinalSyncPending)
    );
    assert_eq!(info.capabilities.outcome, domain::Support::Unsupported);
    assert_eq!(stub.seen()[0].path, "/v1/integrations/greenhouse:8Aq");
}

#[tokio::test]
async fn a_refused_api_key_is_unauthorized() {
    let stub = Stub::start(vec![kombo_error(401, "PLATFORM.AUTHENTICATION_INVALID")]).await;
    let error = client(&stub, 3).check_api_key().await.unwrap_err();
    assert!(matches!(error, AtsError::Unauthorized { .. }), "{error:?}");
    assert_eq!(stub.seen()[0].path, "/v1/check-api-key");
}

#[tokio::test]
async fn an_unreachable_server_is_unreachable_and_proves_nothing_was_written() {
    let stub = Stub::start(Vec::new()).await;
    let base = stub.base_url();
    drop(stub);
    let mut config = KomboConfig::new(base, "k".to_owned().into());
    config.max_retries = 1;
    config.initial_backoff = Duration::from_millis(1);
    let client = KomboClient::new(config).unwrap();
    let error = client
        .fetch_applications(&integration(), &ApplicationQuery::default(), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "unreachable");
    let error = client
        .create_application(&integration(), &new_application())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "unreachable");
    assert!(!error.may_have_been_applied(), "no connection, no create");
}

#[tokio::test]
async fn a_refused_cursor_is_reported_expired_and_not_retried() {
    let stub = Stub::start(vec![
        kombo_error(400, "PLATFORM.INPUT_INVALID"),
        page(&["a1"], None),
    ])
    .await;
    let error = client(&stub, 3)
        .fetch_applications(
            &integration(),
            &ApplicationQuery::default(),
            Some(PageCursor("expired".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "cursor_expired");
    assert!(
        !error.may_have_been_applied(),
        "a refused read changed nothing"
    );
    assert_eq!(
        stub.seen().len(),
        1,
        "the same cursor would be refused again"
    );
}

#[tokio::test]
async fn the_api_key_does_not_show_in_debug_output() {
    let stub = Stub::start(Vec::new()).await;
    let config = KomboConfig::new(stub.base_url(), "very-secret-key".to_owned().into());
    let client = KomboClient::new(config.clone()).unwrap();
    assert!(!format!("{config:?}").contains("very-secret-key"));
    assert!(!format!("{client:?}").contains("very-secret-key"));
}
