use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::application::ApplicationSnapshot;
use crate::ids::{ApplicationId, IntegrationId, JobId, RemoteId, StageId};
use crate::integration::IntegrationInfo;
use crate::outcome::Outcome;
use crate::rejection::RejectionReason;
use crate::stage::Pipeline;

/// The page size asked for unless configured otherwise: the largest Kombo serves, so that every
/// per-page cost (a request, a transaction) is paid as rarely as it can be. The adapter keeps
/// any requested size within what the ATS accepts.
pub const DEFAULT_PAGE_SIZE: u16 = 250;

/// An opaque cursor to the next page, as Kombo returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor(pub String);

/// One page of results. Pages are fetched one at a time, so a pass never holds more than a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub next: Option<PageCursor>,
    /// Records of the page that could not be read (no id, unparsable fields), reported rather
    /// than dropped silently.
    pub skipped: Vec<SkippedRecord>,
}

impl<T> Page<T> {
    /// A last page holding `items`.
    pub fn last(items: Vec<T>) -> Self {
        Self {
            items,
            next: None,
            skipped: Vec::new(),
        }
    }
}

/// A record of a page that could not be mapped to the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    pub id: Option<String>,
    pub reason: String,
}

/// Filters of `GET /ats/applications`. Empty lists mean "no filter".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationQuery {
    pub updated_after: Option<DateTime<Utc>>,
    pub include_deleted: bool,
    pub page_size: u16,
    pub ids: Vec<ApplicationId>,
    pub remote_ids: Vec<RemoteId>,
    pub outcomes: Vec<Outcome>,
    pub job_ids: Vec<JobId>,
    pub job_remote_ids: Vec<RemoteId>,
    pub current_stage_ids: Vec<StageId>,
    pub remote_created_after: Option<DateTime<Utc>>,
    pub ignore_unsupported_filters: bool,
}

impl Default for ApplicationQuery {
    fn default() -> Self {
        Self {
            updated_after: None,
            include_deleted: false,
            page_size: DEFAULT_PAGE_SIZE,
            ids: Vec::new(),
            remote_ids: Vec::new(),
            outcomes: Vec::new(),
            job_ids: Vec::new(),
            job_remote_ids: Vec::new(),
            current_stage_ids: Vec::new(),
            remote_created_after: None,
            ignore_unsupported_filters: false,
        }
    }
}

/// Filters of `GET /ats/jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQuery {
    pub ids: Vec<JobId>,
    pub page_size: u16,
}

impl Default for JobQuery {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// The candidate of a new application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCandidate {
    pub first_name: String,
    pub last_name: String,
    pub email_address: String,
    pub phone_number: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
}

/// An application to create in the ATS through Kombo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApplication {
    /// A Kombo job id, or `remote:<ATS id>`.
    pub job_id: JobId,
    pub candidate: NewCandidate,
    /// The stage to start in; the job's default stage when `None`.
    pub stage_id: Option<StageId>,
    /// Further fields of Kombo's request body (attachments, `remote_fields`, screening question
    /// answers, …), passed through unchanged.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Kombo's `POST /ats/import-tracked-application`: start tracking an application that exists in
/// the ATS. Identifiers are per tool (`{"greenhouse": {"id_type": …, …}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub tracked_at: Option<DateTime<Utc>>,
    /// The tool key of Kombo's body, e.g. `greenhouse`.
    pub tool: String,
    /// The identifiers for that tool, including `id_type`.
    pub identifiers: serde_json::Map<String, serde_json::Value>,
}

/// What Kombo answered to an import; the application's data arrives with its next sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedApplication {
    pub id: ApplicationId,
    pub tracked_at: Option<DateTime<Utc>>,
}

