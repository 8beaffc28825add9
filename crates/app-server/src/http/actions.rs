//! The product's actions, through Kombo: create an application, import one into tracking, move
//! one to another stage of its job, reject one; and the rejection reasons a rejection names. The
//! use cases are `domain::actions`; these handlers translate HTTP to them and their errors to
//! problems.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::actions::{ActionError, ActionOutcome, Actions};
use domain::ports::{ImportRequest, NewApplication, NewCandidate};
use domain::{IntegrationId, JobId, StageId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::applications::{ApplicationView, parse_application_id};
use super::extract::{ApiJson, RawJson};
use super::idempotency::{WriteFailure, run_once};
use super::integrations::{load, parse_integration_id};
use super::problem::Problem;

/// The candidate of a new application.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateInput {
    pub first_name: String,
    pub last_name: String,
    pub email_address: String,
    pub phone_number: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
}

/// An application to create in the customer's ATS through Kombo.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    /// Kombo job id (or `remote:<ATS job id>`).
    pub job_id: String,
    pub candidate: CandidateInput,
    /// The stage to start in; the job's first stage when omitted.
    pub stage_id: Option<String>,
    /// Further fields of Kombo's request body (attachments, `remote_fields`,
    /// `screening_question_answers`, …), passed through unchanged.
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The answer to a create: the application Kombo created and its `application.created` event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApplication {
    /// Kombo's application id.
    pub id: String,
    pub integration_id: String,
    pub job_id: Option<String>,
    pub remote_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub current_stage: Option<serde_json::Value>,
    pub outcome: Option<String>,
    /// The `application.created` event, as the feed and webhooks carry it. `null` when a sync
    /// pass recorded the application first (its `application.discovered` event announced it),
    /// or when it could not be stored at once: the application exists in the ATS all the same,
    /// and the next sync pass announces it as `application.discovered`.
    #[schema(value_type = Option<Object>)]
    pub event: Option<serde_json::Value>,
}

fn validate_create(body: CreateApplication) -> Result<NewApplication, Problem> {
    let job_id =
        JobId::parse(body.job_id).map_err(|e| Problem::validation("job_id", e.to_string()))?;
    let stage_id = body
        .stage_id
        .map(StageId::parse)
        .transpose()
        .map_err(|e| Problem::validation("stage_id", e.to_string()))?;
    let c = body.candidate;
    for (field, value) in [
        ("candidate.first_name", &c.first_name),
        ("candidate.last_name", &c.last_name),
    ] {
        if value.trim().is_empty() {
            return Err(Problem::validation(field, "must not be empty"));
        }
    }
    let email = c.email_address.trim();
    if !email
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
    {
        return Err(Problem::validation(
            "candidate.email_address",
            format!("`{email}` is not an email address"),
        ));
    }
    Ok(NewApplication {
        job_id,
        candidate: NewCandidate {
            first_name: c.first_name.trim().to_owned(),
            last_name: c.last_name.trim().to_owned(),
            email_address: email.to_owned(),
            phone_number: c.phone_number,
            company: c.company,
            title: c.title,
        },
        stage_id,
        extra: body.extra.unwrap_or_default(),
    })
}

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

