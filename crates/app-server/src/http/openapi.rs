//! The OpenAPI 3.1 document, generated from the handlers' annotations. Served at
//! `/openapi.json` and written to `docs/openapi.json` by `cargo xtask codegen`.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{
    actions, applications, events, funnel, health, integrations, jobs, kombo_webhooks, problem,
    views, webhook_endpoints,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "stagewatch API",
        description = "Change events for the job applications you submitted through Kombo: \
            integrations, applications with their stage timelines, the event feed, and \
            outbound webhooks. Errors are `application/problem+json` bodies.",
    ),
    paths(
        integrations::register,
        integrations::list,
        integrations::get,
        integrations::trigger_sync,
        integrations::confirm_deletions,
        integrations::pause,
        integrations::resume,
        actions::create,
        actions::import,
        applications::list,
        applications::get,
        jobs::list_jobs,
        funnel::job_funnel,
        funnel::integration_funnel,
        funnel::funnel,
        actions::move_to_stage,
        actions::reject,
        actions::rejection_reasons,
        events::read,
        webhook_endpoints::create,
        webhook_endpoints::list,
        webhook_endpoints::get,
        webhook_endpoints::update,
        webhook_endpoints::delete,
        webhook_endpoints::rotate_secret,
        webhook_endpoints::attempts,
        webhook_endpoints::replay,
        kombo_webhooks::receive,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(
        problem::ProblemBody,
        views::IntegrationView,
        views::ErrorView,
        views::IntegrationList,
        views::Accepted,
        views::DeletionsConfirmed,
        integrations::RegisterIntegration,
        actions::CreateApplication,
        actions::CandidateInput,
        actions::CreatedApplication,
        actions::ImportApplication,
        actions::ImportedApplication,
        applications::ApplicationView,
        applications::ApplicationPage,
        applications::ApplicationDetail,
        applications::StageVisitView,
        jobs::JobView,
        jobs::JobList,
        jobs::StageCountView,
        funnel::FunnelView,
        funnel::FunnelStageView,
        funnel::CohortView,
        funnel::ReasonCountView,
        actions::MoveToStage,
        actions::RejectApplication,
        actions::ActionResult,
        actions::RejectionReasonView,
        actions::RejectionReasonList,
        events::FeedPage,
        health::Health,
        webhook_endpoints::EndpointView,
        webhook_endpoints::EndpointWithSecret,
        webhook_endpoints::EndpointList,
        webhook_endpoints::CreateEndpoint,
        webhook_endpoints::UpdateEndpoint,
        webhook_endpoints::AttemptView,
        webhook_endpoints::DeliveryView,
        webhook_endpoints::DeliveryPage,
        webhook_endpoints::Replay,
        webhook_endpoints::Replayed,
    )),
    modifiers(&BearerKey, &ProblemResponses),
    tags(
        (name = "integrations", description = "The Kombo integrations stagewatch tracks"),
        (name = "applications", description = "Applications and jobs"),
        (name = "analytics", description = "Funnel analytics over the stored stage history"),
        (name = "events", description = "The event feed"),
        (name = "webhooks", description = "Outbound webhook endpoints and deliveries"),
        (name = "kombo", description = "Kombo's webhooks"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The media type of every error answer.
const PROBLEM_JSON: &str = "application/problem+json";

/// Operations that call Kombo, and so answer Kombo's refusals and faults too.
const KOMBO_CALLS: &[(&str, &str)] = &[
    ("post", "/v1/integrations/{integration_id}/applications"),
    (
        "post",
        "/v1/integrations/{integration_id}/applications/import",
    ),
    ("get", "/v1/integrations/{integration_id}/jobs"),
];

/// Operations that read their body raw instead of as the API's JSON (no 415, no 422).
const RAW_BODIES: &[&str] = &["/v1/kombo/webhooks"];

/// Operations that touch neither the database nor Kombo.
const STATELESS: &[&str] = &["/healthz", "/metrics", "/openapi.json"];

/// The error answers every operation can give, documented where the rules of the HTTP layer
/// make them possible rather than one by one in each handler: 401 where a key is needed, 400,
/// 413, 415 and 422 where a JSON body is read, 422 where a parameter is parsed, 404 where a
/// path names a resource, 503 where the database is read, and Kombo's refusals where Kombo is
/// called. Every error answer, these and those the handlers declare, is an
/// `application/problem+json` body.
struct ProblemResponses;

/// The shared error answers, by component name: status and description.
const ANSWERS: &[(&str, &str, &str)] = &[
    (
        "Malformed",
        "400",
        "Malformed request: the body is not JSON, or nests arrays and objects more than 32 levels deep (`json-too-deep`)",
    ),
    (
        "Unauthorized",
        "401",
        "No API key, or one that is not accepted: send `Authorization: Bearer <key>`",
    ),
    ("NotFound", "404", "The resource does not exist"),
    (
        "Conflict",
        "409",
        "The integration is not ready or needs attention in Kombo, or the application exists already",
    ),
    (
        "TooLarge",
        "413",
        "The body is larger than `api.body_limit_bytes`",
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not sent as `Content-Type: application/json`",
    ),
    (
        "Invalid",
        "422",
        "Invalid input; `field` names the offending field, parameter or header",
    ),
    (
        "RateLimited",
        "429",
        "Kombo's rate limit for this integration",
    ),
    (
        "KomboUnavailable",
        "502",
        "Kombo is unavailable or refused stagewatch's API key",
    ),
    (
        "Unavailable",
        "503",
        "The database is unavailable; retry later",
    ),
];

fn problem_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ProblemBody")))
        .build()
}

fn answer(status: &str) -> Option<&'static str> {
    ANSWERS
        .iter()
        .find(|(_, code, _)| *code == status)
        .map(|(name, _, _)| *name)
}

