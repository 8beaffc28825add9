//! The product's actions on a tracked application, through Kombo: move it to another stage of
//! its job, reject it; and the rejection reasons a rejection names. The use cases are
//! `domain::actions`; these handlers translate HTTP to them and their errors to problems.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::actions::{ActionError, ActionOutcome, Actions};
use domain::{ApplicationId, IntegrationId, StageId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::applications::{ApplicationView, require_json};
use super::extract::parse_json;
use super::idempotency::{WriteFailure, run_once};
use super::integrations::parse_integration_id;
use super::problem::Problem;

/// Where to move an application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveToStage {
    /// A Kombo stage id from the pipeline of the application's job
    /// (`GET /v1/integrations/{integration_id}/jobs`).
    pub stage_id: String,
}

/// Why an application is rejected.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectApplication {
    /// The `id` of one of `GET /v1/integrations/{integration_id}/rejection-reasons`.
    pub rejection_reason_id: String,
    /// A note for the ATS, where it keeps one.
    pub note: Option<String>,
}

/// What an action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    /// The application as stagewatch now holds it.
    pub application: ApplicationView,
    /// The events recorded for the change, as the feed and webhooks carry them, each with
    /// `"origin": "stagewatch"`. Empty when the application was already there, or when the
    /// change could not be stored at once (the next sync pass records it then).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<domain::ChangeEvent>,
}

/// One of the ATS's rejection reasons.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionReasonView {
    /// Kombo's id: send it as `rejection_reason_id`.
    pub id: String,
    pub remote_id: Option<String>,
    pub name: Option<String>,
}

/// The ATS's rejection reasons.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionReasonList {
    pub reasons: Vec<RejectionReasonView>,
}

fn parse_application_id(raw: String) -> Result<ApplicationId, Problem> {
    ApplicationId::parse(raw).map_err(|e| Problem::validation("application_id", e.to_string()))
}

async fn require_registered(state: &AppState, integration: &IntegrationId) -> Result<(), Problem> {
    match state.store.integration(integration).await? {
        Some(_) => Ok(()),
        None => Err(Problem::not_found(format!(
            "integration {integration} is not registered"
        ))),
    }
}

/// An action's failure as a problem: refused (the key may act again) or of unknown effect.
fn failure(
    integration: &IntegrationId,
    action: &'static str,
    field: &'static str,
    error: ActionError,
) -> WriteFailure {
    metrics::counter!("stagewatch_actions_total", "action" => action, "result" => "failed")
        .increment(1);
    match error {
        ActionError::UnknownApplication(id) => WriteFailure::Refused(Problem::not_found(format!(
            "application {id} of {integration} is not tracked"
        ))),
        stage @ ActionError::StageNotInPipeline { .. } => {
            WriteFailure::Refused(Problem::validation(field, stage.to_string()))
        }
        ActionError::Refused(error) => WriteFailure::Refused(error.into()),
        ActionError::Store(error) => WriteFailure::Refused(error.into()),
        ActionError::OutcomeUnknown(error) => {
            tracing::warn!(integration = %integration, action, %error, "Kombo's answer to an action was lost");
            WriteFailure::OutcomeUnknown(Problem::new(
                StatusCode::BAD_GATEWAY,
                "kombo-outcome-unknown",
                "Outcome unknown",
                format!(
                    "Kombo's answer was lost ({error}): the ATS may have made the change. If it \
                     did, the next sync pass announces it. A retry with the same \
                     Idempotency-Key is not sent again"
                ),
            ))
        }
    }
}

/// The answer to an action that Kombo accepted.
fn accepted(
    integration: &IntegrationId,
    action: &'static str,
    outcome: ActionOutcome,
) -> (StatusCode, serde_json::Value) {
    metrics::counter!("stagewatch_actions_total", "action" => action, "result" => "done")
        .increment(1);
    if let Some(error) = &outcome.not_recorded {
        tracing::warn!(
            integration = %integration,
            application = %outcome.application.id,
            action,
            %error,
            "the ATS made the change but it could not be stored; the next sync pass records it"
        );
    }
    let result = ActionResult {
        application: ApplicationView::from(&outcome.application),
        events: outcome.events,
    };
    (
        StatusCode::OK,
        serde_json::to_value(&result).expect("serializable"),
    )
}

