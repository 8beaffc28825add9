//! Reads for the HTTP API: applications with filters and cursor pagination, stage timelines,
//! jobs with their pipelines and counts, and what the API writes outside a sync.

use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use domain::{
    ApplicationId, IntegrationId, JobId, Outcome, RemoteId, Stage, StageId, StageRef,
    TrackedApplication,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entity::{application, kombo_webhook, stage_visit};
use crate::error::OrStoreError;
use crate::pipelines::load_pipelines;
use crate::rows::{application_from_row, id};
use crate::store::Store;

/// An application as the API lists it: its tracked state.
pub type ApplicationRecord = TrackedApplication;

/// Filters of the application list; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationFilter {
    pub integration: Option<IntegrationId>,
    pub job: Option<JobId>,
    pub current_stage: Option<StageId>,
    pub outcome: Option<Outcome>,
    /// Only applications whose last change is at or after this time.
    pub changed_since: Option<DateTime<Utc>>,
}

/// Where a page of the application list ended: the last record's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationCursor {
    pub changed_at: DateTime<Utc>,
    pub integration_id: IntegrationId,
    pub application_id: ApplicationId,
}

impl ApplicationCursor {
    /// The cursor after `record`.
    pub fn after(record: &ApplicationRecord) -> Self {
        Self {
            changed_at: record.changed_at,
            integration_id: record.integration_id.clone(),
            application_id: record.id.clone(),
        }
    }
}

/// One stay of an application in a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageVisit {
    pub stage: StageRef,
    /// `None` when the application was already there before tracking began.
    pub entered_at: Option<DateTime<Utc>>,
    /// `None` while it is still there (or when the move's time is unknown).
    pub left_at: Option<DateTime<Utc>>,
    /// Time spent, when both ends are known.
    pub seconds: Option<i64>,
}

/// A stage of a job with the number of tracked applications in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCount {
    pub stage: Stage,
    pub tracked: u64,
}

/// A job's pipeline, with tracked counts per stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOverview {
    pub job_id: JobId,
    pub remote_id: Option<RemoteId>,
    pub name: Option<String>,
    pub stages: Vec<StageCount>,
    /// Tracked, not deleted applications of the job, in any stage or none.
    pub tracked: u64,
}

impl Store {
    /// Applications, newest change first, after `after`, at most `limit` (1..=1000).
    pub async fn list_applications(
        &self,
        filter: &ApplicationFilter,
        after: Option<ApplicationCursor>,
        limit: u32,
    ) -> Result<Vec<ApplicationRecord>, StoreError> {
        use application::Column as C;
        let mut query = application::Entity::find();
        if let Some(integration) = &filter.integration {
            query = query.filter(C::IntegrationId.eq(integration.as_str()));
        }
        if let Some(job) = &filter.job {
            query = query.filter(C::JobId.eq(job.as_str()));
        }
        if let Some(stage) = &filter.current_stage {
            query = query.filter(C::CurrentStageId.eq(stage.as_str()));
        }
        if let Some(outcome) = &filter.outcome {
            query = query.filter(C::Outcome.eq(outcome.as_str()));
        }
        if let Some(since) = filter.changed_since {
            query = query.filter(C::ChangedAt.gte(since));
        }
        if let Some(cursor) = after {
            let integration = cursor.integration_id.as_str().to_owned();
            query = query.filter(
                Condition::any()
                    .add(C::ChangedAt.lt(cursor.changed_at))
                    .add(
                        Condition::all()
                            .add(C::ChangedAt.eq(cursor.changed_at))
                            .add(
                                Condition::any()
                                    .add(C::IntegrationId.lt(integration.clone()))
                                    .add(
                                        Condition::all().add(C::IntegrationId.eq(integration)).add(
                                            C::ApplicationId.lt(cursor.application_id.as_str()),
                                        ),
                                    ),
                            ),
                    ),
            );
        }
        let rows = query
            .order_by_desc(C::ChangedAt)
            .order_by_desc(C::IntegrationId)
            .order_by_desc(C::ApplicationId)
            .limit(u64::from(limit.clamp(1, 1000)))
            .all(&self.db)
            .await
            .or_store_error()?;
        rows.into_iter().map(application_from_row).collect()
    }

