//! Outbound Kombo webhooks (`data-changed`, `integration-state-changed`), signed as Kombo signs
//! them: `X-Kombo-Signature` = base64url (no padding) of HMAC-SHA256 over the raw body.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::config::WebhookTarget;
use crate::faults::Fault;
use crate::server::Shared;
use crate::wire::timestamp;
use crate::world::{Notice, World};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Kombo-Signature";

/// One webhook to post.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    integration: String,
    body: Vec<u8>,
}

/// Kombo's signature of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

pub(crate) fn delivery(world: &mut World, notice: &Notice) -> Delivery {
    let id = world.random.kombo_id();
    let now = world.clock.peek();
    let (integration, payload) = match notice {
        Notice::DataChanged {
            integration,
            models,
        } => {
            let integration = &world.integrations[*integration];
            let changed_models: Vec<_> =
                models.iter().map(|name| json!({ "name": name })).collect();
            (
                integration.id.clone(),
                json!({
                    "id": id,
                    "type": "data-changed",
                    "data": {
                        "integration_id": integration.id,
                        "integration_tool": integration.tool,
                        "integration_category": "ATS",
                        "changed_models": changed_models,
                    }
                }),
            )
        }
        Notice::StateChanged { integration } => {
            let integration = &world.integrations[*integration];
            (
                integration.id.clone(),
                json!({
                    "id": id,
                    "type": "integration-state-changed",
                    "data": {
                        "integration_tool": integration.tool,
                        "integration_id": integration.id,
                        "integration_category": "ATS",
                        "end_user": {
                            "organization_name": integration.id.split('-').next().unwrap_or("customer"),
                            "creator_email": null,
                            "origin_id": integration.id,
                        },
                        "qa_status": "PASSED",
                        "setup_status": if integration.ready { "COMPLETED" } else { "FINAL_SYNC_PENDING" },
                        "state": "ACTIVE",
                        "updated_at": timestamp(now),
                    }
                }),
            )
        }
    };
    Delivery {
        integration,
        body: serde_json::to_vec(&payload).expect("JSON values serialize"),
    }
}

/// Posts deliveries in order until the sandbox stops. Failed posts are logged, not retried:
/// Kombo documents no retry policy, and consumers must cope with lost webhooks anyway.
pub(crate) async fn send_all(
    mut deliveries: mpsc::UnboundedReceiver<Delivery>,
    target: WebhookTarget,
    shared: Arc<Shared>,
) {
    let client = reqwest::Client::new();
    while let Some(delivery) = deliveries.recv().await {
        let duplicate = shared
            .faults()
            .fire(None, Some(&delivery.integration), false)
            == Some(Fault::DuplicateWebhook);
        let signature = sign(&target.secret, &delivery.body);
        for _ in 0..if duplicate { 2 } else { 1 } {
            let sent = client
                .post(&target.url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .body(delivery.body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => tracing::warn!(status = %response.status(), "webhook rejected"),
                Err(error) => tracing::warn!(%error, "webhook not delivered"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_unpadded_base64url_hmac_sha256() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") from RFC 4231-style
        // published vectors: f7bc83f4...d8.
        let signature = sign("key", b"The quick brown fox jumps over the lazy dog");
        let bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
        let hex: String = bytes
            .iter()
            .fold(String::new(), |hex, byte| hex + &format!("{byte:02x}"));
        assert_eq!(
            hex,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert!(!signature.contains('='));
    }
}
