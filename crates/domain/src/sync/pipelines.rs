//! The pipelines a pass needs, and all the job IO behind them: reading stored pipelines,
//! fetching jobs from Kombo, storing what was fetched.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{PassReport, SyncError};
use crate::ids::{IntegrationId, JobId};
use crate::ports::{AtsError, AtsGateway, JobQuery, TrackerStore};
use crate::stage::Pipeline;

/// Every pipeline a pass has seen, kept for the whole pass so that each is read (from the store
/// or from Kombo) at most once. A full pass fills it from Kombo before its first page. Its size
/// is the integration's number of jobs, not of applications.
pub(super) struct PipelineCache<'a> {
    ats: &'a dyn AtsGateway,
    store: &'a dyn TrackerStore,
    integration: &'a IntegrationId,
    page_size: u16,
    known: HashMap<JobId, Pipeline>,
    /// Jobs looked up in the store and found in neither the store nor the cache.
    absent: HashSet<JobId>,
    /// Jobs fetched from Kombo during this pass: fetching again would not help.
    fetched: HashSet<JobId>,
    /// Kombo refused to list jobs; pipelines stay as stored.
    unreadable: bool,
}

impl<'a> PipelineCache<'a> {
    pub(super) fn new(
        ats: &'a dyn AtsGateway,
        store: &'a dyn TrackerStore,
        integration: &'a IntegrationId,
        page_size: u16,
    ) -> Self {
        Self {
            ats,
            store,
            integration,
            page_size,
            known: HashMap::new(),
            absent: HashSet::new(),
            fetched: HashSet::new(),
            unreadable: false,
        }
    }

    /// The pipelines known so far, by job.
    pub(super) fn pipelines(&self) -> &HashMap<JobId, Pipeline> {
        &self.known
    }

    /// Fetches every job of the integration from Kombo and stores it (a full pass).
    pub(super) async fn fetch_all(&mut self, report: &mut PassReport) -> Result<(), SyncError> {
        self.fetch(Vec::new(), report).await
    }

    /// Makes sure the pipelines of `jobs` are known: those not cached are read from the store,
    /// and those never stored are fetched from Kombo.
    pub(super) async fn ensure(
        &mut self,
        jobs: impl IntoIterator<Item = JobId>,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let unknown: Vec<JobId> = jobs
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|job| !self.known.contains_key(job) && !self.absent.contains(job))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        for pipeline in self
            .store
            .load_pipelines(self.integration, &unknown)
            .await?
        {
            self.known.insert(pipeline.job_id.clone(), pipeline);
        }
        let missing: Vec<JobId> = unknown
            .into_iter()
            .filter(|job| !self.known.contains_key(job))
            .collect();
        self.absent.extend(missing.iter().cloned());
        let to_fetch: Vec<JobId> = missing
            .into_iter()
            .filter(|job| self.can_refresh(job))
            .collect();
        if !to_fetch.is_empty() {
            self.fetch(to_fetch, report).await?;
        }
        Ok(())
    }

    /// Whether fetching this job from Kombo could still tell something new in this pass.
    pub(super) fn can_refresh(&self, job: &JobId) -> bool {
        !self.unreadable && !self.fetched.contains(job)
    }

    /// Fetches these jobs from Kombo again (a snapshot named a stage their pipeline lacks);
    /// each job at most once per pass.
    pub(super) async fn refresh(
        &mut self,
        jobs: impl IntoIterator<Item = JobId>,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let jobs: Vec<JobId> = jobs
            .into_iter()
            .filter(|job| self.can_refresh(job))
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        self.fetch(jobs, report).await
    }

    /// Keeps pipelines changed by a page (renamed or re-ordered stages), once the page is
    /// assembled for good.
    pub(super) fn update(&mut self, pipelines: &[Pipeline]) {
        for pipeline in pipelines {
            self.known.insert(pipeline.job_id.clone(), pipeline.clone());
        }
    }

    /// Pages through `GET /ats/jobs` for `ids` (all jobs when empty), storing each page. An ATS
    /// that cannot list jobs is noted once and leaves pipelines as stored.
    async fn fetch(&mut self, ids: Vec<JobId>, report: &mut PassReport) -> Result<(), SyncError> {
        // However many ids, one listing: the adapter splits them into requests Kombo takes.
        self.fetch_query(ids, report).await
    }

    async fn fetch_query(
        &mut self,
        ids: Vec<JobId>,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        self.fetched.extend(ids.iter().cloned());
        let query = JobQuery {
            ids,
            page_size: self.page_size,
        };
        let mut cursor = None;
        loop {
            let page = match self.ats.fetch_jobs(self.integration, &query, cursor).await {
                Ok(page) => page,
                Err(AtsError::Unsupported { message, .. }) => {
                    self.unreadable = true;
                    report.warnings.push(format!(
                        "jobs cannot be read, stages are unordered: {message}"
                    ));
                    return Ok(());
                }
                Err(error) => return Err(error.into()),
            };
            report.skipped_records += page.skipped.len() as u64;
            self.store
                .save_pipelines(self.integration, &page.items)
                .await?;
            for pipeline in page.items {
                self.fetched.insert(pipeline.job_id.clone());
                self.absent.remove(&pipeline.job_id);
                self.known.insert(pipeline.job_id.clone(), pipeline);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }
}
