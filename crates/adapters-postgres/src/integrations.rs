//! Integrations: registration, pausing, scheduling, and the leases that keep two replicas from
//! syncing the same integration at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::event::FailureReport;
use domain::ports::{LeaseEpoch, StoreError};
use domain::{Capabilities, ChangeEvent, IntegrationId, IntegrationStatus};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, IntoActiveModel, QueryOrder};

use crate::entity::integration;
use crate::error::OrStoreError;
use crate::rows::{after, enum_from_text, enum_text, id, opt_from_json};
use crate::store::{Backend, Store, execute};

/// An integration to start watching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntegration {
    pub id: IntegrationId,
    pub tool: Option<String>,
    pub label: Option<String>,
    /// How often to sync it; the server's default when `None`.
    pub poll_interval: Option<Duration>,
}

/// An integration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRecord {
    pub id: IntegrationId,
    pub tool: Option<String>,
    pub label: Option<String>,
    pub status: Option<IntegrationStatus>,
    pub capabilities: Option<Capabilities>,
    pub watermark: Option<DateTime<Utc>>,
    pub poll_interval: Option<Duration>,
    pub paused: bool,
    pub next_sync_at: DateTime<Utc>,
    /// When a webhook or an API call asked for a sync that has not run yet: such integrations
    /// are claimed first.
    pub sync_requested_at: Option<DateTime<Utc>>,
    pub last_pass_started_at: Option<DateTime<Utc>>,
    pub last_pass_finished_at: Option<DateTime<Utc>>,
    pub last_full_pass_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<FailureReport>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub deletions_held: bool,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The fencing token of the last claim: a pass writes with the epoch it claimed.
    pub lease_epoch: LeaseEpoch,
    pub created_at: DateTime<Utc>,
}

/// What became of a status from a Kombo webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApplied {
    Applied,
    /// A state Kombo stamped later was applied before: this one is dropped.
    Stale,
    /// The integration is not registered; nothing appended.
    Unknown,
}

/// The result of claiming one integration's lease on demand (`stagewatch sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per claim, read once: boxing buys nothing
pub enum Claim {
    /// The lease is ours; the record as claimed.
    Claimed(IntegrationRecord),
    /// Another process holds the lease.
    HeldBy {
        owner: String,
        expires_at: DateTime<Utc>,
    },
    /// The integration is not registered.
    Unknown,
}

/// The result of registering an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    Created(IntegrationRecord),
    /// It was registered before; the stored record is unchanged.
    AlreadyRegistered(IntegrationRecord),
}

impl Registered {
    /// The stored record, either way.
    pub fn record(&self) -> &IntegrationRecord {
        match self {
            Self::Created(record) | Self::AlreadyRegistered(record) => record,
        }
    }
}

/// The order [`Store::claim_due`] takes integrations in: requested first, oldest request first
/// (`false` sorts before `true`), then by due time.
fn claim_order(row: &integration::Model) -> (bool, Option<DateTime<Utc>>, DateTime<Utc>, String) {
    (
        row.sync_requested_at.is_none(),
        row.sync_requested_at,
        row.next_sync_at,
        row.id.clone(),
    )
}

pub(crate) fn record_from_row(row: integration::Model) -> Result<IntegrationRecord, StoreError> {
    Ok(IntegrationRecord {
        id: id(row.id)?,
        tool: row.tool,
        label: row.label,
        status: row
            .status
            .as_deref()
            .map(|s| enum_from_text("integration status", s))
            .transpose()?,
        capabilities: opt_from_json("capabilities", row.capabilities.as_deref())?,
        watermark: row.watermark,
        poll_interval: row
            .poll_interval_seconds
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or_default())),
        paused: row.paused,
        next_sync_at: row.next_sync_at,
        sync_requested_at: row.sync_requested_at,
        last_pass_started_at: row.last_pass_started_at,
        last_pass_finished_at: row.last_pass_finished_at,
        last_full_pass_at: row.last_full_pass_at,
        failing_since: row.failing_since,
        last_error: opt_from_json("last error", row.last_error.as_deref())?,
        last_error_at: row.last_error_at,
        deletions_held: row.deletions_held,
        lease_owner: row.lease_owner,
        lease_expires_at: row.lease_expires_at,
        lease_epoch: LeaseEpoch(row.lease_epoch),
        created_at: row.created_at,
    })
}

