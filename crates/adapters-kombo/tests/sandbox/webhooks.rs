//! Webhooks the sandbox signs and sends, verified and parsed by the adapter.

use super::*;

const SECRET: &str = "whsec-sandbox-test";
const PENDING: &str = "hooli-greenhouse";

#[tokio::test]
async fn sandbox_webhooks_verify_and_parse_and_forgeries_do_not_verify() {
    let (url, received) = webhook_receiver().await;
    let sandbox = start(
        SandboxConfig::new("key")
            .with_seed(9)
            .with_integration(
                IntegrationConfig::new(FULL, "greenhouse", AtsProfile::Full).with_jobs(2, 3),
            )
            .with_integration(
                IntegrationConfig::new(PENDING, "greenhouse", AtsProfile::Full)
                    .with_jobs(1, 1)
                    .not_ready(),
            )
            .with_webhook(url, SECRET.to_owned()),
    )
    .await;
    let handle = sandbox.handle();
    assert!(!handle.advance(10).is_empty());
    handle.mark_ready(PENDING);

    let parsed_all = |deliveries: &[(axum::http::HeaderMap, axum::body::Bytes)]| {
        deliveries
            .iter()
            .filter_map(|(_, body)| webhook::parse_webhook(body).ok())
            .collect::<Vec<_>>()
    };
    let deliveries = wait_for(&received, |deliveries| {
        let parsed = parsed_all(deliveries);
        parsed
            .iter()
            .any(|w| matches!(w, KomboWebhook::DataChanged { .. }))
            && parsed
                .iter()
                .any(|w| matches!(w, KomboWebhook::IntegrationStateChanged { .. }))
    })
    .await;
    assert!(!deliveries.is_empty(), "no webhook arrived");

    for (headers, body) in &deliveries {
        let signature = headers
            .get(webhook::SIGNATURE_HEADER)
            .expect("signed")
            .to_str()
            .unwrap();
        assert!(webhook::verify_signature(
            SECRET.as_bytes(),
            body,
            signature
        ));
        assert!(!webhook::verify_signature(
            b"another-secret",
            body,
            signature
        ));
        let mut tampered = body.to_vec();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x01;
        assert!(!webhook::verify_signature(
            SECRET.as_bytes(),
            &tampered,
            signature
        ));
        let forged = webhook::sign(b"guessed", body);
        assert!(!webhook::verify_signature(SECRET.as_bytes(), body, &forged));
        assert_eq!(
            signature,
            kombo_sandbox::sign(SECRET, body),
            "the adapter and the sandbox sign alike"
        );
    }

    let parsed = parsed_all(&deliveries);
    assert_eq!(parsed.len(), deliveries.len(), "every delivery parses");
    let data_changed = parsed
        .iter()
        .find_map(|w| match w {
            KomboWebhook::DataChanged {
                integration_id,
                models,
                ..
            } => Some((integration_id, models)),
            _ => None,
        })
        .expect("a data-changed webhook");
    assert_eq!(data_changed.0.as_str(), FULL);
    assert!(!data_changed.1.is_empty());
    assert!(
        parsed
            .iter()
            .filter(|w| matches!(w, KomboWebhook::DataChanged { .. }))
            .all(KomboWebhook::concerns_applications)
    );
    let state = parsed
        .iter()
        .find(|w| matches!(w, KomboWebhook::IntegrationStateChanged { .. }))
        .expect("an integration-state-changed webhook");
    let KomboWebhook::IntegrationStateChanged {
        integration_id,
        status,
        setup_status,
        ..
    } = state
    else {
        unreachable!()
    };
    assert_eq!(integration_id.as_str(), PENDING);
    assert_eq!(*status, IntegrationStatus::Active);
    assert_eq!(*setup_status, SetupStatus::Completed);
}
