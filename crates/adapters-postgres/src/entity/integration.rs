use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tool: Option<String>,
    pub label: Option<String>,
    pub status: Option<String>,
    /// `Capabilities` as JSON.
    pub capabilities: Option<String>,
    pub watermark: Option<DateTimeUtc>,
    pub poll_interval_seconds: Option<i64>,
    pub paused: bool,
    pub next_sync_at: DateTimeUtc,
    /// When a webhook or an API call asked for a sync that has not run yet.
    pub sync_requested_at: Option<DateTimeUtc>,
    pub last_pass_started_at: Option<DateTimeUtc>,
    pub last_pass_finished_at: Option<DateTimeUtc>,
    pub last_full_pass_at: Option<DateTimeUtc>,
    pub failing_since: Option<DateTimeUtc>,
    /// `FailureReport` as JSON.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTimeUtc>,
    pub deletions_held: bool,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// The fencing token: increased by every claim of the lease.
    pub lease_epoch: i64,
    /// Kombo's `updated_at` of the last integration state applied from a webhook.
    pub status_updated_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