impl ProblemResponses {
    fn document(operation: &mut Operation, method: &str, path: &str) {
        // Errors the handler declared: a problem body, whatever the annotation said.
        for response in operation
            .responses
            .responses
            .iter_mut()
            .filter_map(|(status, r)| {
                let error = status.starts_with('4') || status.starts_with('5');
                match r {
                    RefOr::T(response) if error => Some(response),
                    _ => None,
                }
            })
        {
            let content = response
                .content
                .shift_remove("application/json")
                .unwrap_or_else(problem_content);
            response.content.clear();
            response.content.insert(PROBLEM_JSON.to_owned(), content);
        }
        let parameters = operation.parameters.as_deref().unwrap_or_default();
        let mut statuses = Vec::new();
        if operation.security.is_some() {
            statuses.push("401");
        }
        if operation.request_body.is_some() {
            statuses.push("413");
            if !RAW_BODIES.contains(&path) {
                statuses.extend(["400", "415", "422"]);
            }
        }
        if parameters
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Query)
        {
            statuses.push("422");
        }
        if parameters
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Path)
        {
            statuses.extend(["404", "422"]);
        }
        if KOMBO_CALLS.contains(&(method, path)) {
            statuses.extend(["409", "422", "429", "502"]);
        }
        if !STATELESS.contains(&path) {
            statuses.push("503");
        }
        for status in statuses {
            if let Some(name) = answer(status) {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
}

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, _, description) in ANSWERS {
            let response: Response = ResponseBuilder::new()
                .description(*description)
                .content(PROBLEM_JSON, problem_content())
                .build();
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(response));
        }
        for (path, item) in &mut openapi.paths.paths {
            for (method, operation) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ] {
                if let Some(operation) = operation {
                    Self::document(operation, method, path);
                }
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    let mut json = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    super::input_rules::annotate(&mut json);
    serde_json::from_value(json).expect("the annotated document is still an OpenAPI document")
}

/// The document as pretty JSON with a final newline, as `docs/openapi.json` holds it.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}

/// `GET /openapi.json`
pub(super) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
