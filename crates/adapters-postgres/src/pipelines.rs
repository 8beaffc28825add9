//! Jobs and their pipelines, as Kombo lists them.

use std::collections::{HashMap, HashSet};

use domain::ports::StoreError;
use domain::{IntegrationId, JobId, Pipeline, RemoteId, Stage, StageId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

use crate::entity::{job, stage};
use crate::error::OrStoreError;
use crate::feed::CHUNK;
use crate::rows::{enum_from_text, enum_text, id, opt_id};

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

pub(crate) async fn save_pipelines<C: ConnectionTrait>(
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
        let mut seen = HashSet::new();
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
    // An upsert rather than an insert: a pass stores several pages at once, and the pipeline cache
    // may save a job's refreshed pipeline while a page that carries the same job commits.
    for chunk in stages.chunks(CHUNK / 2) {
        stage::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    stage::Column::IntegrationId,
                    stage::Column::JobId,
                    stage::Column::StageId,
                ])
                .update_columns([
                    stage::Column::Position,
                    stage::Column::RemoteId,
                    stage::Column::Name,
                    stage::Column::StageIndex,
                    stage::Column::Status,
                ])
                .to_owned(),
            )
            .exec_without_returning(tx)
            .await
            .or_store_error()?;
    }
    Ok(())
}
