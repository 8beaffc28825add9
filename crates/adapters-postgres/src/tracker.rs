//! The domain's `TrackerStore`: sync state, pipelines, atomic page application, held
//! deletions and pass bookkeeping.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use domain::detect::StageEntry;
use domain::ports::{
    AppliedPage, HeldChange, HoldStats, IntegrationUpdate, LeaseEpoch, PageChanges, PassCompletion,
    PassFailure, StoreError, SyncState, TrackerStore,
};
use domain::{
    ApplicationId, ChangeEvent, IntegrationId, JobId, Pipeline, StageRef, TrackedApplication,
};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    FromQueryResult, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
};
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::entity::{application, held_change, integration};
use crate::error::OrStoreError;
use crate::feed::CHUNK;
use crate::funnel_totals;
use crate::pipelines::{load_pipelines, save_pipelines};
use crate::rows::{application_from_row, application_row, enum_text, from_json, to_json};
use crate::store::{Backend, Store, application_probe, execute, json_ids};

#[async_trait]
impl TrackerStore for Store {
    async fn sync_state(&self, integration: &IntegrationId) -> Result<SyncState, StoreError> {
        let record = self
            .integration(integration)
            .await?
            .ok_or_else(|| StoreError::UnknownIntegration(integration.clone()))?;
        Ok(SyncState {
            watermark: record.watermark,
            capabilities: record.capabilities,
            status: record.status,
            failing_since: record.failing_since,
            deletions_held: record.deletions_held,
        })
    }