/// An action's failure as a problem: refused (the key may act again) or of unknown effect.
fn failure(
    integration: &IntegrationId,
    action: &'static str,
    field: &'static str,
    error: ActionError,
) -> WriteFailure {
    let may_have = match action {
        "create" => "the application may have been created",
        _ => "the ATS may have made the change",
    };
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
                    "Kombo's answer was lost ({error}): {may_have}. If so, the next sync pass \
                     announces it. A retry with the same Idempotency-Key is not sent again"
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

/// Creates an application in the ATS through Kombo and tracks it at once.
///
/// Kombo has no idempotency of its own: send an `Idempotency-Key` header (any unique string per
/// intended application) and a retried request returns the first answer instead of creating a
/// second application.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/applications", tag = "applications",
    params(
        ("integration_id" = String, Path, description = "Kombo integration id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first result"),
    ),
    request_body = CreateApplication,
    responses(
        (status = 201, body = CreatedApplication),
        (status = 404, body = super::problem::ProblemBody),
        (status = 409, description = "Already exists in the ATS; or the Idempotency-Key is in use, or its first request's outcome is unknown", body = super::problem::ProblemBody),
        (status = 422, body = super::problem::ProblemBody),
        (status = 502, description = "Kombo failed; `kombo-outcome-unknown` when its answer was lost and the application may exist", body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn create(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    RawJson { value: input, raw }: RawJson<CreateApplication>,
) -> Result<Response, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let application = validate_create(input)?;
    load(&state, &integration).await?;
    let scope = format!("create-application:{integration}");
    run_once(
        &state,
        &headers,
        scope,
        &raw,
        "created the application",
        || async {
            let actions = Actions::new(state.ats.as_ref(), &state.store);
            let created = actions
                .create(&integration, &application, state.clock.now())
                .await
                .map_err(|error| {
                    if matches!(error, ActionError::OutcomeUnknown(_)) {
                        metrics::counter!("stagewatch_create_outcome_unknown_total").increment(1);
                    }
                    failure(&integration, "create", "job_id", error)
                })?;
            metrics::counter!("stagewatch_actions_total", "action" => "create", "result" => "done")
                .increment(1);
            if let Some(error) = &created.not_recorded {
                tracing::warn!(
                    integration = %integration,
                    application = %created.snapshot.id,
                    %error,
                    "could not store a created application; the next sync pass records it"
                );
            }
            let snapshot = &created.snapshot;
            let answer = CreatedApplication {
                id: snapshot.id.to_string(),
                integration_id: integration.to_string(),
                job_id: snapshot.job_id.as_ref().map(ToString::to_string),
                remote_id: snapshot.remote_id.as_ref().map(ToString::to_string),
                current_stage: snapshot
                    .current_stage
                    .as_ref()
                    .map(|s| serde_json::to_value(s.to_ref()).expect("serializable")),
                outcome: snapshot.outcome.as_ref().map(|o| o.as_str().to_owned()),
                event: created
                    .event
                    .map(|event| serde_json::to_value(&event).expect("serializable")),
            };
            Ok((
                StatusCode::CREATED,
                serde_json::to_value(&answer).expect("serializable"),
            ))
        },
    )
    .await
}

/// An existing ATS application to track (Kombo's import-tracked-application).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportApplication {
    /// The tool key of Kombo's body, e.g. `greenhouse`.
    pub tool: String,
    /// The identifiers for that tool, including `id_type`.
    #[schema(value_type = Object)]
    pub identifiers: serde_json::Map<String, serde_json::Value>,
    /// When the application was handed to the ATS; now when omitted.
    pub tracked_at: Option<DateTime<Utc>>,
}

/// The answer to an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedApplication {
    /// Kombo's application id.
    pub id: String,
    pub tracked_at: Option<DateTime<Utc>>,
    pub message: String,
}

/// Starts tracking an application that already exists in the ATS; its data (and its
/// `application.discovered` event) arrives with the next sync pass, which starts at once.
#[utoipa::path(post, path = "/v1/integrations/{integration_id}/applications/import", tag = "applications",
    params(("integration_id" = String, Path, description = "Kombo integration id")),
    request_body = ImportApplication,
    responses(
        (status = 202, body = ImportedApplication),
        (status = 404, body = super::problem::ProblemBody),
        (status = 422, body = super::problem::ProblemBody),
        (status = 502, body = super::problem::ProblemBody),
    ),
    security(("api_key" = [])))]
pub(super) async fn import(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    ApiJson(body): ApiJson<ImportApplication>,
) -> Result<(StatusCode, Json<ImportedApplication>), Problem> {
    let integration = parse_integration_id(integration_id)?;
    if body.tool.trim().is_empty() {
        return Err(Problem::validation("tool", "must not be empty"));
    }
    load(&state, &integration).await?;
    let request = ImportRequest {
        tracked_at: body.tracked_at,
        tool: body.tool,
        identifiers: body.identifiers,
    };
    let imported = Actions::new(state.ats.as_ref(), &state.store)
        .import(&integration, request, state.clock.now())
        .await
        .map_err(|error| failure(&integration, "import", "identifiers", error).into_problem())?;
    metrics::counter!("stagewatch_actions_total", "action" => "import", "result" => "done")
        .increment(1);
    if state
        .store
        .make_due(&integration, state.clock.now())
        .await?
    {
        state.sync_waker.notify_one();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ImportedApplication {
            id: imported.id.to_string(),
            tracked_at: imported.tracked_at,
            message: "tracked; its data arrives with the sync pass that starts now".to_owned(),
        }),
    ))
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
    RawJson { value: input, raw }: RawJson<MoveToStage>,
) -> Result<Response, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let application = parse_application_id(application_id)?;
    let stage = StageId::parse(input.stage_id)
        .map_err(|e| Problem::validation("stage_id", e.to_string()))?;
    load(&state, &integration).await?;
    let scope = format!("move-application:{integration}:{application}");
    run_once(
        &state,
        &headers,
        scope,
        &raw,
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
    RawJson { value: input, raw }: RawJson<RejectApplication>,
) -> Result<Response, Problem> {
    let integration = parse_integration_id(integration_id)?;
    let application = parse_application_id(application_id)?;
    if input.rejection_reason_id.trim().is_empty() {
        return Err(Problem::validation(
            "rejection_reason_id",
            "must not be empty",
        ));
    }
    load(&state, &integration).await?;
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
        &raw,
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
    load(&state, &integration).await?;
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
