//! The product's own actions, as use cases over the ports: create an application in the ATS,
//! import an existing one into tracking, move one to another stage of its job, reject one.
//! Each goes to the ATS through Kombo and, once Kombo accepted it, is recorded at once: a
//! created application with its `application.created` event; a move or rejection as the change
//! it makes (`application.stage_changed`, `application.declined`, …) marked `origin:
//! stagewatch`. The sync pass that later reads the same state from Kombo finds nothing new, so
//! every change is announced once.

use chrono::{DateTime, Utc};

use crate::application::{ApplicationSnapshot, Origin, TrackedApplication};
use crate::detect::{DetectContext, detect};
use crate::event::{ChangeEvent, EventOrigin};
use crate::ids::{ApplicationId, IntegrationId, JobId, StageId};
use crate::outcome::Outcome;
use crate::ports::{
    AtsError, AtsGateway, ImportRequest, ImportedApplication, JobQuery, NewApplication,
    PageChanges, PageCursor, StoreError, TrackerStore,
};
use crate::rejection::RejectionReason;
use crate::stage::{Pipeline, Stage};

/// The most pages of rejection reasons read for one list: far beyond any ATS's catalogue, a
/// bound against a cursor that never ends.
pub const MAX_REJECTION_REASON_PAGES: usize = 40;

/// Why an action was not taken, or its result is not known.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// stagewatch does not track this application (never created, imported or synced).
    #[error("application {0} is not tracked in this integration")]
    UnknownApplication(ApplicationId),
    /// The stage is not in the pipeline of the application's job (checked before Kombo is
    /// called, against the stored pipeline and then a fresh one).
    #[error("{}", stage_not_in_pipeline(stage, job.as_ref()))]
    StageNotInPipeline { stage: StageId, job: Option<JobId> },
    /// Kombo or the ATS refused, or could not be reached: nothing changed.
    #[error(transparent)]
    Refused(AtsError),
    /// Kombo's answer was lost (timeout, dropped connection, 5xx): the ATS may have made the
    /// change. If it did, the next sync pass announces it.
    #[error("Kombo's answer was lost ({0}); the change may have been made")]
    OutcomeUnknown(AtsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn stage_not_in_pipeline(stage: &StageId, job: Option<&JobId>) -> String {
    match job {
        Some(job) => format!("stage {stage} is not in the pipeline of job {job}"),
        None => {
            format!("the application's job is not known yet, so stage {stage} cannot be checked")
        }
    }
}

impl ActionError {
    fn from_ats(error: AtsError) -> Self {
        if error.may_have_been_applied() {
            Self::OutcomeUnknown(error)
        } else {
            Self::Refused(error)
        }
    }
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The application as stored after the action; as before it when the change could not be
    /// recorded.
    pub application: TrackedApplication,
    /// The events recorded, each marked `origin: stagewatch`; empty when the application was
    /// already where the action put it.
    pub events: Vec<ChangeEvent>,
    /// The ATS made the change but storing it failed: the next sync pass records it instead
    /// (without the `origin` marker). The action itself succeeded.
    pub not_recorded: Option<StoreError>,
}

/// What a create did: the application Kombo created, and its `application.created` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The application as Kombo answered.
    pub snapshot: ApplicationSnapshot,
    /// `None` when a sync pass stored the application first (it announced it as
    /// `application.discovered`), or when storing failed (see `not_recorded`).
    pub event: Option<ChangeEvent>,
    /// Kombo created the application but storing it failed: the next sync pass records it
    /// (as `application.discovered`). The create itself succeeded.
    pub not_recorded: Option<StoreError>,
}

/// The actions, over the ATS and the store.
pub struct Actions<'a> {
    ats: &'a dyn AtsGateway,
    store: &'a dyn TrackerStore,
}

impl std::fmt::Debug for Actions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions").finish_non_exhaustive()
    }
}

impl<'a> Actions<'a> {
    pub fn new(ats: &'a dyn AtsGateway, store: &'a dyn TrackerStore) -> Self {
        Self { ats, store }
    }

    /// Creates an application in the ATS and tracks it at once. Never retried: Kombo has no
    /// idempotency of its own, so a lost answer is [`ActionError::OutcomeUnknown`].
    pub async fn create(
        &self,
        integration: &IntegrationId,
        application: &NewApplication,
        now: DateTime<Utc>,
    ) -> Result<Created, ActionError> {
        let snapshot = self
            .ats
            .create_application(integration, application)
            .await
            .map_err(ActionError::from_ats)?;
        // From here on the ATS holds the application: whatever fails now, the create succeeded.
        let pipeline = match &snapshot.job_id {
            Some(job) => self.pipeline(integration, job).await,
            None => None,
        };
        let (event, not_recorded) =
            match record_created(self.store, &snapshot, pipeline.as_ref(), now).await {
                Ok(event) => (event, None),
                Err(error) => (None, Some(error)),
            };
        Ok(Created {
            snapshot,
            event,
            not_recorded,
        })
    }