/// Moves an application to another stage of its job, in the ATS through Kombo.
///
/// The stage must be in the pipeline of the application's job (checked before Kombo is asked,
/// against a fresh pipeline when the stored one lacks it). The move is recorded at once as
/// `application.stage_changed` with `"origin": "stagewatch"`; the sync pass that later reads it
/// from Kombo adds no second event. Send an `Idempotency-Key` to make a retry safe.
#[utoipa::path(put, path = "/v1/integrations/{integration_id}/applications/{application_id}/stage", tag = "applications",
    params(
        ("integration_id" = String, Path, description = "Kombo integration id"),
        ("application_id" = String, Path, description = "Kombo application id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried move return the first result"),
    ),
    request_body = MoveToStage,
    responses(
        (status = 200, body = ActionResult),
        (status = 404, description = "The integration is not registered, or the application is not tracked", body = super::problem::ProblemBody),
        (status = 409, description = "The Idempotency-Key is in use, or its first request's outcome is unknown; or the integration is not ready or needs attention", body = super::problem::ProblemBody),
        (status = 422, description = "Invalid input, a stage not in the job's pipeline (`validation-failed`), or an ATS that cannot move applications (`unsupported-by-ats`)", body = super::problem::ProblemBody),
        (status = 429, body = super::problem::ProblemBody),
        (status = 502, description = "Kombo failed; `kombo-outcome-unknown` when its answer was lost and the move may have been made", body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn move_to_stage(
    State(state): State<AppState>,
    Path((integration_id, application_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let application = parse_application_id(application_id)?;
    require_json(&headers)?;
    let input: MoveToStage = parse_json(&body)?;
    let stage = StageId::parse(input.stage_id)
        .map_err(|e| Problem::validation("stage_id", e.to_string()))?;
    require_registered(&state, &integration).await?;
    let scope = format!("move-application:{integration}:{application}");
    run_once(
        &state,
        &headers,
        scope,
        &body,
        "moved the application",
        || async {
            let actions = Actions::new(state.ats.as_ref(), &state.store);
            let outcome = actions
                .move_to_stage(&integration, &application, &stage, state.clock.now())
                .await
                .map_err(|error| failure(&integration, "move", "stage_id", error))?;
            Ok(accepted(&integration, "move", outcome))
        },
    )
    .await
}

/// Rejects an application in the ATS through Kombo, with one of the ATS's rejection reasons.
///
/// Recorded at once as `application.outcome_changed` and `application.declined` with
/// `"origin": "stagewatch"`; the sync pass that later reads it from Kombo adds no second event.
/// Send an `Idempotency-Key` to make a retry safe.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/applications/{application_id}/reject", tag = "applications",
    params(
        ("integration_id" = String, Path, description = "Kombo integration id"),
        ("application_id" = String, Path, description = "Kombo application id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried rejection return the first result"),
    ),
    request_body = RejectApplication,
    responses(
        (status = 200, body = ActionResult),
        (status = 404, description = "The integration is not registered, or the application is not tracked", body = super::problem::ProblemBody),
        (status = 409, description = "The Idempotency-Key is in use, or its first request's outcome is unknown; or the integration is not ready or needs attention", body = super::problem::ProblemBody),
        (status = 422, description = "Invalid input, a reason the ATS does not list (`validation-failed`), or an ATS that cannot reject (`unsupported-by-ats`)", body = super::problem::ProblemBody),
        (status = 429, body = super::problem::ProblemBody),
        (status = 502, description = "Kombo failed; `kombo-outcome-unknown` when its answer was lost and the rejection may have been made", body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn reject(
    State(state): State<AppState>,
    Path((integration_id, application_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let application = parse_application_id(application_id)?;
    require_json(&headers)?;
    let input: RejectApplication = parse_json(&body)?;
    if input.rejection_reason_id.trim().is_empty() {
        return Err(Problem::validation(
            "rejection_reason_id",
            "must not be empty",
        ));
    }
    require_registered(&state, &integration).await?;
    // Not tracked is the answer before the reason is looked up (and Kombo asked for the list).
    if state
        .store
        .application(&integration, &application)
        .await?
        .is_none()
    {
        return Err(Problem::not_found(format!(
            "application {application} of {integration} is not tracked"
        )));
    }
    let scope = format!("reject-application:{integration}:{application}");
    run_once(
        &state,
        &headers,
        scope,
        &body,
        "rejected the application",
        || async {
            let reason = state
                .rejection_reasons
                .find(state.ats.as_ref(), &integration, &input.rejection_reason_id)
                .await
                .map_err(|error| WriteFailure::Refused(error.into()))?
                .ok_or_else(|| {
                    Problem::validation(
                        "rejection_reason_id",
                        format!(
                            "`{}` is not one of this ATS's rejection reasons; see \
                         GET /v1/integrations/{integration}/rejection-reasons",
                            input.rejection_reason_id
                        ),
                    )
                })?;
            let actions = Actions::new(state.ats.as_ref(), &state.store);
            let outcome = actions
                .reject(
                    &integration,
                    &application,
                    &reason,
                    input.note.clone(),
                    state.clock.now(),
                )
                .await
                .map_err(|error| failure(&integration, "reject", "rejection_reason_id", error))?;
            Ok(accepted(&integration, "reject", outcome))
        },
    )
    .await
}

/// The ATS's rejection reasons, as Kombo lists them (kept for ten minutes).
#[utoipa::path(get, path = "/v1/integrations/{integration_id}/rejection-reasons", tag = "applications",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    responses(
        (status = 200, body = RejectionReasonList),
        (status = 404, body = super::problem::ProblemBody),
        (status = 409, description = "The integration is not ready or needs attention", body = super::problem::ProblemBody),
        (status = 422, description = "The ATS has no rejection reasons to read (`unsupported-by-ats`)", body = super::problem::ProblemBody),
        (status = 429, body = super::problem::ProblemBody),
        (status = 502, body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn rejection_reasons(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
) -> Result<Json<RejectionReasonList>, Problem> {
    let integration = parse_integration_id(integration_id)?;
    require_registered(&state, &integration).await?;
    let reasons = state
        .rejection_reasons
        .get(state.ats.as_ref(), &integration)
        .await?;
    Ok(Json(RejectionReasonList {
        reasons: reasons
            .iter()
            .map(|reason| RejectionReasonView {
                id: reason.id.clone(),
                remote_id: reason.remote_id.as_ref().map(ToString::to_string),
                name: reason.name.clone(),
            })
            .collect(),
    }))
}
