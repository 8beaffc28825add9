//! What `cargo xtask codegen` generates: the Kombo objects stagewatch reads and writes, and of
//! each only the fields it uses. Fields left out are ignored when decoding, so they cost nothing
//! and a change to them in Kombo's schemas does not touch the generated code.

/// One generated file, `crates/adapters-kombo/src/generated/<name>.rs`.
pub(crate) struct Module {
    pub(crate) name: &'static str,
    pub(crate) doc: &'static str,
    pub(crate) types: &'static [Type],
}

/// A struct generated from one object of a schema file.
pub(crate) struct Type {
    /// The schema file name without `.json`.
    pub(crate) schema: &'static str,
    /// The object's `$defs` name; empty for the schema's root object.
    pub(crate) def: &'static str,
    pub(crate) name: &'static str,
    /// The properties to generate, in order. `field=Name` names the enum generated for an
    /// enumerated field (by default the struct's name followed by the field's).
    pub(crate) fields: &'static [&'static str],
    /// Reuse a type generated elsewhere for this object instead of generating one.
    pub(crate) reuse: Option<&'static str>,
}

const fn object(
    schema: &'static str,
    def: &'static str,
    name: &'static str,
    fields: &'static [&'static str],
) -> Type {
    Type {
        schema,
        def,
        name,
        fields,
        reuse: None,
    }
}

/// `def` of `schema` has the same shape as the generated type at `path`.
const fn same_as(schema: &'static str, def: &'static str, path: &'static str) -> Type {
    Type {
        schema,
        def,
        name: "",
        fields: &[],
        reuse: Some(path),
    }
}

const APPLICATIONS: &str = "get-ats-applications.response";
const JOBS: &str = "get-ats-jobs.response";
const REJECTION_REASONS: &str = "get-ats-rejection-reasons.response";
const CREATE_REQUEST: &str = "post-ats-jobs-job-id-applications.request";
const CREATE_RESPONSE: &str = "post-ats-jobs-job-id-applications.response";
const MOVE_REQUEST: &str = "put-ats-applications-application-id-stage.request";
const MOVE_RESPONSE: &str = "put-ats-applications-application-id-stage.response";
const REJECT_REQUEST: &str = "post-ats-applications-application-id-reject.request";
const REJECT_RESPONSE: &str = "post-ats-applications-application-id-reject.response";
const IMPORT_REQUEST: &str = "post-ats-import-tracked-application.request";
const IMPORT_RESPONSE: &str = "post-ats-import-tracked-application.response";
const INTEGRATION: &str = "get-integrations-integration-id.response";
const CHECK_API_KEY: &str = "get-check-api-key.response";
const ERROR: &str = "error.ats";
const DATA_CHANGED: &str = "webhook.data-changed";
const STATE_CHANGED: &str = "webhook.integration-state-changed";
const CREATED: &str = "webhook.integration-created";
const DELETED: &str = "webhook.integration-deleted";

const APPLICATION_FIELDS: &[&str] = &[
    "id",
    "remote_id",
    "outcome=Outcome",
    "rejection_reason_name",
    "rejected_at",
    "current_stage_id",
    "job_id",
    "candidate_id",
    "remote_url",
    "changed_at",
    "remote_deleted_at",
    "remote_created_at",
    "remote_updated_at",
    "candidate",
    "current_stage",
    "job",
];
const STAGE_FIELDS: &[&str] = &["id", "remote_id", "name", "status=StageStatus", "index"];
const ENVELOPE_FIELDS: &[&str] = &["status", "data"];
const WRITE_ENVELOPE_FIELDS: &[&str] = &["status", "data", "warnings"];
const WEBHOOK_FIELDS: &[&str] = &["id", "type", "data"];

