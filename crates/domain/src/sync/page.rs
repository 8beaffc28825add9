//! Turning one page of snapshots into one atomic [`PageChanges`].

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{PassReport, SyncError};
use crate::application::{ApplicationSnapshot, TrackedApplication};
use crate::detect::{DetectContext, Detection, detect};
use crate::ids::{ApplicationId, IntegrationId, JobId};
use crate::integration::TrackedField;
use crate::ports::{AtsError, AtsGateway, HeldChange, JobQuery, PageChanges, TrackerStore};
use crate::stage::Pipeline;

/// Kombo's `ids` filter goes in the query string; chunks keep URLs short.
const JOB_IDS_PER_REQUEST: usize = 50;

/// What a pass carries from page to page.
#[derive(Debug, Default)]
pub(super) struct PassMemory {
    /// Jobs whose pipeline was fetched during this pass: fetching again would not help.
    pub refreshed_jobs: HashSet<JobId>,
    /// Fields seen going from known to unknown (rule 5).
    pub gaps: BTreeSet<TrackedField>,
    /// The ATS refused to list jobs; pipelines stay as stored.
    pub jobs_unreadable: bool,
}

pub(super) struct PageDetector<'a> {
    pub ats: &'a dyn AtsGateway,
    pub store: &'a dyn TrackerStore,
    pub integration: &'a IntegrationId,
    pub page_size: u16,
}

impl PageDetector<'_> {
    /// Detects every snapshot of a page against the stored states and pipelines, refreshing a
    /// pipeline once per pass when a stage is missing from it (rule 4).
    pub(super) async fn detect_page(
        &self,
        snapshots: Vec<ApplicationSnapshot>,
        detected_at: DateTime<Utc>,
        memory: &mut PassMemory,
        report: &mut PassReport,
    ) -> Result<PageChanges, SyncError> {
        let snapshots = newest_per_application(snapshots);
        let ids: Vec<ApplicationId> = snapshots.iter().map(|s| s.id.clone()).collect();
        let mut states: HashMap<ApplicationId, TrackedApplication> = self
            .store
            .load_applications(self.integration, &ids)
            .await?
            .into_iter()
            .map(|state| (state.id.clone(), state))
            .collect();
        let mut pipelines = self.pipelines_for(&snapshots, memory, report).await?;

        let ctx = DetectContext::sync(detected_at);
        let mut changes = PageChanges {
            integration_id: self.integration.clone(),
            applications: Vec::new(),
            events: Vec::new(),
            stage_entries: Vec::new(),
            held: Vec::new(),
            pipelines: Vec::new(),
        };
        let mut renamed_jobs = BTreeSet::new();
        for snapshot in &snapshots {
            let previous = states.get(&snapshot.id);
            let mut detection = detect(previous, snapshot, pipeline_of(&pipelines, snapshot), &ctx);
            if let Some(job) = detection.signals.refresh_pipeline.clone()
                && !memory.jobs_unreadable
                && memory.refreshed_jobs.insert(job.clone())
            {
                self.fetch_pipelines(&[job], &mut pipelines, memory, report)
                    .await?;
                detection = detect(previous, snapshot, pipeline_of(&pipelines, snapshot), &ctx);
            }
            if let Some((job, stage)) = &detection.signals.stage_update
                && pipelines
                    .get_mut(job)
                    .is_some_and(|p| p.upsert_stage(stage.clone()))
            {
                renamed_jobs.insert(job.clone());
            }
            record(&detection, memory, report);
            if detection.stale {
                continue;
            }
            states.insert(snapshot.id.clone(), detection.next_state.clone());
            if detection.deletes() {
                changes.held.push(HeldChange {
                    application: detection.next_state,
                    events: detection.events,
                    stage_entry: detection.stage_entry,
                });
            } else {
                changes.applications.push(detection.next_state);
                changes.events.extend(detection.events);
                changes.stage_entries.extend(detection.stage_entry);
            }
        }
        changes.pipelines = renamed_jobs
            .iter()
            .filter_map(|job| pipelines.remove(job))
            .collect();
        Ok(changes)
    }

    /// The stored pipelines of the page's jobs, fetching from Kombo those never stored.
    async fn pipelines_for(
        &self,
        snapshots: &[ApplicationSnapshot],
        memory: &mut PassMemory,
        report: &mut PassReport,
    ) -> Result<HashMap<JobId, Pipeline>, SyncError> {
        let jobs: Vec<JobId> = snapshots
            .iter()
            .filter_map(|s| s.job_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut pipelines: HashMap<JobId, Pipeline> = self
            .store
            .load_pipelines(self.integration, &jobs)
            .await?
            .into_iter()
            .map(|p| (p.job_id.clone(), p))
            .collect();
        let missing: Vec<JobId> = jobs
            .into_iter()
            .filter(|job| !pipelines.contains_key(job) && !memory.refreshed_jobs.contains(job))
            .collect();
        if !missing.is_empty() && !memory.jobs_unreadable {
            memory.refreshed_jobs.extend(missing.iter().cloned());
            self.fetch_pipelines(&missing, &mut pipelines, memory, report)
                .await?;
        }
        Ok(pipelines)
    }

    /// Fetches these jobs' pipelines from Kombo and stores them.
    pub(super) async fn fetch_pipelines(
        &self,
        jobs: &[JobId],
        into: &mut HashMap<JobId, Pipeline>,
        memory: &mut PassMemory,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        for chunk in jobs.chunks(JOB_IDS_PER_REQUEST) {
            let query = JobQuery {
                ids: chunk.to_vec(),
                page_size: self.page_size,
            };
            for pipeline in self.fetch_all_jobs(&query, memory, report).await? {
                into.insert(pipeline.job_id.clone(), pipeline);
            }
        }
        Ok(())
    }

    /// Pages through `GET /ats/jobs`, storing each page, and returns what was fetched. An ATS
    /// that cannot list jobs is noted once and leaves pipelines as stored.
    pub(super) async fn fetch_all_jobs(
        &self,
        query: &JobQuery,
        memory: &mut PassMemory,
        report: &mut PassReport,
    ) -> Result<Vec<Pipeline>, SyncError> {
        let mut fetched = Vec::new();
        let mut cursor = None;
        loop {
            let page = match self.ats.fetch_jobs(self.integration, query, cursor).await {
                Ok(page) => page,
                Err(AtsError::Unsupported { message, .. }) => {
                    memory.jobs_unreadable = true;
                    report.warnings.push(format!(
                        "jobs cannot be read, stages are unordered: {message}"
                    ));
                    return Ok(fetched);
                }
                Err(error) => return Err(error.into()),
            };
            report.skipped_records += page.skipped.len() as u64;
            self.store
                .save_pipelines(self.integration, &page.items)
                .await?;
            fetched.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(fetched),
            }
        }
    }
}

