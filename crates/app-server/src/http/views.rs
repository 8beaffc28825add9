//! The JSON shapes of the API's responses.

use adapters_postgres::IntegrationRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// An integration with its sync health.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    /// Kombo's integration id.
    pub id: String,
    pub tool: Option<String>,
    pub label: Option<String>,
    /// Kombo's status: `ACTIVE`, `INVALID`, `INACTIVE`, `DELETED`; null before the first pass.
    pub status: Option<String>,
    /// What this ATS lets stagewatch read: `applications`, `outcome`, `current_stage`, each
    /// `SUPPORTED`, `UNSUPPORTED`, `NOT_IMPLEMENTED` or `UNKNOWN`, and `observed_gaps`.
    #[schema(value_type = Option<Object>)]
    pub capabilities: Option<serde_json::Value>,
    pub paused: bool,
    /// Seconds between passes, when this integration overrides `sync.poll_interval`.
    pub poll_interval_seconds: Option<u64>,
    pub last_sync_started_at: Option<DateTime<Utc>>,
    pub last_sync_finished_at: Option<DateTime<Utc>>,
    pub last_full_sync_at: Option<DateTime<Utc>>,
    pub next_sync_at: DateTime<Utc>,
    /// Start of the current streak of failed passes; null when healthy.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<ErrorView>,
    /// Deletions are held by the mass-deletion guard until an operator confirms them.
    pub deletions_held: bool,
    pub created_at: DateTime<Utc>,
}

/// A sync error, safe to show.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    /// Stable kind: `rate_limited`, `not_ready`, `unsupported`, `needs_attention`,
    /// `unauthorized`, `transient`, `unreachable`, `malformed`, `store`, …
    pub kind: String,
    pub message: String,
    pub at: Option<DateTime<Utc>>,
}

impl From<&IntegrationRecord> for IntegrationView {
    fn from(record: &IntegrationRecord) -> Self {
        Self {
            id: record.id.to_string(),
            tool: record.tool.clone(),
            label: record.label.clone(),
            status: record
                .status
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(str::to_owned)),
            capabilities: record
                .capabilities
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
            paused: record.paused,
            poll_interval_seconds: record.poll_interval.map(|d| d.as_secs()),
            last_sync_started_at: record.last_pass_started_at,
            last_sync_finished_at: record.last_pass_finished_at,
            last_full_sync_at: record.last_full_pass_at,
            next_sync_at: record.next_sync_at,
            failing_since: record.failing_since,
            last_error: record.last_error.as_ref().map(|e| ErrorView {
                kind: e.kind.clone(),
                message: e.message.clone(),
                at: record.last_error_at,
            }),
            deletions_held: record.deletions_held,
            created_at: record.created_at,
        }
    }
}

/// A list of integrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub integrations: Vec<IntegrationView>,
}

/// Held deletions released by an operator.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionsConfirmed {
    /// Applications whose held `application.deleted` (and other held events) entered the feed.
    pub released: u64,
}

/// An accepted request whose effect comes later.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub message: String,
}