    /// Starts tracking an application that exists in the ATS (Kombo's
    /// import-tracked-application); its data and its `application.discovered` event arrive
    /// with the next sync pass. `tracked_at` defaults to `now`: Kombo requires it.
    pub async fn import(
        &self,
        integration: &IntegrationId,
        mut request: ImportRequest,
        now: DateTime<Utc>,
    ) -> Result<ImportedApplication, ActionError> {
        request.tracked_at.get_or_insert(now);
        self.ats
            .import_tracked_application(integration, &request)
            .await
            .map_err(ActionError::from_ats)
    }

    /// Moves a tracked application to `stage`, which must be in its job's pipeline.
    pub async fn move_to_stage(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
        stage: &StageId,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, ActionError> {
        let stored = self.tracked(integration, application).await?;
        let not_in_pipeline = || ActionError::StageNotInPipeline {
            stage: stage.clone(),
            job: stored.job_id.clone(),
        };
        let job = stored.job_id.as_ref().ok_or_else(not_in_pipeline)?;
        let pipeline = self
            .pipeline_with(integration, job, stage)
            .await?
            .ok_or_else(not_in_pipeline)?;
        let target = pipeline.stage(stage).cloned().ok_or_else(not_in_pipeline)?;
        self.ats
            .move_application(integration, application, stage)
            .await
            .map_err(ActionError::from_ats)?;
        let mut snapshot = snapshot_of(&stored, now);
        snapshot.current_stage_id = Some(target.id.clone());
        snapshot.current_stage = Some(target);
        Ok(self.record(stored, &snapshot, Some(&pipeline), now).await)
    }

    /// Rejects a tracked application with `reason` (one of [`rejection_reasons`]).
    pub async fn reject(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
        reason: &RejectionReason,
        note: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, ActionError> {
        let stored = self.tracked(integration, application).await?;
        self.ats
            .reject_application(integration, application, &reason.id, note)
            .await
            .map_err(ActionError::from_ats)?;
        let pipeline = match &stored.job_id {
            Some(job) => self.stored_pipeline(integration, job).await,
            None => None,
        };
        let mut snapshot = snapshot_of(&stored, now);
        snapshot.outcome = Some(Outcome::Declined);
        snapshot.rejection_reason_name.clone_from(&reason.name);
        snapshot.rejected_at = Some(now);
        Ok(self.record(stored, &snapshot, pipeline.as_ref(), now).await)
    }

    async fn tracked(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
    ) -> Result<TrackedApplication, ActionError> {
        self.store
            .load_applications(integration, std::slice::from_ref(application))
            .await?
            .pop()
            .ok_or_else(|| ActionError::UnknownApplication(application.clone()))
    }

    /// The job's pipeline, stored or else fetched from Kombo (and stored); `None` when neither
    /// has it, which only costs the created event its stage names (the sync fills them in).
    async fn pipeline(&self, integration: &IntegrationId, job: &JobId) -> Option<Pipeline> {
        if let Some(pipeline) = self.stored_pipeline(integration, job).await {
            return Some(pipeline);
        }
        self.fresh_pipeline(integration, job).await.ok().flatten()
    }

    /// The job's stored pipeline; `None` when there is none or it cannot be read (it only names
    /// stages in events).
    async fn stored_pipeline(&self, integration: &IntegrationId, job: &JobId) -> Option<Pipeline> {
        self.store
            .load_pipelines(integration, std::slice::from_ref(job))
            .await
            .ok()
            .and_then(|mut found| found.pop())
    }

    /// The job's pipeline as Kombo lists it now, stored before it is returned.
    async fn fresh_pipeline(
        &self,
        integration: &IntegrationId,
        job: &JobId,
    ) -> Result<Option<Pipeline>, ActionError> {
        let query = JobQuery {
            ids: vec![job.clone()],
            ..JobQuery::default()
        };
        let page = self
            .ats
            .fetch_jobs(integration, &query, None)
            .await
            .map_err(ActionError::Refused)?;
        let Some(fresh) = page.items.into_iter().find(|p| &p.job_id == job) else {
            return Ok(None);
        };
        self.store
            .save_pipelines(integration, std::slice::from_ref(&fresh))
            .await?;
        Ok(Some(fresh))
    }

    /// The job's pipeline if it has `stage`: the stored one, else a fresh one from Kombo (a
    /// stage added since the last pass), which is then stored.
    async fn pipeline_with(
        &self,
        integration: &IntegrationId,
        job: &JobId,
        stage: &StageId,
    ) -> Result<Option<Pipeline>, ActionError> {
        let stored = self
            .store
            .load_pipelines(integration, std::slice::from_ref(job))
            .await?
            .pop();
        if let Some(pipeline) = stored.filter(|p| p.stage(stage).is_some()) {
            return Ok(Some(pipeline));
        }
        Ok(self
            .fresh_pipeline(integration, job)
            .await?
            .filter(|fresh| fresh.stage(stage).is_some()))
    }

    /// Records the change from `stored` to `snapshot` as a sync pass would, its events marked
    /// as the product's own.
    async fn record(
        &self,
        stored: TrackedApplication,
        snapshot: &ApplicationSnapshot,
        pipeline: Option<&Pipeline>,
        now: DateTime<Utc>,
    ) -> ActionOutcome {
        let detection = detect(Some(&stored), snapshot, pipeline, &DetectContext::sync(now));
        let mut events = detection.events;
        for event in &mut events {
            event.origin = Some(EventOrigin::Stagewatch);
        }
        if events.is_empty() {
            return ActionOutcome {
                application: stored,
                events,
                not_recorded: None,
            };
        }
        let changes = PageChanges {
            integration_id: stored.integration_id.clone(),
            lease: None,
            applications: vec![detection.next_state.clone()],
            events: events.clone(),
            stage_entries: detection.stage_entry.into_iter().collect(),
            held: Vec::new(),
            pipelines: Vec::new(),
        };
        match self.store.apply_page(changes).await {
            Ok(_) => ActionOutcome {
                application: detection.next_state,
                events,
                not_recorded: None,
            },
            Err(error) => ActionOutcome {
                application: stored,
                events: Vec::new(),
                not_recorded: Some(error),
            },
        }
    }
}

/// Stores an application just created through Kombo as tracked and appends its
/// `application.created` event, in one transaction, and returns that event. A later sync pass
/// that sees the same application finds it stored and does not announce it again. When a pass
/// stored it first (Kombo answered slowly), that pass has announced it as
/// `application.discovered` and may have recorded newer changes: nothing is written and `None`
/// is returned, so the product never gets both events and the stored state never goes back to
/// the create's snapshot.
pub async fn record_created(
    store: &dyn TrackerStore,
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
    now: DateTime<Utc>,
) -> Result<Option<ChangeEvent>, StoreError> {
    let detection = detect(
        None,
        snapshot,
        pipeline,
        &DetectContext {
            detected_at: now,
            origin_for_new: Origin::CreatedHere,
        },
    );
    let event = detection.events.first().cloned();
    let stored = store
        .apply_first_sighting(PageChanges {
            integration_id: snapshot.integration_id.clone(),
            lease: None,
            applications: vec![detection.next_state],
            events: detection.events,
            stage_entries: detection.stage_entry.into_iter().collect(),
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await?;
    Ok(event.filter(|_| stored))
}

/// Every rejection reason of the integration's ATS, all pages read: what
/// [`Actions::reject`] names.
pub async fn rejection_reasons(
    ats: &dyn AtsGateway,
    integration: &IntegrationId,
) -> Result<Vec<RejectionReason>, AtsError> {
    let mut reasons = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    for _ in 0..MAX_REJECTION_REASON_PAGES {
        let page = ats
            .fetch_rejection_reasons(integration, cursor.take())
            .await?;
        reasons.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(reasons),
        }
    }
    Err(AtsError::Malformed {
        reason: format!(
            "the rejection reasons did not end after {MAX_REJECTION_REASON_PAGES} pages"
        ),
        excerpt: String::new(),
    })
}

/// What Kombo would now return for the stored application, before the action's change: the
/// stored values, with a `changed_at` no older than the stored one (an older one would be
/// ignored as stale). A value the ATS stopped reporting stays unreported.
fn snapshot_of(stored: &TrackedApplication, now: DateTime<Utc>) -> ApplicationSnapshot {
    let current_stage = stored
        .current_stage
        .as_ref()
        .filter(|_| stored.stage_unknown_since.is_none());
    ApplicationSnapshot {
        integration_id: stored.integration_id.clone(),
        id: stored.id.clone(),
        remote_id: stored.remote_id.clone(),
        job_id: stored.job_id.clone(),
        job_name: stored.job_name.clone(),
        candidate_id: stored.candidate_id.clone(),
        candidate_name: stored.candidate_name.clone(),
        current_stage_id: current_stage.map(|stage| stage.stage_id.clone()),
        current_stage: current_stage.map(|stage| Stage {
            id: stage.stage_id.clone(),
            remote_id: None,
            name: stage.name.clone(),
            index: stage.index,
            status: None,
        }),
        outcome: stored
            .outcome
            .clone()
            .filter(|_| stored.outcome_unknown_since.is_none()),
        rejection_reason_name: stored.rejection_reason_name.clone(),
        rejected_at: stored.rejected_at,
        changed_at: now.max(stored.changed_at),
        remote_deleted_at: stored.deleted_at,
        remote_created_at: stored.remote_created_at,
        remote_updated_at: None,
    }
}
