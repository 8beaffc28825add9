//! API keys: bearer tokens checked against configured SHA-256 hashes, in constant time.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use super::refused::Refusal;

/// The hashes of the accepted API keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    hashes: Vec<[u8; 32]>,
}

impl ApiKeys {
    /// From hex SHA-256 hashes (validated by the configuration).
    pub fn from_hex(hashes: &[String]) -> Self {
        Self {
            hashes: hashes.iter().filter_map(|hex| decode_hex(hex)).collect(),
        }
    }

    /// Whether `key` is accepted. Every configured hash is compared, in constant time, so the
    /// time taken says nothing about which key came close.
    pub fn accepts(&self, key: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.hashes
            .iter()
            .fold(subtle::Choice::from(0), |found, hash| {
                found | hash.ct_eq(&digest)
            })
            .into()
    }

    /// Whether the key with this hex SHA-256 hash is (still) configured, in constant time: a
    /// console session ends when its key is removed.
    pub fn accepts_hash(&self, hex_hash: &str) -> bool {
        let Some(digest) = decode_hex(hex_hash) else {
            return false;
        };
        self.hashes
            .iter()
            .fold(subtle::Choice::from(0), |found, hash| {
                found | hash.ct_eq(&digest)
            })
            .into()
    }
}

/// The hex SHA-256 hash of an API key, as `api.key_hashes` holds it.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// A new random API key (`sw_` and a [`random_token`]).
pub fn generate_key() -> String {
    format!("sw_{}", random_token())
}

/// 32 random bytes in hex.
pub(super) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Middleware: refuses requests without an accepted `Authorization: Bearer` key.
pub async fn require_api_key(
    State(keys): State<ApiKeys>,
    request: Request,
    next: Next,
) -> Result<Response, Problem> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        None => {
            Refusal::ApiKeyMissing.count();
            Err(Problem::unauthorized(
                "send your API key as `Authorization: Bearer <key>`",
            ))
        }
        Some(key) if keys.accepts(key) => Ok(next.run(request).await),
        Some(_) => {
            Refusal::ApiKeyWrong.count();
            metrics::counter!("stagewatch_api_rejected_keys_total").increment(1);
            Err(Problem::unauthorized("the API key is not accepted"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_the_configured_keys() {
        let keys = ApiKeys::from_hex(&[hash_key("alpha"), hash_key("beta")]);
        assert!(keys.accepts("alpha"));
        assert!(keys.accepts("beta"));
        assert!(!keys.accepts("gamma"));
        assert!(!keys.accepts(""));
        assert!(!ApiKeys::default().accepts("alpha"));
    }

    #[test]
    fn generated_keys_differ_and_hash_to_hex() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with("sw_"));
        let hash = hash_key(&a);
        assert_eq!(hash.len(), 64);
        assert!(ApiKeys::from_hex(&[hash]).accepts(&a));
    }
}