/// Why a call to the ATS (through Kombo) failed, in terms the domain can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtsError {
    /// Slow down: Kombo's or the ATS's rate limit, or Kombo's concurrency cap.
    #[error("rate limited{}", retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The integration is still being set up (its initial sync can take hours).
    #[error("integration not ready yet ({code}): {message}")]
    NotReady { code: String, message: String },
    /// This customer's ATS cannot provide the model or action.
    #[error("not supported by this ATS ({code}): {message}")]
    Unsupported { code: String, message: String },
    /// The integration is inactive, its credentials are invalid, or it is gone: a human must act.
    #[error("integration needs attention ({code}): {message}")]
    NeedsAttention { code: String, message: String },
    /// Kombo refused stagewatch's API key.
    #[error("Kombo refused the API key: {message}")]
    Unauthorized { message: String },
    /// A fault that may pass: 5xx, timeout, connection reset.
    #[error("transient failure: {reason}")]
    Transient { reason: String },
    /// No connection to Kombo could be made: the request was never sent.
    #[error("Kombo unreachable: {reason}")]
    Unreachable { reason: String },
    /// Kombo no longer accepts a pagination cursor it gave out (it does not say how long one
    /// lives): the listing must start again from its first page.
    #[error("the page cursor expired: {message}")]
    CursorExpired { message: String },
    /// Kombo's answer could not be understood.
    #[error("malformed response: {reason}")]
    Malformed {
        reason: String,
        /// A bounded excerpt of the body, for the log.
        excerpt: String,
    },
    /// The request was refused as it stands (invalid input, job closed, permission missing).
    #[error("refused by Kombo ({code}): {message}")]
    Rejected { code: String, message: String },
    /// `ATS.APPLICATION_ALREADY_EXISTS` on create.
    #[error("the application already exists in the ATS: {message}")]
    AlreadyExists { message: String },
    /// The job, application or stage named does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
}

impl AtsError {
    /// A stable, machine-readable name for logs, metrics and events.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::NotReady { .. } => "not_ready",
            Self::Unsupported { .. } => "unsupported",
            Self::NeedsAttention { .. } => "needs_attention",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Transient { .. } => "transient",
            Self::Unreachable { .. } => "unreachable",
            Self::CursorExpired { .. } => "cursor_expired",
            Self::Malformed { .. } => "malformed",
            Self::Rejected { .. } => "rejected",
            Self::AlreadyExists { .. } => "already_exists",
            Self::NotFound { .. } => "not_found",
        }
    }

    /// Whether a write that failed this way may nonetheless have been applied: its answer was
    /// lost (timeout, dropped connection), garbled, or a 5xx that Kombo may have raised after
    /// the ATS acted. Every other failure proves the write did not happen, so it may be sent
    /// again.
    pub fn may_have_been_applied(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Malformed { .. })
    }

    /// How long Kombo asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// The ATS, as Kombo exposes it: reads for the sync, writes for the API and the demo.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AtsGateway: Send + Sync {
    /// The integration's status, setup state and per-field coverage.
    async fn integration_info(
        &self,
        integration: &IntegrationId,
    ) -> Result<IntegrationInfo, AtsError>;

    /// One page of applications; pass the previous page's `next` to get the following one, with
    /// the same query.
    async fn fetch_applications(
        &self,
        integration: &IntegrationId,
        query: &ApplicationQuery,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ApplicationSnapshot>, AtsError>;

    /// One page of jobs, each with its pipeline.
    async fn fetch_jobs(
        &self,
        integration: &IntegrationId,
        query: &JobQuery,
        cursor: Option<PageCursor>,
    ) -> Result<Page<Pipeline>, AtsError>;

    /// Creates an application; never retried automatically, since Kombo has no idempotency key.
    async fn create_application(
        &self,
        integration: &IntegrationId,
        application: &NewApplication,
    ) -> Result<ApplicationSnapshot, AtsError>;

    /// Adds an existing ATS application to Kombo's tracking.
    async fn import_tracked_application(
        &self,
        integration: &IntegrationId,
        request: &ImportRequest,
    ) -> Result<ImportedApplication, AtsError>;

    /// One page of the ATS's rejection reasons.
    async fn fetch_rejection_reasons(
        &self,
        integration: &IntegrationId,
        cursor: Option<PageCursor>,
    ) -> Result<Page<RejectionReason>, AtsError>;

    /// Moves an application to another stage of its job.
    async fn move_application(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
        stage: &StageId,
    ) -> Result<(), AtsError>;

    /// Rejects an application with a reason from Kombo's rejection reasons.
    async fn reject_application(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
        rejection_reason_id: &str,
        note: Option<String>,
    ) -> Result<(), AtsError>;
}