pub(crate) const MODULES: &[Module] = &[
    Module {
        name: "applications",
        doc: "`GET /ats/applications`: a page of applications.",
        types: &[
            object(APPLICATIONS, "", "ApplicationsResponse", ENVELOPE_FIELDS),
            object(
                APPLICATIONS,
                "GetAtsApplicationsPositiveResponseData",
                "ApplicationsPage",
                &["next", "results"],
            ),
            object(
                APPLICATIONS,
                "GetAtsApplicationsPositiveResponseResult",
                "Application",
                APPLICATION_FIELDS,
            ),
            object(
                APPLICATIONS,
                "GetAtsApplicationsPositiveResponseCandidate",
                "ApplicationCandidate",
                &["id", "remote_id", "first_name", "last_name"],
            ),
            object(
                APPLICATIONS,
                "GetAtsApplicationsPositiveResponseCurrentStage",
                "ApplicationStage",
                STAGE_FIELDS,
            ),
            object(
                APPLICATIONS,
                "GetAtsApplicationsPositiveResponseJob",
                "ApplicationJob",
                &["id", "remote_id", "name"],
            ),
        ],
    },
    Module {
        name: "jobs",
        doc: "`GET /ats/jobs`: a page of jobs, each with its stages.",
        types: &[
            object(JOBS, "", "JobsResponse", ENVELOPE_FIELDS),
            object(
                JOBS,
                "GetAtsJobsPositiveResponseData",
                "JobsPage",
                &["next", "results"],
            ),
            object(
                JOBS,
                "GetAtsJobsPositiveResponseResult",
                "Job",
                &[
                    "id",
                    "remote_id",
                    "name",
                    "status=JobStatus",
                    "changed_at",
                    "remote_deleted_at",
                    "stages",
                ],
            ),
            object(JOBS, "Stage", "JobStage", STAGE_FIELDS),
        ],
    },
    Module {
        name: "rejection_reasons",
        doc: "`GET /ats/rejection-reasons`: a page of the ATS's rejection reasons.",
        types: &[
            object(
                REJECTION_REASONS,
                "",
                "RejectionReasonsResponse",
                ENVELOPE_FIELDS,
            ),
            object(
                REJECTION_REASONS,
                "GetAtsRejectionReasonsPositiveResponseData",
                "RejectionReasonsPage",
                &["next", "results"],
            ),
            object(
                REJECTION_REASONS,
                "GetAtsRejectionReasonsPositiveResponseResult",
                "RejectionReason",
                &["id", "remote_id", "name"],
            ),
        ],
    },
    Module {
        name: "writes",
        doc: "The writes: create an application, import one into tracking, move it, reject it.",
        types: &[
            object(
                CREATE_REQUEST,
                "",
                "CreateApplicationRequest",
                &["candidate", "stage_id"],
            ),
            object(
                CREATE_REQUEST,
                "PostAtsJobsJobIDApplicationsRequestBodyCandidate",
                "CreateApplicationCandidate",
                &[
                    "first_name",
                    "last_name",
                    "email_address",
                    "phone_number",
                    "company",
                    "title",
                ],
            ),
            object(
                CREATE_RESPONSE,
                "",
                "CreateApplicationResponse",
                WRITE_ENVELOPE_FIELDS,
            ),
            same_as(
                CREATE_RESPONSE,
                "PostAtsJobsJobIDApplicationsPositiveResponseData",
                "super::applications::Application",
            ),
            object(
                CREATE_RESPONSE,
                "PostAtsJobsJobIDApplicationsPositiveResponseWarning",
                "Warning",
                &["message"],
            ),
            object(
                IMPORT_REQUEST,
                "",
                "ImportTrackedApplicationRequest",
                &["tracked_at"],
            ),
            object(
                IMPORT_RESPONSE,
                "",
                "ImportTrackedApplicationResponse",
                WRITE_ENVELOPE_FIELDS,
            ),
            object(
                IMPORT_RESPONSE,
                "PostAtsImportTrackedApplicationPositiveResponseData",
                "ImportedApplication",
                &["id", "tracked_at"],
            ),
            same_as(
                IMPORT_RESPONSE,
                "PostAtsImportTrackedApplicationPositiveResponseWarning",
                "Warning",
            ),
            object(MOVE_REQUEST, "", "MoveStageRequest", &["stage_id"]),
            object(
                MOVE_RESPONSE,
                "",
                "MoveStageResponse",
                &["status", "warnings"],
            ),
            same_as(
                MOVE_RESPONSE,
                "PutAtsApplicationsApplicationIDStagePositiveResponseWarning",
                "Warning",
            ),
            object(
                REJECT_REQUEST,
                "",
                "RejectRequest",
                &["rejection_reason_id", "note"],
            ),
            object(
                REJECT_RESPONSE,
                "",
                "RejectResponse",
                &["status", "warnings"],
            ),
            same_as(
                REJECT_RESPONSE,
                "PostAtsApplicationsApplicationIDRejectPositiveResponseWarning",
                "Warning",
            ),
        ],
    },
    Module {
        name: "integration",
        doc: "`GET /integrations/{id}` and `GET /check-api-key`.",
        types: &[
            object(INTEGRATION, "", "IntegrationResponse", ENVELOPE_FIELDS),
            object(
                INTEGRATION,
                "GetIntegrationsIntegrationIDPositiveResponseData",
                "Integration",
                &[
                    "id",
                    "tool",
                    "status=IntegrationStatus",
                    "setup_status=SetupStatus",
                    "data_expired_at",
                    "read_models",
                ],
            ),
            object(
                INTEGRATION,
                "GetIntegrationsIntegrationIDPositiveResponseTool",
                "IntegrationTool",
                &["id", "label"],
            ),
            object(
                INTEGRATION,
                "GetIntegrationsIntegrationIDPositiveResponseReadModel",
                "ReadModel",
                &[
                    "id",
                    "is_available",
                    "coverage_status=CoverageStatus",
                    "fields",
                ],
            ),
            object(
                INTEGRATION,
                "GetIntegrationsIntegrationIDPositiveResponseReadModelField",
                "ReadModelField",
                &["id", "is_available", "coverage_status=CoverageStatus"],
            ),
            object(CHECK_API_KEY, "", "CheckApiKeyResponse", ENVELOPE_FIELDS),
            object(
                CHECK_API_KEY,
                "GetCheckAPIKeyPositiveResponseData",
                "ApiKeyEnvironment",
                &["environment_id"],
            ),
        ],
    },
    Module {
        name: "error",
        doc: "Kombo's error envelope.",
        types: &[
            object(ERROR, "", "ErrorEnvelope", &["status", "error"]),
            object(
                ERROR,
                "KomboAtsErrorError",
                "ErrorBody",
                &["code=ErrorCode", "title", "message", "log_url"],
            ),
        ],
    },
    Module {
        name: "webhooks",
        doc: "The webhooks Kombo sends that stagewatch acts on.",
        types: &[
            object(DATA_CHANGED, "", "DataChangedWebhook", WEBHOOK_FIELDS),
            object(
                DATA_CHANGED,
                "DataChangedWebhookPayloadData",
                "DataChanged",
                &["integration_id", "integration_tool", "changed_models"],
            ),
            object(
                DATA_CHANGED,
                "ChangedModel",
                "ChangedModel",
                &["name=ModelName"],
            ),
            object(
                STATE_CHANGED,
                "",
                "IntegrationStateChangedWebhook",
                WEBHOOK_FIELDS,
            ),
            object(
                STATE_CHANGED,
                "IntegrationStateChangedWebhookPayloadData",
                "IntegrationStateChanged",
                &[
                    "integration_id",
                    "integration_tool",
                    "state=IntegrationState",
                    "setup_status=SetupStatus",
                    "qa_status=QaStatus",
                    "updated_at",
                ],
            ),
            object(CREATED, "", "IntegrationCreatedWebhook", WEBHOOK_FIELDS),
            object(
                CREATED,
                "IntegrationCreatedWebhookPayloadData",
                "IntegrationCreated",
                &["id", "tool"],
            ),
            object(DELETED, "", "IntegrationDeletedWebhook", WEBHOOK_FIELDS),
            object(
                DELETED,
                "IntegrationDeletedWebhookPayloadData",
                "IntegrationDeleted",
                &["id", "tool", "deleted_at"],
            ),
        ],
    },
];
