use chrono::TimeZone;
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"whsec-test";

fn body(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[test]
fn a_signature_matches_an_independent_computation() {
    // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231-style
    // well-known vector, in base64url without padding.
    let signature = sign(b"key", b"The quick brown fox jumps over the lazy dog");
    assert_eq!(signature, "97yD9DBThCSxMpjmqm-xQ-9NWaFJRhdZl0edvC0aPNg");
    assert!(!signature.contains('='));
}

#[test]
fn a_signature_verifies_only_for_the_same_secret_and_bytes() {
    let payload = br#"{"id":"w1","type":"data-changed"}"#;
    let signature = sign(SECRET, payload);
    assert!(verify_signature(SECRET, payload, &signature));
    assert!(verify_signature(SECRET, payload, &format!(" {signature}=")));
    assert!(!verify_signature(b"another secret", payload, &signature));
    assert!(!verify_signature(
        SECRET,
        br#"{"id":"w1","type":"data-changed" }"#,
        &signature
    ));
    assert!(!verify_signature(
        SECRET,
        payload,
        &signature[..signature.len() - 1]
    ));
    assert!(!verify_signature(SECRET, payload, "not base64 !"));
    assert!(!verify_signature(SECRET, payload, ""));
}

#[test]
fn data_changed_lists_its_models() {
    let webhook = parse_webhook(&body(&json!({
        "id": "w1",
        "type": "data-changed",
        "data": {
            "integration_id": "greenhouse:8Aq",
            "integration_tool": "greenhouse",
            "integration_category": "ATS",
            "changed_models": [{"name": "ats_applications"}, {"name": "ats_brand_new_model"}]
        }
    })))
    .unwrap();
    assert_eq!(
        webhook,
        KomboWebhook::DataChanged {
            id: "w1".into(),
            integration_id: IntegrationId::parse("greenhouse:8Aq").unwrap(),
            models: vec!["ats_applications".into(), "ats_brand_new_model".into()],
        }
    );
    assert!(webhook.concerns_applications());
    assert_eq!(webhook.id(), "w1");
}

#[test]
fn data_changed_for_other_models_does_not_concern_applications() {
    let webhook = parse_webhook(&body(&json!({
        "id": "w2", "type": "data-changed",
        "data": {"integration_id": "x:1", "integration_tool": "x", "integration_category": "ATS",
                 "changed_models": [{"name": "ats_users"}]}
    })))
    .unwrap();
    assert!(!webhook.concerns_applications());
}

#[test]
fn integration_state_changed_maps_state_and_setup() {
    let webhook = parse_webhook(&body(&json!({
        "id": "w3", "type": "integration-state-changed",
        "data": {
            "integration_tool": "greenhouse", "integration_id": "greenhouse:8Aq",
            "integration_category": "ATS",
            "end_user": {"organization_name": "Acme", "creator_email": null, "origin_id": null},
            "qa_status": "PASSED", "setup_status": "COMPLETED", "state": "INVALID",
            "updated_at": "2026-11-28T10:00:00Z"
        }
    })))
    .unwrap();
    assert_eq!(
        webhook,
        KomboWebhook::IntegrationStateChanged {
            id: "w3".into(),
            integration_id: IntegrationId::parse("greenhouse:8Aq").unwrap(),
            status: IntegrationStatus::Invalid,
            setup_status: SetupStatus::Completed,
            qa_status: "PASSED".into(),
            updated_at: Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap(),
        }
    );
}

#[test]
fn integration_created_and_deleted_name_the_integration() {
    let end_user = json!({"organization_name": "Acme", "creator_email": null, "origin_id": "c1"});
    let created = parse_webhook(&body(&json!({
        "id": "w4", "type": "integration-created",
        "data": {"id": "lever:9", "tool": "lever", "category": "ATS", "end_user": end_user}
    })))
    .unwrap();
    assert_eq!(
        created,
        KomboWebhook::IntegrationCreated {
            id: "w4".into(),
            integration_id: IntegrationId::parse("lever:9").unwrap(),
            tool: "lever".into(),
        }
    );
    let deleted = parse_webhook(&body(&json!({
        "id": "w5", "type": "integration-deleted",
        "data": {"id": "lever:9", "tool": "lever", "category": "ATS", "end_user": end_user,
                 "deleted_at": "2026-11-28T11:00:00Z"}
    })))
    .unwrap();
    assert!(matches!(
        deleted,
        KomboWebhook::IntegrationDeleted { ref tool, .. } if tool == "lever"
    ));
}

#[test]
fn other_webhook_types_are_ignored_not_refused() {
    let webhook = parse_webhook(&body(&json!({
        "id": "w6", "type": "sync-finished", "data": {"sync_state": "SUCCEEDED"}
    })))
    .unwrap();
    assert_eq!(
        webhook,
        KomboWebhook::Ignored {
            id: "w6".into(),
            kind: "sync-finished".into()
        }
    );
}

#[test]
fn broken_bodies_are_errors() {
    assert!(matches!(
        parse_webhook(b"not json"),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        parse_webhook(br#"{"id":"w7","type":"data-changed","data":{}}"#),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        parse_webhook(&body(&json!({
            "id": "w8", "type": "integration-created",
            "data": {"id": "", "tool": "x", "category": "ATS", "end_user": {}}
        }))),
        Err(WebhookError::InvalidIntegration(_))
    ));
}
