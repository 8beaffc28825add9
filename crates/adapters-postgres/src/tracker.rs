//! The domain's `TrackerStore`: sync state, pipelines, atomic page application, held
//! deletions and pass bookkeeping.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_trait::async_trait;

use domain::detect::StageEntry;
use domain::ports::{
    AppliedPage, HeldChange, HoldStats, IntegrationUpdate, PageChanges, PassCompletion,
    PassFailure, StoreError, SyncState, TrackerStore,
};
use domain::{
    ApplicationId, ChangeEvent, IntegrationId, JobId, Pipeline, RemoteId, Stage, StageId, StageRef,
    TrackedApplication,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Value,
};

use crate::entity::{application, held_change, integration, job, stage, stage_visit};
use crate::error::OrStoreError;
use crate::feed::CHUNK;
use crate::rows::{
    application_from_row, application_row, enum_from_text, enum_text, from_json, id, opt_id,
    to_json,
};
use crate::store::{Store, execute};

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

    async fn apply_page(&self, changes: PageChanges) -> Result<AppliedPage, StoreError> {
        let tx = self.begin_write().await?;
        let integration = &changes.integration_id;
        save_pipelines(&tx, integration, &changes.pipelines).await?;
        upsert_applications(&tx, &changes.applications).await?;
        drop_held(&tx, integration, &changes.applications).await?;
        self.record_visits(&tx, integration, &changes.stage_entries)
            .await?;
        hold(&tx, integration, &changes.held).await?;
        let appended = self.append_in(&tx, &changes.events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        Ok(AppliedPage {
            events_appended: appended.count,
        })
    }

    async fn hold_stats(&self, integration: &IntegrationId) -> Result<HoldStats, StoreError> {
        let held = held_change::Entity::find()
            .filter(held_change::Column::IntegrationId.eq(integration.as_str()))
            .count(&self.db)
            .await
            .or_store_error()?;
        let tracked = application::Entity::find()
            .filter(application::Column::IntegrationId.eq(integration.as_str()))
            .filter(application::Column::DeletedAt.is_null())
            .count(&self.db)
            .await
            .or_store_error()?;
        Ok(HoldStats { held, tracked })
    }

    async fn release_held(&self, integration: &IntegrationId) -> Result<u64, StoreError> {
        let tx = self.begin_write().await?;
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
        upsert_applications(&tx, &states).await?;
        drop_held(&tx, integration, &states).await?;
        self.record_visits(&tx, integration, &entries).await?;
        let appended = self.append_in(&tx, &events).await?;
        execute(
            &tx,
            self.statement(
                "UPDATE integrations SET deletions_held = $1 WHERE id = $2",
                vec![false.into(), integration.as_str().into()],
            ),
        )
        .await
        .or_store_error()?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        tracing::info!(integration = %integration, released = states.len(), "held changes released");
        Ok(states.len() as u64)
    }

    async fn complete_pass(&self, completion: PassCompletion) -> Result<(), StoreError> {
        let tx = self.begin_write().await?;
        let mut active = integration::ActiveModel {
            last_pass_started_at: Set(Some(completion.started_at)),
            last_pass_finished_at: Set(Some(completion.finished_at)),
            deletions_held: Set(completion.deletions_held),
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

    /// Closes each application's open stage visit and opens the new one: one UPDATE for all
    /// the applications of the page, one bulk INSERT.
    pub(crate) async fn record_visits<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        entries: &[StageEntry],
    ) -> Result<(), StoreError> {
        let entries = self.new_visits(tx, integration, entries).await?;
        if entries.is_empty() {
            return Ok(());
        }
        let entries = entries.as_slice();
        // An application entering two stages in one batch: the earlier visit is closed by the
        // later one here, and only its first entry closes the visit already stored.
        let mut first: HashMap<&str, &StageEntry> = HashMap::new();
        let mut next_of: Vec<Option<&StageEntry>> = vec![None; entries.len()];
        let mut last_index: HashMap<&str, usize> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let app = entry.application_id.as_str();
            first.entry(app).or_insert(entry);
            if let Some(previous) = last_index.insert(app, index) {
                next_of[previous] = Some(entry);
            }
        }
        let firsts: Vec<&StageEntry> = entries
            .iter()
            .filter(|e| std::ptr::eq(first[e.application_id.as_str()], *e))
            .collect();
        for chunk in firsts.chunks(CHUNK / 2) {
            let mut values: Vec<Value> = vec![true.into(), integration.as_str().into()];
            let mut cases = String::new();
            let mut ids = Vec::new();
            for entry in chunk {
                let n = values.len();
                let _ = write!(cases, " WHEN ${} THEN ${}", n + 1, n + 2);
                values.push(entry.application_id.as_str().into());
                values.push(entry.entered_at.into());
                ids.push(format!("${}", n + 1));
            }
            let sql = format!(
                "UPDATE stage_visits SET closed = $1, left_at = CASE application_id{cases} END \
                 WHERE integration_id = $2 AND closed = FALSE AND application_id IN ({})",
                ids.join(", ")
            );
            execute(tx, self.statement(sql, values))
                .await
                .or_store_error()?;
        }
        let rows: Vec<stage_visit::ActiveModel> = entries
            .iter()
            .zip(next_of)
            .map(|(entry, next)| stage_visit::ActiveModel {
                id: sea_orm::ActiveValue::NotSet,
                integration_id: Set(integration.as_str().to_owned()),
                application_id: Set(entry.application_id.as_str().to_owned()),
                stage_id: Set(entry.stage.stage_id.as_str().to_owned()),
                stage_name: Set(entry.stage.name.clone()),
                stage_index: Set(entry.stage.index),
                entered_at: Set(entry.entered_at),
                left_at: Set(next.and_then(|n| n.entered_at)),
                closed: Set(next.is_some()),
            })
            .collect();
        for chunk in rows.chunks(CHUNK) {
            stage_visit::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(tx)
                .await
                .or_store_error()?;
        }
        Ok(())
    }
}