    /// One tracked application.
    pub async fn application(
        &self,
        integration: &IntegrationId,
        id: &ApplicationId,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        application::Entity::find_by_id((integration.as_str().to_owned(), id.as_str().to_owned()))
            .one(&self.db)
            .await
            .or_store_error()?
            .map(application_from_row)
            .transpose()
    }

    /// Every stage the application went through, oldest first.
    pub async fn application_timeline(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
    ) -> Result<Vec<StageVisit>, StoreError> {
        let rows = stage_visit::Entity::find()
            .filter(stage_visit::Column::IntegrationId.eq(integration.as_str()))
            .filter(stage_visit::Column::ApplicationId.eq(application.as_str()))
            .order_by_asc(stage_visit::Column::Id)
            .all(&self.db)
            .await
            .or_store_error()?;
        rows.into_iter()
            .map(|row| {
                Ok(StageVisit {
                    stage: StageRef {
                        stage_id: id(row.stage_id)?,
                        name: row.stage_name,
                        index: row.stage_index,
                    },
                    entered_at: row.entered_at,
                    left_at: row.left_at,
                    seconds: row
                        .entered_at
                        .zip(row.left_at)
                        .map(|(entered, left)| (left - entered).num_seconds()),
                })
            })
            .collect()
    }

    /// The integration's stored jobs with their pipelines and tracked counts per stage.
    pub async fn list_jobs(
        &self,
        integration: &IntegrationId,
    ) -> Result<Vec<JobOverview>, StoreError> {
        use application::Column as C;
        let pipelines = load_pipelines(&self.db, integration, None).await?;
        let counts: Vec<(Option<String>, Option<String>, i64)> = application::Entity::find()
            .select_only()
            .column(C::JobId)
            .column(C::CurrentStageId)
            .column_as(C::ApplicationId.count(), "tracked")
            .filter(C::IntegrationId.eq(integration.as_str()))
            .filter(C::DeletedAt.is_null())
            .group_by(C::JobId)
            .group_by(C::CurrentStageId)
            .into_tuple()
            .all(&self.db)
            .await
            .or_store_error()?;
        let count = |job: &JobId, stage: Option<&StageId>| -> u64 {
            counts
                .iter()
                .filter(|(j, s, _)| {
                    j.as_deref() == Some(job.as_str())
                        && stage.is_none_or(|stage| s.as_deref() == Some(stage.as_str()))
                })
                .map(|(_, _, n)| u64::try_from(*n).unwrap_or_default())
                .sum()
        };
        Ok(pipelines
            .into_iter()
            .map(|pipeline| JobOverview {
                tracked: count(&pipeline.job_id, None),
                stages: pipeline
                    .stages
                    .iter()
                    .map(|stage| StageCount {
                        tracked: count(&pipeline.job_id, Some(&stage.id)),
                        stage: stage.clone(),
                    })
                    .collect(),
                job_id: pipeline.job_id,
                remote_id: pipeline.job_remote_id,
                name: pipeline.job_name,
            })
            .collect())
    }

    /// Whether a Kombo webhook with this id was handled before (a redelivery).
    pub async fn kombo_webhook_seen(&self, webhook_id: &str) -> Result<bool, StoreError> {
        Ok(kombo_webhook::Entity::find_by_id(webhook_id)
            .one(&self.db)
            .await
            .or_store_error()?
            .is_some())
    }

    /// Remembers a handled Kombo webhook's id; false when it was recorded before.
    pub async fn record_kombo_webhook(
        &self,
        webhook_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = kombo_webhook::Entity::insert(
            kombo_webhook::Model {
                webhook_id: webhook_id.to_owned(),
                received_at: now,
            }
            .into_active_model(),
        )
        .on_conflict(
            OnConflict::column(kombo_webhook::Column::WebhookId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .or_store_error()?;
        Ok(inserted == 1)
    }

    /// Forgets Kombo webhook ids received before `cutoff` (Kombo redelivers for a bounded
    /// time only); returns how many.
    pub async fn purge_kombo_webhooks(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(kombo_webhook::Entity::delete_many()
            .filter(kombo_webhook::Column::ReceivedAt.lt(cutoff))
            .exec(&self.db)
            .await
            .or_store_error()?
            .rows_affected)
    }
}
