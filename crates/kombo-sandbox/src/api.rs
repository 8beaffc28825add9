//! Kombo's ATS API under `/v1`: authentication, the list endpoints and the write actions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::AtsProfile;
use crate::errors::KomboError;
use crate::model::REJECTION_REASONS;
use crate::query::{ListKind, ListQuery, page};
use crate::server::Shared;
use crate::world::World;
use crate::{gate, wire};

type Pairs = Query<Vec<(String, String)>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/check-api-key", get(check_api_key))
        .route("/v1/integrations/{integration_id}", get(get_integration))
        .route("/v1/ats/applications", get(list_applications))
        .route("/v1/ats/jobs", get(list_jobs))
        .route("/v1/ats/rejection-reasons", get(list_rejection_reasons))
        .route(
            "/v1/ats/jobs/{job_id}/applications",
            post(create_application),
        )
        .route(
            "/v1/ats/applications/{application_id}/stage",
            put(move_stage),
        )
        .route("/v1/ats/applications/{application_id}/reject", post(reject))
        .route(
            "/v1/ats/import-tracked-application",
            post(import_tracked_application),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            gate::gate,
        ))
        .with_state(shared)
}

/// Kombo's envelope of a successful answer, serialized straight from `data` (no copy into a
/// `Value`).
#[derive(Serialize)]
struct Success<'a, T> {
    status: &'static str,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<[(); 0]>,
}

fn success<T: Serialize>(data: &T) -> Response {
    Json(Success {
        status: "success",
        data,
        warnings: None,
    })
    .into_response()
}

fn success_with_warnings<T: Serialize>(data: &T) -> Response {
    Json(Success {
        status: "success",
        data,
        warnings: Some([]),
    })
    .into_response()
}

/// A page of a list endpoint.
#[derive(Serialize)]
struct ListPage<T> {
    next: Option<String>,
    results: Vec<T>,
}

/// Compares in constant time, so response timing reveals nothing about the key.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn authorize(world: &World, headers: &HeaderMap) -> Result<(), KomboError> {
    let given = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(KomboError::authentication_invalid)?;
    if same_secret(given.trim().as_bytes(), world.api_key.as_bytes()) {
        Ok(())
    } else {
        Err(KomboError::authentication_invalid())
    }
}

/// Authenticates an ATS call and finds the integration named by `X-Integration-Id`.
fn ats_integration(world: &World, headers: &HeaderMap) -> Result<usize, KomboError> {
    authorize(world, headers)?;
    let id = headers
        .get("x-integration-id")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| KomboError::input_invalid("The X-Integration-Id header is missing."))?;
    let position = *world
        .by_id
        .get(id)
        .ok_or_else(|| KomboError::integration_not_found(id))?;
    if !world.integrations[position].ready {
        return Err(KomboError::setup_sync_pending());
    }
    Ok(position)
}

fn parse_body(body: &Bytes) -> Result<Value, KomboError> {
    serde_json::from_slice(body)
        .map_err(|error| KomboError::input_invalid(format!("The body is not valid JSON: {error}")))
}

