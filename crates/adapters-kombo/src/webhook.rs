//! The webhooks Kombo sends: signature verification and parsing.
//!
//! Kombo signs each delivery with `X-Kombo-Signature`: HMAC-SHA256 over the raw request body,
//! keyed with the environment's webhook secret, encoded as base64url without padding. There is
//! no timestamp, so replays can only be bounded by de-duplicating on the webhook `id`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::{IdError, IntegrationId, IntegrationStatus, SetupStatus};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::generated::webhooks;

/// The header carrying Kombo's signature.
pub const SIGNATURE_HEADER: &str = "X-Kombo-Signature";

/// The `data-changed` model names whose changes can show in `GET /ats/applications` or in a
/// job's stages (Kombo's table of which models feed which endpoint).
pub const APPLICATION_MODELS: &[&str] = &[
    "ats_applications",
    "ats_application_stages",
    "ats_candidates",
    "ats_interviews",
    "ats_jobs",
    "ats_join_candidates_tags",
    "ats_join_jobs_application_stages",
    "ats_offers",
    "ats_tags",
];

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac
}

/// The `X-Kombo-Signature` value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, body).finalize().into_bytes())
}

/// Whether `signature` is Kombo's signature of exactly these bytes; compared in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(expected) = URL_SAFE_NO_PAD.decode(signature.trim().trim_end_matches('=')) else {
        return false;
    };
    mac(secret, body).verify_slice(&expected).is_ok()
}

/// Why a webhook body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook body is not a Kombo webhook: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the webhook names an invalid integration id: {0}")]
    InvalidIntegration(#[from] IdError),
}

/// A webhook from Kombo, reduced to what stagewatch acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KomboWebhook {
    /// Kombo's data for the integration changed in these models.
    DataChanged {
        id: String,
        integration_id: IntegrationId,
        models: Vec<String>,
    },
    /// The integration's state changed (active, invalid, inactive) or its setup progressed.
    IntegrationStateChanged {
        id: String,
        integration_id: IntegrationId,
        status: IntegrationStatus,
        setup_status: SetupStatus,
        qa_status: String,
        updated_at: DateTime<Utc>,
    },
    /// A customer connected their ATS.
    IntegrationCreated {
        id: String,
        integration_id: IntegrationId,
        tool: String,
    },
    /// A customer's connection was deleted.
    IntegrationDeleted {
        id: String,
        integration_id: IntegrationId,
        tool: String,
        deleted_at: DateTime<Utc>,
    },
    /// A webhook type stagewatch does not act on (`sync-finished`, or one Kombo adds later).
    Ignored { id: String, kind: String },
}

impl KomboWebhook {
    /// The delivery's id, to de-duplicate replays.
    pub fn id(&self) -> &str {
        match self {
            Self::DataChanged { id, .. }
            | Self::IntegrationStateChanged { id, .. }
            | Self::IntegrationCreated { id, .. }
            | Self::IntegrationDeleted { id, .. }
            | Self::Ignored { id, .. } => id,
        }
    }

    /// Whether the webhook may mean an application changed.
    pub fn concerns_applications(&self) -> bool {
        match self {
            Self::DataChanged { models, .. } => models
                .iter()
                .any(|model| APPLICATION_MODELS.contains(&model.as_str())),
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

fn integration_status(state: &webhooks::IntegrationState) -> IntegrationStatus {
    match state {
        webhooks::IntegrationState::Active => IntegrationStatus::Active,
        webhooks::IntegrationState::Invalid => IntegrationStatus::Invalid,
        webhooks::IntegrationState::Inactive => IntegrationStatus::Inactive,
        webhooks::IntegrationState::Other(_) => IntegrationStatus::Unknown,
    }
}

fn setup_status(status: &webhooks::SetupStatus) -> SetupStatus {
    match status {
        webhooks::SetupStatus::Incomplete => SetupStatus::Incomplete,
        webhooks::SetupStatus::FinalSyncPending => SetupStatus::FinalSyncPending,
        webhooks::SetupStatus::Completed => SetupStatus::Completed,
        webhooks::SetupStatus::Other(_) => SetupStatus::Unknown,
    }
}

fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T, WebhookError> {
    Ok(serde_json::from_slice(body)?)
}

/// Parses a webhook body. Verify its signature first.
pub fn parse_webhook(body: &[u8]) -> Result<KomboWebhook, WebhookError> {
    let envelope: Envelope = read(body)?;
    Ok(match envelope.kind.as_str() {
        "data-changed" => {
            let webhook: webhooks::DataChangedWebhook = read(body)?;
            KomboWebhook::DataChanged {
                id: webhook.id,
                integration_id: IntegrationId::parse(webhook.data.integration_id)?,
                models: webhook
                    .data
                    .changed_models
                    .into_iter()
                    .map(|model| String::from(model.name))
                    .collect(),
            }
        }
        "integration-state-changed" => {
            let webhook: webhooks::IntegrationStateChangedWebhook = read(body)?;
            KomboWebhook::IntegrationStateChanged {
                id: webhook.id,
                integration_id: IntegrationId::parse(webhook.data.integration_id)?,
                status: integration_status(&webhook.data.state),
                setup_status: setup_status(&webhook.data.setup_status),
                qa_status: String::from(webhook.data.qa_status),
                updated_at: webhook.data.updated_at,
            }
        }
        "integration-created" => {
            let webhook: webhooks::IntegrationCreatedWebhook = read(body)?;
            KomboWebhook::IntegrationCreated {
                id: webhook.id,
                integration_id: IntegrationId::parse(webhook.data.id)?,
                tool: webhook.data.tool,
            }
        }
        "integration-deleted" => {
            let webhook: webhooks::IntegrationDeletedWebhook = read(body)?;
            KomboWebhook::IntegrationDeleted {
                id: webhook.id,
                integration_id: IntegrationId::parse(webhook.data.id)?,
                tool: webhook.data.tool,
                deleted_at: webhook.data.deleted_at,
            }
        }
        _ => KomboWebhook::Ignored {
            id: envelope.id,
            kind: envelope.kind,
        },
    })
}

#[cfg(test)]
mod tests;