    async fn update_integration(&self, update: IntegrationUpdate) -> Result<(), StoreError> {
        let tx = self.begin_write().await?;
        self.hold_lease(
            &tx,
            &update.integration_id,
            Some(update.lease),
            IntegrationLock::Exclusive,
            "update_integration",
        )
        .await?;
        // Setting the id makes a no-op write when nothing changes, which still tells whether
        // the integration exists.
        let mut active = integration::ActiveModel {
            id: Set(update.integration_id.as_str().to_owned()),
            ..Default::default()
        };
        if let Some(capabilities) = &update.capabilities {
            active.capabilities = Set(Some(to_json(capabilities)));
        }
        if let Some(status) = &update.status {
            active.status = Set(Some(enum_text(status)));
        }
        let touched = integration::Entity::update_many()
            .set(active)
            .filter(integration::Column::Id.eq(update.integration_id.as_str()))
            .exec(&tx)
            .await
            .or_store_error()?
            .rows_affected;
        if touched == 0 {
            return Err(StoreError::UnknownIntegration(update.integration_id));
        }
        let appended = self.append_in(&tx, &update.events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        Ok(())
    }

    async fn load_applications(
        &self,
        integration: &IntegrationId,
        ids: &[ApplicationId],
    ) -> Result<Vec<TrackedApplication>, StoreError> {
        let mut states = Vec::with_capacity(ids.len());
        if self.backend == Backend::Postgres {
            let rows = application::Entity::find()
                .from_raw_sql(self.statement(
                    format!("SELECT a.* {}", application_probe("*")),
                    vec![
                        integration.as_str().into(),
                        json_ids(ids.iter().map(ApplicationId::as_str)),
                    ],
                ))
                .all(&self.db)
                .await
                .or_store_error()?;
            for row in rows {
                states.push(application_from_row(row)?);
            }
            return Ok(states);
        }
        for chunk in ids.chunks(CHUNK) {
            let rows = application::Entity::find()
                .filter(application::Column::IntegrationId.eq(integration.as_str()))
                .filter(
                    application::Column::ApplicationId
                        .is_in(chunk.iter().map(ApplicationId::as_str)),
                )
                .all(&self.db)
                .await
                .or_store_error()?;
            for row in rows {
                states.push(application_from_row(row)?);
            }
        }
        Ok(states)
    }

    async fn load_pipelines(
        &self,
        integration: &IntegrationId,
        jobs: &[JobId],
    ) -> Result<Vec<Pipeline>, StoreError> {
        load_pipelines(&self.db, integration, Some(jobs)).await
    }

    async fn save_pipelines(
        &self,
        integration: &IntegrationId,
        pipelines: &[Pipeline],
    ) -> Result<(), StoreError> {
        let tx = self.begin_write().await?;
        save_pipelines(&tx, integration, pipelines).await?;
        tx.commit().await.or_store_error()
    }

    /// Runs on a task of its own: a pass stores pages while it detects the next ones, and a
    /// page polled only between the pass's own steps would sit idle in its transaction (with
    /// the feed counter locked, at its end) until the pass came back to it. Dropping the
    /// returned future aborts the task, which rolls the transaction back, as dropping the
    /// work itself would.
    async fn apply_page(&self, changes: PageChanges) -> Result<AppliedPage, StoreError> {
        let store = self.clone();
        let task = AbortOnDropHandle::new(tokio::spawn(
            async move { store.apply_page_here(changes).await }.in_current_span(),
        ));
        match task.await {
            Ok(applied) => applied,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(StoreError::Unavailable(format!(
                "the page's task was cancelled: {error}"
            ))),
        }
    }

    async fn apply_first_sighting(&self, changes: PageChanges) -> Result<bool, StoreError> {
        let tx = self.begin_write().await?;
        let integration = &changes.integration_id;
        // The integration row's lock orders this write with every page a pass applies.
        self.hold_lease(
            &tx,
            integration,
            None,
            IntegrationLock::Exclusive,
            "apply_first_sighting",
        )
        .await?;
        let ids = changes
            .applications
            .iter()
            .map(|application| application.id.as_str());
        let already_stored = if self.backend == Backend::Postgres {
            #[derive(Debug, FromQueryResult)]
            struct Stored {
                n: i64,
            }
            Stored::find_by_statement(self.statement(
                format!("SELECT COUNT(*) AS n {}", application_probe("1 AS one")),
                vec![integration.as_str().into(), json_ids(ids)],
            ))
            .one(&tx)
            .await
            .or_store_error()?
            .map_or(0, |row| row.n)
        } else {
            i64::try_from(
                application::Entity::find()
                    .filter(application::Column::IntegrationId.eq(integration.as_str()))
                    .filter(application::Column::ApplicationId.is_in(ids))
                    .count(&tx)
                    .await
                    .or_store_error()?,
            )
            .unwrap_or(i64::MAX)
        };
        if already_stored > 0 {
            tx.rollback().await.or_store_error()?;
            return Ok(false);
        }
        self.apply_page_in(tx, changes).await?;
        Ok(true)
    }

    async fn count_held(&self, integration: &IntegrationId) -> Result<u64, StoreError> {
        held_change::Entity::find()
            .filter(held_change::Column::IntegrationId.eq(integration.as_str()))
            .count(&self.db)
            .await
            .or_store_error()
    }

    async fn hold_stats(&self, integration: &IntegrationId) -> Result<HoldStats, StoreError> {
        let held = self.count_held(integration).await?;
        let tracked = application::Entity::find()
            .filter(application::Column::IntegrationId.eq(integration.as_str()))
            .filter(application::Column::DeletedAt.is_null())
            .count(&self.db)
            .await
            .or_store_error()?;
        Ok(HoldStats { held, tracked })
    }

    async fn release_held(
        &self,
        integration: &IntegrationId,
        lease: Option<LeaseEpoch>,
    ) -> Result<u64, StoreError> {
        let tx = self.begin_write().await?;
        // An operator's confirmation carries no lease, but takes the row lock all the same:
        // the integration row is always locked before the feed's counter.
        self.hold_lease(
            &tx,
            integration,
            lease,
            IntegrationLock::Exclusive,
            "release_held",
        )
        .await?;
        execute(
            &tx,
            self.statement(
                "UPDATE integrations SET deletions_held = $1 WHERE id = $2",
                vec![false.into(), integration.as_str().into()],
            ),
        )
        .await
        .or_store_error()?;
        let rows = held_change::Entity::find()
            .filter(held_change::Column::IntegrationId.eq(integration.as_str()))
            .order_by_asc(held_change::Column::HeldAt)
            .order_by_asc(held_change::Column::ApplicationId)
            .all(&tx)
            .await
            .or_store_error()?;
        let mut states = Vec::with_capacity(rows.len());
        let mut events: Vec<ChangeEvent> = Vec::new();
        let mut entries = Vec::new();
        for row in rows {
            let held = held_from_row(&row)?;
            states.push(held.application);
            events.extend(held.events);
            entries.extend(held.stage_entry);
        }
        let before = self
            .funnel_before(&tx, integration, &states, &entries)
            .await?;
        upsert_applications(&tx, &states).await?;
        drop_held(&tx, integration, &states).await?;
        self.record_visits(&tx, integration, &entries, &before)
            .await?;
        self.update_funnel_totals(&tx, integration, before, &states, &entries)
            .await?;
        let appended = self.append_in(&tx, &events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        tracing::info!(integration = %integration, released = states.len(), "held changes released");
        Ok(states.len() as u64)
    }

    async fn complete_pass(&self, completion: PassCompletion) -> Result<(), StoreError> {
        let tx = self.begin_write().await?;
        let integration = &completion.integration_id;
        self.hold_lease(
            &tx,
            integration,
            Some(completion.lease),
            IntegrationLock::Exclusive,
            "complete_pass",
        )
        .await?;
        // The flag says an operator's confirmation is pending: true only while held changes
        // remain (an operator may have released them during the pass).
        let deletions_held = completion.deletions_held
            && held_change::Entity::find()
                .filter(held_change::Column::IntegrationId.eq(integration.as_str()))
                .count(&tx)
                .await
                .or_store_error()?
                > 0;
        let mut active = integration::ActiveModel {
            last_pass_started_at: Set(Some(completion.started_at)),
            last_pass_finished_at: Set(Some(completion.finished_at)),
            deletions_held: Set(deletions_held),
            failing_since: Set(None),
            ..Default::default()
        };
        if let Some(watermark) = completion.watermark {
            active.watermark = Set(Some(watermark));
        }
        if completion.full {
            active.last_full_pass_at = Set(Some(completion.finished_at));
        }
        if let Some(capabilities) = &completion.capabilities {
            active.capabilities = Set(Some(to_json(capabilities)));
        }
        self.update_integration_row(&tx, &completion.integration_id, active)
            .await?;
        let appended = self.append_in(&tx, &completion.events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        Ok(())
    }

    async fn record_failure(&self, failure: PassFailure) -> Result<(), StoreError> {
        let tx = self.begin_write().await?;
        self.hold_lease(
            &tx,
            &failure.integration_id,
            Some(failure.lease),
            IntegrationLock::Exclusive,
            "record_failure",
        )
        .await?;
        let active = integration::ActiveModel {
            failing_since: Set(failure.failing_since),
            last_error: Set(Some(to_json(&failure.error))),
            last_error_at: Set(Some(failure.at)),
            last_pass_finished_at: Set(Some(failure.at)),
            ..Default::default()
        };
        self.update_integration_row(&tx, &failure.integration_id, active)
            .await?;
        let appended = self.append_in(&tx, &failure.events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        Ok(())
    }
}

impl Store {
    /// [`TrackerStore::apply_page`], on the caller's task.
    async fn apply_page_here(&self, changes: PageChanges) -> Result<AppliedPage, StoreError> {
        let tx = self.begin_write().await?;
        let integration = &changes.integration_id;
        // A pass stores pages of disjoint applications at once, so its pages share the lock;
        // a page from anything else (a move or rejection being recorded) takes it alone, like
        // every other write to the integration, and needs no registered integration to lock.
        let lock = if changes.lease.is_some() {
            IntegrationLock::Shared
        } else {
            IntegrationLock::Exclusive
        };
        let held = self
            .hold_lease(&tx, integration, changes.lease, lock, "apply_page")
            .await;
        match held {
            Ok(()) => {}
            Err(StoreError::UnknownIntegration(_)) if changes.lease.is_none() => {}
            Err(error) => return Err(error),
        }
        self.apply_page_in(tx, changes).await
    }

    /// Writes a page in `tx`, whose integration row is already locked, and commits.
    async fn apply_page_in(
        &self,
        tx: DatabaseTransaction,
        changes: PageChanges,
    ) -> Result<AppliedPage, StoreError> {
        let integration = &changes.integration_id;
        save_pipelines(&tx, integration, &changes.pipelines).await?;
        let before = self
            .funnel_before(
                &tx,
                integration,
                &changes.applications,
                &changes.stage_entries,
            )
            .await?;
        upsert_applications(&tx, &changes.applications).await?;
        drop_held(&tx, integration, &changes.applications).await?;
        self.record_visits(&tx, integration, &changes.stage_entries, &before)
            .await?;
        self.update_funnel_totals(
            &tx,
            integration,
            before,
            &changes.applications,
            &changes.stage_entries,
        )
        .await?;
        hold(&tx, integration, &changes.held).await?;
        let appended = self.append_in(&tx, &changes.events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        self.count_written(changes.applications.len());
        Ok(AppliedPage {
            events_appended: appended.count,
        })
    }

    /// Locks the integration's row (`lock`) until the transaction ends (on SQLite the write transaction
    /// already holds the database's lock) and, when the write comes from a pass, checks that
    /// its lease was not claimed again since: a stale epoch refuses the whole transaction with
    /// [`StoreError::LeaseLost`]. A claim updates the same row, so it cannot slip in between
    /// this check and the commit.
    pub(crate) async fn hold_lease<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        lease: Option<LeaseEpoch>,
        lock: IntegrationLock,
        operation: &'static str,
    ) -> Result<(), StoreError> {
        let lock = match (self.backend, lock) {
            (Backend::Postgres, IntegrationLock::Exclusive) => " FOR UPDATE",
            (Backend::Postgres, IntegrationLock::Shared) => " FOR SHARE",
            (Backend::Sqlite, _) => "",
        };
        let row = tx
            .query_one_raw(self.statement(
                format!("SELECT lease_epoch FROM integrations WHERE id = $1{lock}"),
                vec![integration.as_str().into()],
            ))
            .await
            .or_store_error()?
            .ok_or_else(|| StoreError::UnknownIntegration(integration.clone()))?;
        let current = LeaseEpoch(row.try_get::<i64>("", "lease_epoch").or_store_error()?);
        match lease {
            Some(held) if held != current => {
                tracing::warn!(
                    integration = %integration,
                    operation,
                    held = held.0,
                    current = current.0,
                    "refused a write from a pass that lost its lease"
                );
                Err(StoreError::LeaseLost {
                    integration: integration.clone(),
                    operation,
                    held,
                    current,
                })
            }
            _ => Ok(()),
        }
    }

    async fn update_integration_row<C: ConnectionTrait>(
        &self,
        tx: &C,
        id: &IntegrationId,
        active: integration::ActiveModel,
    ) -> Result<(), StoreError> {
        let touched = integration::Entity::update_many()
            .set(active)
            .filter(integration::Column::Id.eq(id.as_str()))
            .exec(tx)
            .await
            .or_store_error()?
            .rows_affected;
        if touched == 0 {
            return Err(StoreError::UnknownIntegration(id.clone()));
        }
        Ok(())
    }
}

/// How a write holds its integration's row until it commits. Both kinds keep out a claim (an
/// `UPDATE` of the row), so a lease checked under either stays valid until the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntegrationLock {
    /// Alone: no other write of the integration runs meanwhile.
    Exclusive,
    /// Beside the other pages of the same pass, which hold disjoint applications.
    Shared,
}

/// The applications a write touches: those it stores and those whose stays it records.
fn touched<'a>(states: &'a [TrackedApplication], entries: &'a [StageEntry]) -> Vec<&'a str> {
    let touched: BTreeSet<&str> = states
        .iter()
        .map(|state| state.id.as_str())
        .chain(entries.iter().map(|entry| entry.application_id.as_str()))
        .collect();
    touched.into_iter().collect()
}

impl Store {
    /// The applications that writing `states` and `entries` touches, as the funnel totals read
    /// them before the write.
    async fn funnel_before<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        states: &[TrackedApplication],
        entries: &[StageEntry],
    ) -> Result<funnel_totals::Members, StoreError> {
        let touched = touched(states, entries);
        funnel_totals::read_members(tx, self.backend, integration.as_str(), &touched).await
    }

    /// Adds to the funnel totals what the write of `states` and `entries` changed. Those
    /// stored before it are read again; those it stored for the first time are taken from the
    /// write itself.
    async fn update_funnel_totals<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        before: funnel_totals::Members,
        states: &[TrackedApplication],
        entries: &[StageEntry],
    ) -> Result<(), StoreError> {
        let stored: HashSet<&str> = before
            .iter()
            .map(|(member, _)| member.application_id.as_str())
            .collect();
        let mut latest: HashMap<&str, &TrackedApplication> = HashMap::new();
        for state in states {
            latest.insert(state.id.as_str(), state);
        }
        let mut entries_of: HashMap<&str, Vec<&StageEntry>> = HashMap::new();
        for entry in entries {
            entries_of
                .entry(entry.application_id.as_str())
                .or_default()
                .push(entry);
        }
        let (first, again): (Vec<&str>, Vec<&str>) = touched(states, entries)
            .into_iter()
            .partition(|id| !stored.contains(id) && latest.contains_key(id));
        let mut after =
            funnel_totals::read_members(tx, self.backend, integration.as_str(), &again).await?;
        for id in first {
            let entries = entries_of.get(id).map_or(&[][..], Vec::as_slice);
            after.push(funnel_totals::first_written(latest[id], entries));
        }
        let deltas = funnel_totals::difference(&before, &after);
        funnel_totals::add_totals(tx, self.backend, self.next_totals_slot(), deltas).await
    }
}

pub(crate) async fn upsert_applications<C: ConnectionTrait>(
    tx: &C,
    states: &[TrackedApplication],
) -> Result<(), StoreError> {
    use application::Column as C_;
    // The last state of an application wins when a batch holds two.
    let mut latest: HashMap<(&str, &str), &TrackedApplication> = HashMap::new();
    let mut order = Vec::new();
    for state in states {
        let key = (state.integration_id.as_str(), state.id.as_str());
        if latest.insert(key, state).is_none() {
            order.push(key);
        }
    }
    let rows: Vec<application::ActiveModel> = order
        .iter()
        .map(|key| application_row(latest[key]).into_active_model())
        .collect();
    for chunk in rows.chunks(CHUNK / 2) {
        application::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([C_::IntegrationId, C_::ApplicationId])
                    .update_columns([
                        C_::RemoteId,
                        C_::JobId,
                        C_::JobName,
                        C_::CandidateId,
                        C_::CandidateName,
                        C_::CurrentStageId,
                        C_::CurrentStageName,
                        C_::CurrentStageIndex,
                        C_::StageUnknownSince,
                        C_::Outcome,
                        C_::OutcomeUnknownSince,
                        C_::RejectionReasonName,
                        C_::RejectedAt,
                        C_::ChangedAt,
                        C_::DeletedAt,
                        C_::RemoteCreatedAt,
                        C_::Origin,
                        C_::FirstSeenAt,
                        C_::LastSeenAt,
                        C_::EnteredCurrentStageAt,
                    ])
                    // A state never goes back in time: an older snapshot (from a write outside
                    // a pass, or a retry) leaves a newer stored state alone.
                    .action_and_where(
                        Expr::col((application::Entity, C_::ChangedAt))
                            .lte(Expr::col((Alias::new("excluded"), C_::ChangedAt))),
                    )
                    .to_owned(),
            )
            .exec_without_returning(tx)
            .await
            .or_store_error()?;
    }
    Ok(())
}

