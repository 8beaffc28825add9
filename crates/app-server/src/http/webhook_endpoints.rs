//! `/v1/webhook-endpoints`: where the product wants events pushed, their deliveries and
//! attempts, and replays.

use adapters_postgres::{EndpointRecord, EndpointUpdate, NewEndpoint};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::event::EVENT_TYPES;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{ApiJson, ApiQuery};
use super::problem::Problem;
use super::refused::Refusal;
use crate::delivery::address::is_private_host;
use crate::delivery::sign::generate_secret;

/// An endpoint, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered; every type when empty.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&EndpointRecord> for EndpointView {
    fn from(e: &EndpointRecord) -> Self {
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret: shown once, when created or rotated.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

/// Endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// An endpoint to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// `https://…` (or `http://…`); loopback, private, link-local and other non-public
    /// addresses only with `webhooks.allow_private_urls`.
    pub url: String,
    pub description: Option<String>,
    /// Event types to deliver; every type when omitted or empty.
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// Changes to an endpoint; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `false` disables deliveries; `true` re-enables them.
    pub enabled: Option<bool>,
}

fn validate_url(raw: &str, allow_private: bool) -> Result<String, Problem> {
    let url = url::Url::parse(raw)
        .map_err(|e| Problem::validation("url", format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Problem::validation("url", "must be an http(s) URL"));
    }
    let Some(host) = url.host() else {
        return Err(Problem::validation("url", "must name a host"));
    };
    // Host names are checked again at every delivery, on the addresses they resolve to.
    if is_private_host(&host) && !allow_private {
        Refusal::PrivateWebhookUrl.count();
        return Err(Problem::validation(
            "url",
            "loopback, private, link-local and other non-public addresses are refused (set webhooks.allow_private_urls for development)",
        ));
    }
    // Where only public addresses are allowed, the exact shape the OpenAPI document states;
    // development servers take any http(s) URL (`localhost:3000`, an address literal).
    if !allow_private && let Some(problem) = super::webhook_url::shape_error(raw) {
        return Err(Problem::validation("url", format!("`{raw}` {problem}")));
    }
    Ok(url.to_string())
}

fn validate_types(types: &[String]) -> Result<(), Problem> {
    if let Some(unknown) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        return Err(Problem::validation(
            "event_types",
            format!(
                "unknown event type `{unknown}`; known types: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    Ok(())
}

async fn load(state: &AppState, id: &str) -> Result<EndpointRecord, Problem> {
    state
        .store
        .endpoint(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("webhook endpoint {id} does not exist")))
}

/// Creates an endpoint; the answer holds its secret, shown only this once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", request_body = CreateEndpoint,
    responses((status = 201, body = EndpointWithSecret), (status = 422, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), Problem> {
    let url = validate_url(&body.url, state.allow_private_webhook_urls)?;
    validate_types(&body.event_types)?;
    let record = state
        .store
        .create_endpoint(
            &NewEndpoint {
                url,
                description: body.description,
                event_types: body.event_types,
                secret: generate_secret(),
            },
            state.clock.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret {
            endpoint: EndpointView::from(&record),
            secret: record.secret.clone(),
        }),
    ))
}

/// Every endpoint.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 200, body = EndpointList)), security(("api_key" = [])))]
pub(super) async fn list(State(state): State<AppState>) -> Result<Json<EndpointList>, Problem> {
    let endpoints = state.store.list_endpoints().await?;
    Ok(Json(EndpointList {
        endpoints: endpoints.iter().map(EndpointView::from).collect(),
    }))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, Problem> {
    Ok(Json(EndpointView::from(&load(&state, &id).await?)))
}

/// Changes an endpoint's URL, event types or description, or disables / re-enables it.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path)), request_body = UpdateEndpoint,
    responses((status = 200, body = EndpointView), (status = 404, body = super::problem::ProblemBody), (status = 422, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> Result<Json<EndpointView>, Problem> {
    let url = body
        .url
        .as_deref()
        .map(|u| validate_url(u, state.allow_private_webhook_urls))
        .transpose()?;
    if let Some(types) = &body.event_types {
        validate_types(types)?;
    }
    let now = state.clock.now();
    let update = EndpointUpdate {
        url,
        description: body.description.map(Some),
        event_types: body.event_types,
        enabled: body.enabled.filter(|enabled| *enabled),
    };
    let record = state
        .store
        .update_endpoint(&id, &update, now)
        .await?
        .ok_or_else(|| Problem::not_found(format!("webhook endpoint {id} does not exist")))?;
    if body.enabled == Some(false) {
        state
            .store
            .disable_endpoint(&id, "disabled through the API", now, None)
            .await?;
        return Ok(Json(EndpointView::from(&load(&state, &id).await?)));
    }
    Ok(Json(EndpointView::from(&record)))
}

/// Deletes an endpoint with its deliveries.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    if state.store.delete_endpoint(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!(
            "webhook endpoint {id} does not exist"
        )))
    }
}

