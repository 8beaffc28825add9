//! Integrations: registration, pausing, scheduling, and the leases that keep two replicas from
//! syncing the same integration at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::event::FailureReport;
use domain::ports::StoreError;
use domain::{Capabilities, ChangeEvent, IntegrationId, IntegrationStatus};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

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
    pub last_pass_started_at: Option<DateTime<Utc>>,
    pub last_pass_finished_at: Option<DateTime<Utc>>,
    pub last_full_pass_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<FailureReport>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub deletions_held: bool,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
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
        last_pass_started_at: row.last_pass_started_at,
        last_pass_finished_at: row.last_pass_finished_at,
        last_full_pass_at: row.last_full_pass_at,
        failing_since: row.failing_since,
        last_error: opt_from_json("last error", row.last_error.as_deref())?,
        last_error_at: row.last_error_at,
        deletions_held: row.deletions_held,
        lease_owner: row.lease_owner,
        lease_expires_at: row.lease_expires_at,
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
            last_pass_started_at: None,
            last_pass_finished_at: None,
            last_full_pass_at: None,
            failing_since: None,
            last_error: None,
            last_error_at: None,
            deletions_held: false,
            lease_owner: None,
            lease_expires_at: None,
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

    /// Makes the integration due now (a sync on demand); false when not registered.
    pub async fn make_due(
        &self,
        id: &IntegrationId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let touched = execute(
            &self.db,
            self.statement(
                "UPDATE integrations SET next_sync_at = $1 WHERE id = $2",
                vec![now.into(), id.as_str().into()],
            ),
        )
        .await
        .or_store_error()?;
        Ok(touched > 0)
    }

    /// Records Kombo's status of the integration with its events, atomically; false (and
    /// nothing appended) when not registered.
    pub async fn set_status(
        &self,
        id: &IntegrationId,
        status: IntegrationStatus,
        events: Vec<ChangeEvent>,
    ) -> Result<bool, StoreError> {
        let tx = self.begin_write().await?;
        let touched = execute(
            &tx,
            self.statement(
                "UPDATE integrations SET status = $1 WHERE id = $2",
                vec![enum_text(&status).into(), id.as_str().into()],
            ),
        )
        .await
        .or_store_error()?;
        if touched == 0 {
            tx.rollback().await.or_store_error()?;
            return Ok(false);
        }
        let appended = self.append_in(&tx, &events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        Ok(true)
    }

    /// Claims up to `limit` integrations due for a sync (not paused, `next_sync_at <= now`,
    /// lease free or expired) for `owner` until `now + lease`. On PostgreSQL the candidates are
    /// locked with `FOR UPDATE SKIP LOCKED`, so concurrent claimers on other replicas take
    /// different integrations instead of queueing behind each other; on SQLite the statement
    /// runs under the database's single write lock.
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
            "UPDATE integrations SET lease_owner = $1, lease_expires_at = $2 \
             WHERE id IN (SELECT id FROM integrations \
               WHERE paused = $3 AND next_sync_at <= $4 \
                 AND (lease_expires_at IS NULL OR lease_expires_at <= $4) \
               ORDER BY next_sync_at, id LIMIT $5 {lock}) \
             RETURNING *"
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
        rows.sort_by(|a, b| (a.next_sync_at, &a.id).cmp(&(b.next_sync_at, &b.id)));
        rows.into_iter().map(record_from_row).collect()
    }

    /// Extends `owner`'s lease; false when the lease is no longer `owner`'s.
    pub async fn renew_lease(
        &self,
        id: &IntegrationId,
        owner: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let touched = execute(
            &self.db,
            self.statement(
                "UPDATE integrations SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3",
                vec![after(now, lease).into(), id.as_str().into(), owner.into()],
            ),
        )
        .await
        .or_store_error()?;
        Ok(touched > 0)
    }

    /// Gives up `owner`'s lease and schedules the next sync. A lease that passed to another
    /// owner in the meantime is left alone.
    pub async fn release_lease(
        &self,
        id: &IntegrationId,
        owner: &str,
        next_sync_at: DateTime<Utc>,
        full_pass_done_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut active = integration::ActiveModel {
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            next_sync_at: Set(next_sync_at),
            ..Default::default()
        };
        if let Some(at) = full_pass_done_at {
            active.last_full_pass_at = Set(Some(at));
        }
        integration::Entity::update_many()
            .set(active)
            .filter(integration::Column::Id.eq(id.as_str()))
            .filter(integration::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await
            .or_store_error()?;
        Ok(())
    }
}
