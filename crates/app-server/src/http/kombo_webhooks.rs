//! `POST /v1/kombo/webhooks`: Kombo's webhooks. Verified on the raw body, de-duplicated by
//! webhook id, answered quickly: the work they cause (a sync pass) runs in the workers.
//!
//! The id is recorded as seen only after the webhook was handled: when handling fails, the
//! answer is an error and Kombo's redelivery is handled again instead of being dropped as a
//! duplicate. Every effect is idempotent (registering, making due, a status stamped with
//! Kombo's time and an event id derived from the webhook id), so two deliveries racing each
//! other do no harm.

use adapters_kombo::webhook::{
    APPLICATION_MODELS, KomboWebhook, SIGNATURE_HEADER, parse_webhook, verify_signature,
};
use adapters_postgres::{NewIntegration, Registered, StatusApplied};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::event::StatusChange;
use domain::{ChangeEvent, EventKind, IntegrationId, IntegrationStatus};

use super::AppState;
use super::problem::Problem;
use super::refused::Refusal;

fn count(outcome: &'static str) {
    metrics::counter!("stagewatch_kombo_webhooks_total", "outcome" => outcome).increment(1);
}

/// Receives one Kombo webhook.
#[utoipa::path(post, path = "/v1/kombo/webhooks", tag = "kombo",
    request_body(content = Object, description = "A Kombo webhook (`data-changed`, `integration-state-changed`, `integration-created`, `integration-deleted`), signed with `X-Kombo-Signature`"),
    responses(
        (status = 204, description = "Accepted (or already seen)"),
        (status = 401, description = "Missing or forged signature", body = super::problem::ProblemBody),
        (status = 400, description = "Not a Kombo webhook", body = super::problem::ProblemBody),
    ))]
pub(super) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    if state.kombo_webhook_secret.is_empty() {
        count("refused_unconfigured");
        Refusal::KomboWebhooksUnconfigured.count();
        return Err(Problem::unauthorized(
            "Kombo webhooks are refused: kombo.webhook_secret is not configured",
        ));
    }
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        count("unsigned");
        Refusal::KomboSignatureMissing.count();
        return Err(Problem::unauthorized(
            "the X-Kombo-Signature header is missing",
        ));
    };
    if !verify_signature(
        state.kombo_webhook_secret.expose().as_bytes(),
        &body,
        signature,
    ) {
        count("forged");
        Refusal::KomboSignatureForged.count();
        tracing::warn!("refused a Kombo webhook with a wrong signature");
        return Err(Problem::unauthorized(
            "the X-Kombo-Signature does not match the body",
        ));
    }
    let webhook = match parse_webhook(&body) {
        Ok(webhook) => webhook,
        Err(error) => {
            count("unreadable");
            return Err(Problem::malformed(format!(
                "not a Kombo webhook stagewatch reads: {error}"
            )));
        }
    };
    let now = state.clock.now();
    if state.store.kombo_webhook_seen(webhook.id()).await? {
        count("duplicate");
        return Ok(StatusCode::NO_CONTENT);
    }
    let webhook_id = webhook.id().to_owned();
    if let Err(problem) = handle(&state, webhook, &webhook_id, now).await {
        count("failed");
        tracing::warn!(webhook_id = %webhook_id, detail = %problem.detail, "a Kombo webhook could not be handled; Kombo will redeliver it");
        return Err(problem);
    }
    state.store.record_kombo_webhook(&webhook_id, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn handle(
    state: &AppState,
    webhook: KomboWebhook,
    webhook_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    match webhook {
        KomboWebhook::DataChanged {
            integration_id: id,
            models,
            ..
        } => {
            let concerns_applications = models
                .iter()
                .any(|model| APPLICATION_MODELS.contains(&model.as_str()));
            if concerns_applications && state.store.make_due(&id, now).await? {
                state.sync_waker.notify_one();
                count("sync_requested");
            } else {
                count("ignored");
            }
        }
        KomboWebhook::IntegrationStateChanged {
            integration_id: id,
            status,
            updated_at,
            ..
        } => {
            let outcome = set_status(state, &id, status, Some(updated_at), webhook_id, now).await?;
            count(if outcome == StatusApplied::Stale {
                "stale"
            } else {
                "status_changed"
            });
        }
        KomboWebhook::IntegrationCreated {
            integration_id: id,
            tool,
            ..
        } => {
            // A customer connected a new ATS: track it, so that applications created in it are
            // followed from the start.
            let registered = state
                .store
                .register_integration(
                    &NewIntegration {
                        tool: Some(tool)
                            .filter(|t| !t.is_empty())
                            .or_else(|| id.tool().map(str::to_owned)),
                        id: id.clone(),
                        label: None,
                        poll_interval: None,
                    },
                    now,
                )
                .await?;
            if matches!(registered, Registered::Created(_)) {
                state.sync_waker.notify_one();
            }
            set_status(state, &id, IntegrationStatus::Active, None, webhook_id, now).await?;
            count("integration_created");
        }
        KomboWebhook::IntegrationDeleted {
            integration_id: id,
            deleted_at,
            ..
        } => {
            set_status(
                state,
                &id,
                IntegrationStatus::Deleted,
                Some(deleted_at),
                webhook_id,
                now,
            )
            .await?;
            count("integration_deleted");
        }
        KomboWebhook::Ignored { .. } => count("ignored"),
    }
    Ok(())
}

/// Records Kombo's new status of an integration with an `integration.status_changed` event
/// when it changed, unless a state Kombo stamped later was applied before. Webhooks for
/// integrations stagewatch does not track are ignored.
async fn set_status(
    state: &AppState,
    id: &IntegrationId,
    status: IntegrationStatus,
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
    webhook_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<StatusApplied, Problem> {
    let Some(record) = state.store.integration(id).await? else {
        return Ok(StatusApplied::Unknown);
    };
    // The same status still records Kombo's time, so that an older state arriving later
    // is recognised as older.
    let events = if record.status == Some(status) {
        Vec::new()
    } else {
        vec![ChangeEvent::for_integration(
            id,
            EventKind::StatusChanged(StatusChange {
                from: record.status,
                to: status,
            }),
            &format!("kombo-webhook:{webhook_id}"),
            now,
        )]
    };
    let applied = state
        .store
        .set_status(id, status, updated_at, events)
        .await?;
    if applied == StatusApplied::Stale {
        tracing::info!(integration = %id, ?status, ?updated_at, "dropped an integration state older than the one applied");
    }
    Ok(applied)
}