/// Replaces the endpoint's secret; the answer holds the new one, shown only this once. Deliveries
/// from now on are signed with it, and with the previous one too for
/// `webhooks.secret_rotation_overlap` (24 h by default), so consumers can switch over.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointWithSecret), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointWithSecret>, Problem> {
    let now = state.clock.now();
    let previous_until = now
        + chrono::Duration::from_std(state.secret_rotation_overlap)
            .unwrap_or(chrono::Duration::days(1));
    let record = state
        .store
        .rotate_secret(&id, &generate_secret(), previous_until, now)
        .await?
        .ok_or_else(|| Problem::not_found(format!("webhook endpoint {id} does not exist")))?;
    Ok(Json(EndpointWithSecret {
        endpoint: EndpointView::from(&record),
        secret: record.secret.clone(),
    }))
}

/// Paging of the attempts list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptParams {
    /// Deliveries per page, newest first, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempted_at: DateTime<Utc>,
    /// The endpoint's status code, when it answered.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// The first bytes of the endpoint's answer.
    pub response_excerpt: Option<String>,
    /// Why there was no answer (timeout, connection refused).
    pub error: Option<String>,
}

/// One event's delivery to the endpoint, with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: String,
    pub event_sequence: i64,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for older deliveries; null on the last page.
    pub next_before: Option<i64>,
}

/// The endpoint's deliveries, newest first, each with every attempt.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}/attempts", tag = "webhooks",
    params(("endpoint_id" = String, Path), AttemptParams),
    responses((status = 200, body = DeliveryPage), (status = 404, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn attempts(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<AttemptParams>,
) -> Result<Json<DeliveryPage>, Problem> {
    load(&state, &id).await?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Problem::validation(
            "limit",
            format!("{limit} is out of range; 1 to 100"),
        ));
    }
    let deliveries = state
        .store
        .list_deliveries(&id, params.before, limit)
        .await?;
    let mut views = Vec::with_capacity(deliveries.len());
    for delivery in &deliveries {
        let attempts = state.store.list_attempts(delivery.id).await?;
        views.push(DeliveryView {
            id: delivery.id,
            event_id: delivery.event_id.clone(),
            event_sequence: delivery.event_sequence,
            status: delivery.status.as_str().to_owned(),
            next_attempt_at: delivery.next_attempt_at,
            attempts: attempts
                .into_iter()
                .map(|a| AttemptView {
                    attempted_at: a.attempted_at,
                    status_code: a.status_code,
                    latency_ms: u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX),
                    response_excerpt: a.response_excerpt,
                    error: a.error,
                })
                .collect(),
        });
    }
    let next_before = (deliveries.len() == limit as usize)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: views,
        next_before,
    }))
}

/// What to send again: one event, or every event detected in a time range.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// One event's `id`, sent whatever its type.
    pub event_id: Option<String>,
    /// Start of a time range (by `detected_at`, inclusive); needs `to`. A range that ends
    /// before it starts holds no event.
    pub from: Option<DateTime<Utc>>,
    /// End of the time range (inclusive).
    pub to: Option<DateTime<Utc>>,
}

/// How many deliveries a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub queued: u64,
}

/// Sends one event, or every event of a time range the endpoint wants, again.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/replay", tag = "webhooks",
    params(("endpoint_id" = String, Path)), request_body = Replay,
    responses((status = 202, body = Replayed), (status = 404, body = super::problem::ProblemBody), (status = 422, body = super::problem::ProblemBody)),
    security(("api_key" = [])))]
pub(super) async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Replay>,
) -> Result<(StatusCode, Json<Replayed>), Problem> {
    load(&state, &id).await?;
    let now = state.clock.now();
    let queued = match (body.event_id, body.from, body.to) {
        (Some(event_id), None, None) => {
            state
                .store
                .replay_event(&id, &event_id, now)
                .await?
                .ok_or_else(|| Problem::not_found(format!("event {event_id} does not exist")))?;
            1
        }
        // A range whose `from` is after its `to` holds no event: nothing is queued.
        (None, Some(from), Some(to)) => match state.store.sequences_between(from, to).await? {
            Some((first, last)) => state.store.replay_range(&id, first, last, now).await?,
            None => 0,
        },
        _ => {
            return Err(Problem::validation(
                "event_id",
                "give either `event_id`, or both `from` and `to`",
            ));
        }
    };
    Ok((StatusCode::ACCEPTED, Json(Replayed { queued })))
}