impl Store {
    /// The entries that are not already the application's open visit: a page applied again
    /// after a crash must not repeat its stage history.
    async fn new_visits<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        entries: &[StageEntry],
    ) -> Result<Vec<StageEntry>, StoreError> {
        let mut open: HashMap<String, (String, Option<chrono::DateTime<chrono::Utc>>)> =
            HashMap::new();
        for chunk in entries.chunks(CHUNK) {
            let rows = stage_visit::Entity::find()
                .filter(stage_visit::Column::IntegrationId.eq(integration.as_str()))
                .filter(stage_visit::Column::Closed.eq(false))
                .filter(
                    stage_visit::Column::ApplicationId
                        .is_in(chunk.iter().map(|e| e.application_id.as_str())),
                )
                .all(tx)
                .await
                .or_store_error()?;
            for row in rows {
                open.insert(row.application_id, (row.stage_id, row.entered_at));
            }
        }
        Ok(entries
            .iter()
            .filter(|entry| {
                open.get(entry.application_id.as_str())
                    .is_none_or(|(stage, entered_at)| {
                        stage != entry.stage.stage_id.as_str() || *entered_at != entry.entered_at
                    })
            })
            .cloned()
            .collect())
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

pub(crate) async fn load_pipelines<C: ConnectionTrait>(
    conn: &C,
    integration: &IntegrationId,
    jobs: Option<&[JobId]>,
) -> Result<Vec<Pipeline>, StoreError> {
    let mut job_rows = Vec::new();
    let mut stage_rows = Vec::new();
    let wanted: Vec<Option<Vec<&str>>> = match jobs {
        Some(jobs) => jobs
            .chunks(CHUNK)
            .map(|c| Some(c.iter().map(JobId::as_str).collect()))
            .collect(),
        None => vec![None],
    };
    for ids in wanted {
        let mut jobs_query =
            job::Entity::find().filter(job::Column::IntegrationId.eq(integration.as_str()));
        let mut stages_query =
            stage::Entity::find().filter(stage::Column::IntegrationId.eq(integration.as_str()));
        if let Some(ids) = ids {
            jobs_query = jobs_query.filter(job::Column::JobId.is_in(ids.clone()));
            stages_query = stages_query.filter(stage::Column::JobId.is_in(ids));
        }
        job_rows.extend(
            jobs_query
                .order_by_asc(job::Column::JobId)
                .all(conn)
                .await
                .or_store_error()?,
        );
        stage_rows.extend(
            stages_query
                .order_by_asc(stage::Column::JobId)
                .order_by_asc(stage::Column::Position)
                .all(conn)
                .await
                .or_store_error()?,
        );
    }
    let mut stages_of: HashMap<String, Vec<Stage>> = HashMap::new();
    for row in stage_rows {
        stages_of
            .entry(row.job_id.clone())
            .or_default()
            .push(Stage {
                id: id::<StageId>(row.stage_id)?,
                remote_id: opt_id::<RemoteId>(row.remote_id)?,
                name: row.name,
                index: row.stage_index,
                status: row
                    .status
                    .as_deref()
                    .map(|s| enum_from_text("stage status", s))
                    .transpose()?,
            });
    }
    job_rows
        .into_iter()
        .map(|row| {
            Ok(Pipeline {
                stages: stages_of.remove(&row.job_id).unwrap_or_default(),
                job_id: id(row.job_id)?,
                job_remote_id: opt_id(row.remote_id)?,
                job_name: row.name,
            })
        })
        .collect()
}

async fn save_pipelines<C: ConnectionTrait>(
    tx: &C,
    integration: &IntegrationId,
    pipelines: &[Pipeline],
) -> Result<(), StoreError> {
    if pipelines.is_empty() {
        return Ok(());
    }
    // The last pipeline of a job wins when a batch holds two: an upsert may touch a row once.
    let mut latest: HashMap<&str, &Pipeline> = HashMap::new();
    for pipeline in pipelines {
        latest.insert(pipeline.job_id.as_str(), pipeline);
    }
    let mut pipelines: Vec<&Pipeline> = latest.into_values().collect();
    pipelines.sort_by(|a, b| a.job_id.cmp(&b.job_id));
    let jobs: Vec<job::ActiveModel> = pipelines
        .iter()
        .map(|p| {
            job::Model {
                integration_id: integration.as_str().to_owned(),
                job_id: p.job_id.as_str().to_owned(),
                remote_id: p.job_remote_id.as_ref().map(|r| r.as_str().to_owned()),
                name: p.job_name.clone(),
            }
            .into_active_model()
        })
        .collect();
    for chunk in jobs.chunks(CHUNK) {
        job::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([job::Column::IntegrationId, job::Column::JobId])
                    .update_columns([job::Column::RemoteId, job::Column::Name])
                    .to_owned(),
            )
            .exec_without_returning(tx)
            .await
            .or_store_error()?;
    }
    for chunk in pipelines.chunks(CHUNK) {
        stage::Entity::delete_many()
            .filter(stage::Column::IntegrationId.eq(integration.as_str()))
            .filter(stage::Column::JobId.is_in(chunk.iter().map(|p| p.job_id.as_str())))
            .exec(tx)
            .await
            .or_store_error()?;
    }
    let mut stages: Vec<stage::ActiveModel> = Vec::new();
    for pipeline in &pipelines {
        let mut seen = std::collections::HashSet::new();
        for (position, s) in pipeline.stages.iter().enumerate() {
            if !seen.insert(s.id.as_str()) {
                continue;
            }
            stages.push(
                stage::Model {
                    integration_id: integration.as_str().to_owned(),
                    job_id: pipeline.job_id.as_str().to_owned(),
                    stage_id: s.id.as_str().to_owned(),
                    position: i32::try_from(position).unwrap_or(i32::MAX),
                    remote_id: s.remote_id.as_ref().map(|r| r.as_str().to_owned()),
                    name: s.name.clone(),
                    stage_index: s.index,
                    status: s.status.as_ref().map(enum_text),
                }
                .into_active_model(),
            );
        }
    }
    for chunk in stages.chunks(CHUNK / 2) {
        stage::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(tx)
            .await
            .or_store_error()?;
    }
    Ok(())
}