impl Store {
    /// Registers an integration, due for its first sync at once. Registering it again changes
    /// nothing and says so.
    pub async fn register_integration(
        &self,
        new: &NewIntegration,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        let row = integration::Model {
            id: new.id.as_str().to_owned(),
            tool: new
                .tool
                .clone()
                .or_else(|| new.id.tool().map(str::to_owned)),
            label: new.label.clone(),
            status: None,
            capabilities: None,
            watermark: None,
            poll_interval_seconds: new
                .poll_interval
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            paused: false,
            next_sync_at: now,
            sync_requested_at: None,
            last_pass_started_at: None,
            last_pass_finished_at: None,
            last_full_pass_at: None,
            failing_since: None,
            last_error: None,
            last_error_at: None,
            deletions_held: false,
            lease_owner: None,
            lease_expires_at: None,
            lease_epoch: 0,
            status_updated_at: None,
            created_at: now,
        };
        let inserted = integration::Entity::insert(row.into_active_model())
            .on_conflict(
                OnConflict::column(integration::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .or_store_error()?;
        let record = self
            .integration(&new.id)
            .await?
            .ok_or_else(|| StoreError::UnknownIntegration(new.id.clone()))?;
        Ok(if inserted == 1 {
            tracing::info!(integration = %new.id, "integration registered");
            Registered::Created(record)
        } else {
            Registered::AlreadyRegistered(record)
        })
    }

    /// One integration, if registered.
    pub async fn integration(
        &self,
        id: &IntegrationId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        integration::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .or_store_error()?
            .map(record_from_row)
            .transpose()
    }

    /// Every registered integration, by id.
    pub async fn list_integrations(&self) -> Result<Vec<IntegrationRecord>, StoreError> {
        integration::Entity::find()
            .order_by_asc(integration::Column::Id)
            .all(&self.db)
            .await
            .or_store_error()?
            .into_iter()
            .map(record_from_row)
            .collect()
    }

    /// Pauses or resumes syncing; false when the integration is not registered.
    pub async fn set_paused(&self, id: &IntegrationId, paused: bool) -> Result<bool, StoreError> {
        let touched = execute(
            &self.db,
            self.statement(
                "UPDATE integrations SET paused = $1 WHERE id = $2",
                vec![paused.into(), id.as_str().into()],
            ),
        )
        .await
        .or_store_error()?;
        Ok(touched > 0)
    }

    /// Makes the integration due now and requested (a sync on demand), so that it is claimed
    /// before integrations that are only due on their schedule; false when not registered. An
    /// earlier request still waiting keeps its time.
    pub async fn make_due(
        &self,
        id: &IntegrationId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let touched = execute(
            &self.db,
            self.statement(
                "UPDATE integrations SET next_sync_at = $1, \
                   sync_requested_at = COALESCE(sync_requested_at, $1) WHERE id = $2",
                vec![now.into(), id.as_str().into()],
            ),
        )
        .await
        .or_store_error()?;
        Ok(touched > 0)
    }

    /// Records Kombo's status of the integration with its events, atomically, unless a state
    /// Kombo stamped later (`updated_at`) was applied already: webhooks may arrive out of
    /// order, and the older state must not win. With `updated_at` `None` (Kombo sent no time)
    /// the state is applied and the stored time kept.
    pub async fn set_status(
        &self,
        id: &IntegrationId,
        status: IntegrationStatus,
        updated_at: Option<DateTime<Utc>>,
        events: Vec<ChangeEvent>,
    ) -> Result<StatusApplied, StoreError> {
        let tx = self.begin_write().await?;
        let touched = execute(
            &tx,
            self.statement(
                "UPDATE integrations SET status = $1, \
                   status_updated_at = COALESCE($3, status_updated_at) \
                 WHERE id = $2 \
                   AND ($3 IS NULL OR status_updated_at IS NULL OR status_updated_at < $3)",
                vec![
                    enum_text(&status).into(),
                    id.as_str().into(),
                    updated_at.into(),
                ],
            ),
        )
        .await
        .or_store_error()?;
        if touched == 0 {
            tx.rollback().await.or_store_error()?;
            return Ok(if self.integration(id).await?.is_some() {
                StatusApplied::Stale
            } else {
                StatusApplied::Unknown
            });
        }
        let appended = self.append_in(&tx, &events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        Ok(StatusApplied::Applied)
    }

    /// Claims up to `limit` integrations due for a sync (not paused, `next_sync_at <= now`,
    /// lease free or expired) for `owner` until `now + lease`, increasing each one's fencing
    /// token (`lease_epoch`): those requested by a webhook or an API call first, oldest request
    /// first, then the rest in the order they fell due. On PostgreSQL the candidates are locked with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers on other replicas take different
    /// integrations instead of queueing behind each other; on SQLite the statement runs under
    /// the database's single write lock.
    pub async fn claim_due(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<IntegrationRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE integrations SET lease_owner = $1, lease_expires_at = $2, \
               lease_epoch = lease_epoch + 1 \
             WHERE id IN (SELECT id FROM integrations \
               WHERE paused = $3 AND next_sync_at <= $4 \
                 AND (lease_expires_at IS NULL OR lease_expires_at <= $4) \
               ORDER BY sync_requested_at IS NULL, sync_requested_at, next_sync_at, id \
               LIMIT $5 {lock}) \
             RETURNING {columns}",
            columns = Store::returning::<integration::Entity>()
        );
        let statement = self.statement(
            sql,
            vec![
                owner.into(),
                after(now, lease).into(),
                false.into(),
                now.into(),
                i64::from(limit).into(),
            ],
        );
        let mut rows = integration::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await
            .or_store_error()?;
        rows.sort_by_key(claim_order);
        rows.into_iter().map(record_from_row).collect()
    }

    /// Claims one integration's lease for `owner` whether it is due or not (a sync on demand),
    /// increasing its fencing token; says who holds it when its lease is taken and unexpired.
    pub async fn claim_integration(
        &self,
        id: &IntegrationId,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let statement = self.statement(
            format!(
                "UPDATE integrations SET lease_owner = $1, lease_expires_at = $2, \
                   lease_epoch = lease_epoch + 1 \
                 WHERE id = $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $4) \
                 RETURNING {}",
                Store::returning::<integration::Entity>()
            ),
            vec![
                owner.into(),
                after(now, lease).into(),
                id.as_str().into(),
                now.into(),
            ],
        );
        let claimed = integration::Entity::find()
            .from_raw_sql(statement)
            .one(&self.db)
            .await
            .or_store_error()?;
        if let Some(row) = claimed {
            return Ok(Claim::Claimed(record_from_row(row)?));
        }
        Ok(match self.integration(id).await? {
            None => Claim::Unknown,
            Some(record) => Claim::HeldBy {
                owner: record.lease_owner.unwrap_or_default(),
                expires_at: record.lease_expires_at.unwrap_or(now),
            },
        })
    }

    /// Extends the lease of a claim (`claimed`, as [`Self::claim_due`] or
    /// [`Self::claim_integration`] returned it); false when the integration was claimed again
    /// since, so the lease is lost.
    pub async fn renew_lease(
        &self,
        claimed: &IntegrationRecord,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let touched = execute(
            &self.db,
            self.statement(
                "UPDATE integrations SET lease_expires_at = $1 \
                 WHERE id = $2 AND lease_epoch = $3 AND lease_owner IS NOT NULL",
                vec![
                    after(now, lease).into(),
                    claimed.id.as_str().into(),
                    claimed.lease_epoch.0.into(),
                ],
            ),
        )
        .await
        .or_store_error()?;
        Ok(touched > 0)
    }

    /// Gives up a claim's lease and schedules the next sync at `next_sync_at` — or earlier,
    /// when a webhook or an API call made the integration due while the pass ran: that request
    /// moved `next_sync_at` away from the value the claim saw, and the comparison happens in
    /// the same statement, so a request arriving during the release is never overwritten. A
    /// lease that passed to another claim in the meantime is left alone.
    pub async fn release_lease(
        &self,
        claimed: &IntegrationRecord,
        next_sync_at: DateTime<Utc>,
        full_pass_done_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        execute(
            &self.db,
            self.statement(
                "UPDATE integrations SET lease_owner = NULL, lease_expires_at = NULL, \
                   next_sync_at = CASE WHEN next_sync_at <> $1 AND next_sync_at < $2 \
                     THEN next_sync_at ELSE $2 END, \
                   sync_requested_at = CASE WHEN next_sync_at <> $1 AND next_sync_at < $2 \
                     THEN sync_requested_at END, \
                   last_full_pass_at = COALESCE($3, last_full_pass_at) \
                 WHERE id = $4 AND lease_epoch = $5",
                vec![
                    claimed.next_sync_at.into(),
                    next_sync_at.into(),
                    full_pass_done_at.into(),
                    claimed.id.as_str().into(),
                    claimed.lease_epoch.0.into(),
                ],
            ),
        )
        .await
        .or_store_error()?;
        Ok(())
    }
}