async fn check_api_key(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, KomboError> {
    let world = shared.world();
    authorize(&world, &headers)?;
    // Kombo names the customer (the account) beside the environment; one per sandbox.
    let customer_id: String = world.environment_id.chars().rev().collect();
    Ok(success(&json!({
        "environment_id": world.environment_id,
        "customer_id": customer_id,
    })))
}

async fn get_integration(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(integration_id): Path<String>,
) -> Result<Response, KomboError> {
    let world = shared.world();
    authorize(&world, &headers)?;
    let integration = world
        .integration(&integration_id)
        .ok_or_else(|| KomboError::integration_not_found(&integration_id))?;
    Ok(success(&wire::integration(integration)))
}

async fn list_applications(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(pairs): Pairs,
) -> Result<Response, KomboError> {
    let world = shared.world();
    let position = ats_integration(&world, &headers)?;
    let integration = &world.integrations[position];
    if integration.profile == AtsProfile::ApplicationsUnavailable {
        return Err(KomboError::model_not_available("ats_applications"));
    }
    let query = ListQuery::parse(ListKind::Applications, &pairs)?;
    let start = query.start(&integration.id)?;
    let outcome_unsupported = integration.profile == AtsProfile::OutcomeUnsupported;
    if outcome_unsupported
        && query.lists.contains_key("outcomes")
        && !query.ignore_unsupported_filters
    {
        return Ok(success(&json!({ "next": null, "results": [] })));
    }
    let matches = |at: usize| {
        let application = &integration.applications[at];
        let job = &integration.jobs[application.job];
        integration.serves(application)
            && (query.include_deleted || application.deleted_at.is_none())
            && query
                .updated_after
                .is_none_or(|after| application.updated_at >= after)
            && query
                .remote_created_after
                .is_none_or(|after| application.created_at >= after)
            && query.allows("ids", Some(&application.id))
            && query.allows("remote_ids", Some(&application.remote_id))
            && (outcome_unsupported || query.allows("outcomes", Some(application.outcome.as_str())))
            && query.allows("job_ids", Some(&job.id))
            && query.allows("job_remote_ids", Some(&job.remote_id))
            && query.allows("current_stage_ids", Some(&application.stage_id))
    };
    debug_assert!(
        integration.updated_bounds_hold(),
        "stale updated_after bounds"
    );
    let skip = |position: usize| {
        query.updated_after.map_or(position, |after| {
            integration.next_updated_from(position, after)
        })
    };
    let (found, next) = page(
        integration.applications.len(),
        start,
        query.page_size,
        skip,
        matches,
    );
    let now = world.clock.peek();
    let results = found
        .iter()
        .map(|&at| wire::application(integration, &integration.applications[at], now))
        .collect();
    let next = next.map(|at| query.cursor_at(&integration.id, at));
    Ok(success(&ListPage { next, results }))
}

async fn list_jobs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(pairs): Pairs,
) -> Result<Response, KomboError> {
    let world = shared.world();
    let position = ats_integration(&world, &headers)?;
    let integration = &world.integrations[position];
    let query = ListQuery::parse(ListKind::Jobs, &pairs)?;
    let start = query.start(&integration.id)?;
    let name_contains = query
        .texts
        .get("name_contains")
        .map(|text| text.to_lowercase());
    let post_url = query.texts.get("post_url");
    let matches = |at: usize| {
        let job = &integration.jobs[at];
        let rendered_post_url = format!(
            "https://jobs.example.com/{}/{}",
            integration.tool, job.remote_id
        );
        query
            .updated_after
            .is_none_or(|after| job.updated_at >= after)
            && query
                .remote_created_after
                .is_none_or(|after| job.created_at >= after)
            && query.allows("ids", Some(&job.id))
            && query.allows("remote_ids", Some(&job.remote_id))
            && query.allows("job_codes", Some(&job.code))
            && query.allows("statuses", Some(if job.open { "OPEN" } else { "CLOSED" }))
            && query.allows("employment_types", Some(job.employment_type))
            && query.allows("visibilities", Some(job.visibility))
            && name_contains
                .as_ref()
                .is_none_or(|text| job.name.to_lowercase().contains(text))
            && post_url.is_none_or(|url| *url == rendered_post_url)
    };
    let every_position = |position: usize| position;
    let (found, next) = page(
        integration.jobs.len(),
        start,
        query.page_size,
        every_position,
        matches,
    );
    let results: Vec<Value> = found
        .iter()
        .map(|&at| wire::job(integration, &integration.jobs[at]))
        .collect();
    let next = next.map(|at| query.cursor_at(&integration.id, at));
    Ok(success(&json!({ "next": next, "results": results })))
}

fn required_text<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, KomboError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .ok_or_else(|| {
            KomboError::input_invalid(format!(
                "The field {} is required.",
                pointer.trim_start_matches('/').replace('/', ".")
            ))
        })
}

async fn create_application(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    body: Bytes,
) -> Result<Response, KomboError> {
    let response = {
        let mut world = shared.world();
        let position = ats_integration(&world, &headers)?;
        let body = parse_body(&body)?;
        let first_name = required_text(&body, "/candidate/first_name")?.to_owned();
        let last_name = required_text(&body, "/candidate/last_name")?.to_owned();
        let email = required_text(&body, "/candidate/email_address")?.to_owned();
        let stage_id = body.get("stage_id").and_then(Value::as_str);
        let created =
            world.create_application(position, &job_id, stage_id, first_name, last_name, email)?;
        let now = world.clock.peek();
        let integration = &world.integrations[position];
        success_with_warnings(&wire::created_application(
            integration,
            &integration.applications[created],
            now,
        ))
    };
    shared.flush_notices();
    Ok(response)
}