/// A newer observation supersedes a held change of the same application.
async fn drop_held<C: ConnectionTrait>(
    tx: &C,
    integration: &IntegrationId,
    states: &[TrackedApplication],
) -> Result<(), StoreError> {
    for chunk in states.chunks(CHUNK) {
        held_change::Entity::delete_many()
            .filter(held_change::Column::IntegrationId.eq(integration.as_str()))
            .filter(held_change::Column::ApplicationId.is_in(chunk.iter().map(|s| s.id.as_str())))
            .exec(tx)
            .await
            .or_store_error()?;
    }
    Ok(())
}

async fn hold<C: ConnectionTrait>(
    tx: &C,
    integration: &IntegrationId,
    held: &[HeldChange],
) -> Result<(), StoreError> {
    let rows: Vec<held_change::ActiveModel> = held
        .iter()
        .map(|change| {
            held_change::Model {
                integration_id: integration.as_str().to_owned(),
                application_id: change.application.id.as_str().to_owned(),
                application: to_json(&change.application),
                events: to_json(&change.events),
                stage: change.stage_entry.as_ref().map(|e| to_json(&e.stage)),
                stage_entered_at: change.stage_entry.as_ref().and_then(|e| e.entered_at),
                held_at: change.application.last_seen_at,
            }
            .into_active_model()
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        held_change::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    held_change::Column::IntegrationId,
                    held_change::Column::ApplicationId,
                ])
                .update_columns([
                    held_change::Column::Application,
                    held_change::Column::Events,
                    held_change::Column::Stage,
                    held_change::Column::StageEnteredAt,
                    held_change::Column::HeldAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(tx)
            .await
            .or_store_error()?;
    }
    Ok(())
}

fn held_from_row(row: &held_change::Model) -> Result<HeldChange, StoreError> {
    let application: TrackedApplication = from_json("held application", &row.application)?;
    let stage_entry = match &row.stage {
        Some(stage) => Some(StageEntry {
            application_id: application.id.clone(),
            stage: from_json::<StageRef>("held stage", stage)?,
            entered_at: row.stage_entered_at,
        }),
        None => None,
    };
    Ok(HeldChange {
        events: from_json("held events", &row.events)?,
        application,
        stage_entry,
    })
}
