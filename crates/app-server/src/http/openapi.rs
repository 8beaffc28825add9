//! The OpenAPI 3.1 document, generated from the handlers' annotations. Served at
//! `/openapi.json` and written to `docs/openapi.json` by `cargo xtask codegen`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    applications, events, health, integrations, kombo_webhooks, problem, views, webhook_endpoints,
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
        integrations::pause,
        integrations::resume,
        applications::create,
        applications::import,
        applications::list,
        applications::get,
        applications::list_jobs,
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
        integrations::RegisterIntegration,
        applications::CreateApplication,
        applications::CandidateInput,
        applications::CreatedApplication,
        applications::ImportApplication,
        applications::ImportedApplication,
        applications::ApplicationView,
        applications::ApplicationPage,
        applications::ApplicationDetail,
        applications::StageVisitView,
        applications::JobView,
        applications::JobList,
        applications::StageCountView,
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
    modifiers(&BearerKey),
    tags(
        (name = "integrations", description = "The Kombo integrations stagewatch tracks"),
        (name = "applications", description = "Applications and jobs"),
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

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    doc
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
