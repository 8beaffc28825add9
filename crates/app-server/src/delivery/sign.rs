//! Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`), made
//! by the `standardwebhooks` crate, and the format of the secrets they use.

use base64::Engine as _;
use standardwebhooks::Webhook;

/// A new signing secret: 24 random bytes, in Standard Webhooks' `whsec_<base64>` form.
pub fn generate_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The three headers of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: i64,
    /// `v1,<base64>`: one signature per secret given, space-separated.
    pub signature: String,
}

/// Signs `payload` with every secret given (the current one first).
pub fn sign(
    secrets: &[&str],
    message_id: &str,
    timestamp: i64,
    payload: &[u8],
) -> Result<SignedHeaders, standardwebhooks::WebhookError> {
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        signatures.push(Webhook::new(secret)?.sign(message_id, timestamp, payload)?);
    }
    Ok(SignedHeaders {
        id: message_id.to_owned(),
        timestamp,
        signature: signatures.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifies(secret: &str, signed: &SignedHeaders, payload: &[u8]) -> bool {
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", signed.id.parse().unwrap());
        headers.insert(
            "webhook-timestamp",
            signed.timestamp.to_string().parse().unwrap(),
        );
        headers.insert("webhook-signature", signed.signature.parse().unwrap());
        Webhook::new(secret)
            .unwrap()
            .verify(payload, &headers)
            .is_ok()
    }

    #[test]
    fn signatures_verify_with_the_standard_library_and_only_with_the_right_secret() {
        let secret = generate_secret();
        let other = generate_secret();
        let payload = br#"{"type":"application.hired"}"#;
        let now = chrono::Utc::now().timestamp();
        let signed = sign(&[&secret], "evt_1", now, payload).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", signed.id.parse().unwrap());
        headers.insert(
            "webhook-timestamp",
            signed.timestamp.to_string().parse().unwrap(),
        );
        headers.insert("webhook-signature", signed.signature.parse().unwrap());
        assert!(
            Webhook::new(&secret)
                .unwrap()
                .verify(payload, &headers)
                .is_ok()
        );
        assert!(
            Webhook::new(&other)
                .unwrap()
                .verify(payload, &headers)
                .is_err()
        );
        assert!(
            Webhook::new(&secret)
                .unwrap()
                .verify(b"{}", &headers)
                .is_err()
        );
    }

    #[test]
    fn a_rotation_signs_with_both_secrets_and_each_verifies() {
        let (new, old, other) = (generate_secret(), generate_secret(), generate_secret());
        let now = chrono::Utc::now().timestamp();
        let signed = sign(&[&new, &old], "evt_2", now, b"{}").unwrap();
        assert_eq!(signed.signature.split(' ').count(), 2);
        assert!(signed.signature.split(' ').all(|s| s.starts_with("v1,")));
        assert!(verifies(&new, &signed, b"{}"));
        assert!(verifies(&old, &signed, b"{}"));
        assert!(!verifies(&other, &signed, b"{}"));
    }

    #[test]
    fn an_unusable_secret_is_an_error() {
        assert!(sign(&["whsec_not base64!"], "evt_3", 1_700_000_000, b"{}").is_err());
    }
}