async fn move_stage(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(application_id): Path<String>,
    body: Bytes,
) -> Result<Response, KomboError> {
    {
        let mut world = shared.world();
        let position = ats_integration(&world, &headers)?;
        let body = parse_body(&body)?;
        let stage_id = required_text(&body, "/stage_id")?;
        world.move_to_stage(position, &application_id, stage_id)?;
    }
    shared.flush_notices();
    Ok(success_with_warnings(&json!({})))
}

/// The id of a sandbox rejection reason: its name in kebab case, e.g. `position-filled`.
fn rejection_reason_id(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

/// The name of the reason with this id; any other id is kept as the reason's name.
fn rejection_reason_name(id: &str) -> String {
    REJECTION_REASONS
        .iter()
        .find(|name| rejection_reason_id(name) == id)
        .map_or_else(|| id.to_owned(), |name| (*name).to_owned())
}

/// `GET /ats/rejection-reasons`: the same short list for every integration, on one page.
async fn list_rejection_reasons(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, KomboError> {
    let world = shared.world();
    let position = ats_integration(&world, &headers)?;
    let since = world.integrations[position].created_at;
    let results: Vec<Value> = REJECTION_REASONS
        .iter()
        .enumerate()
        .map(|(index, name)| {
            json!({
                "id": rejection_reason_id(name),
                "remote_id": (index + 1).to_string(),
                "name": name,
                "changed_at": wire::timestamp(since),
                "remote_deleted_at": null,
                "remote_data": null,
            })
        })
        .collect();
    Ok(success(&json!({ "next": null, "results": results })))
}

async fn reject(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(application_id): Path<String>,
    body: Bytes,
) -> Result<Response, KomboError> {
    {
        let mut world = shared.world();
        let position = ats_integration(&world, &headers)?;
        // An ATS that cannot tell outcomes cannot set one either.
        if world.integrations[position].profile == AtsProfile::OutcomeUnsupported {
            return Err(KomboError::action_not_available("reject_application"));
        }
        let body = parse_body(&body)?;
        let reason = rejection_reason_name(required_text(&body, "/rejection_reason_id")?);
        world.reject(position, &application_id, Some(reason))?;
    }
    shared.flush_notices();
    Ok(success_with_warnings(&json!({})))
}

/// The id fields the per-tool import bodies name an ATS application by.
const IMPORT_ID_FIELDS: &[&str] = &["application_id", "application_remote_id", "placement_id"];

async fn import_tracked_application(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, KomboError> {
    let response = {
        let mut world = shared.world();
        let position = ats_integration(&world, &headers)?;
        let body = parse_body(&body)?;
        let Some(fields) = body.as_object() else {
            return Err(KomboError::input_invalid("The body must be a JSON object."));
        };
        if !fields.contains_key("tracked_at") {
            return Err(KomboError::input_invalid(
                "The field tracked_at is required.",
            ));
        }
        let tool_ids: Vec<(&String, &Value)> = fields
            .iter()
            .filter(|(name, value)| *name != "tracked_at" && value.is_object())
            .collect();
        let remote_ids: Vec<String> = tool_ids
            .iter()
            .flat_map(|(_, value)| {
                IMPORT_ID_FIELDS
                    .iter()
                    .filter_map(|field| value.get(*field)?.as_str().map(str::to_owned))
            })
            .collect();
        if remote_ids.is_empty() {
            return Err(KomboError::input_invalid(
                "Name the application by one of the per-tool ID objects.",
            ));
        }
        let id = world.import(position, &remote_ids)?;
        let tracked_at = match fields.get("tracked_at") {
            Some(Value::String(at)) => at.clone(),
            _ => wire::timestamp(world.clock.peek()),
        };
        let imported_id: serde_json::Map<String, Value> = tool_ids
            .into_iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        success_with_warnings(
            &json!({ "id": id, "tracked_at": tracked_at, "imported_id": imported_id }),
        )
    };
    shared.flush_notices();
    Ok(response)
}