fn pipeline_of<'p>(
    pipelines: &'p HashMap<JobId, Pipeline>,
    snapshot: &ApplicationSnapshot,
) -> Option<&'p Pipeline> {
    snapshot.job_id.as_ref().and_then(|job| pipelines.get(job))
}

fn record(detection: &Detection, memory: &mut PassMemory, report: &mut PassReport) {
    report.applications_seen += 1;
    if detection.stale {
        report.stale_snapshots += 1;
    }
    if detection.signals.stage_went_unknown {
        memory.gaps.insert(TrackedField::CurrentStage);
    }
    if detection.signals.outcome_went_unknown {
        memory.gaps.insert(TrackedField::Outcome);
    }
    for event in &detection.events {
        *report
            .events_by_kind
            .entry(event.type_name().to_owned())
            .or_default() += 1;
    }
}

/// Kombo should not list an application twice in one page; if it does, the newest snapshot
/// wins, so that one page never writes one application twice.
fn newest_per_application(snapshots: Vec<ApplicationSnapshot>) -> Vec<ApplicationSnapshot> {
    let mut position: HashMap<ApplicationId, usize> = HashMap::new();
    let mut kept: Vec<ApplicationSnapshot> = Vec::with_capacity(snapshots.len());
    for snapshot in snapshots {
        match position.get(&snapshot.id) {
            Some(&at) if kept[at].changed_at > snapshot.changed_at => {}
            Some(&at) => kept[at] = snapshot,
            None => {
                position.insert(snapshot.id.clone(), kept.len());
                kept.push(snapshot);
            }
        }
    }
    kept
}
