//! Runs a whole sync pass of the domain over ports you write yourself: an in-memory "ATS" and
//! an in-memory store. Any runtime (or none: `pollster` here) drives it.
//!
//! `cargo run -p domain --example sync_with_your_own_ports`
#![allow(clippy::print_stdout)] // an example talks to a terminal

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::ports::{
    ApplicationQuery, AppliedPage, AtsError, AtsGateway, Clock, HoldStats, ImportRequest,
    ImportedApplication, IntegrationUpdate, JobQuery, LeaseEpoch, NewApplication, Page,
    PageChanges, PageCursor, PassCompletion, PassFailure, StoreError, SyncState, TrackerStore,
};
use domain::sync::{PassMode, SyncService, SyncSettings};
use domain::{
    ApplicationId, ApplicationSnapshot, Capabilities, ChangeEvent, IntegrationId, IntegrationInfo,
    IntegrationStatus, JobId, Outcome, Pipeline, RejectionReason, StageId, Support,
    TrackedApplication,
};

/// An "ATS" holding a few applications in memory.
struct MemoryAts {
    applications: Mutex<Vec<ApplicationSnapshot>>,
}

fn refused() -> AtsError {
    AtsError::Unsupported {
        code: "EXAMPLE".to_owned(),
        message: "this example only reads".to_owned(),
    }
}

#[async_trait]
impl AtsGateway for MemoryAts {
    async fn integration_info(&self, id: &IntegrationId) -> Result<IntegrationInfo, AtsError> {
        Ok(IntegrationInfo {
            id: id.clone(),
            tool: Some("memory".to_owned()),
            status: IntegrationStatus::Active,
            setup_status: None,
            data_expired_at: None,
            capabilities: Capabilities {
                applications: Support::Supported,
                outcome: Support::Supported,
                current_stage: Support::Supported,
                observed_gaps: BTreeSet::new(),
            },
        })
    }

    async fn fetch_applications(
        &self,
        _: &IntegrationId,
        query: &ApplicationQuery,
        _: Option<PageCursor>,
    ) -> Result<Page<ApplicationSnapshot>, AtsError> {
        let all = self.applications.lock().unwrap();
        let changed = all
            .iter()
            .filter(|a| {
                query
                    .updated_after
                    .is_none_or(|after| a.changed_at >= after)
            })
            .cloned()
            .collect();
        Ok(Page::last(changed))
    }

    async fn fetch_jobs(
        &self,
        _: &IntegrationId,
        _: &JobQuery,
        _: Option<PageCursor>,
    ) -> Result<Page<Pipeline>, AtsError> {
        Ok(Page::last(Vec::new()))
    }

    async fn fetch_rejection_reasons(
        &self,
        _: &IntegrationId,
        _: Option<PageCursor>,
    ) -> Result<Page<RejectionReason>, AtsError> {
        Ok(Page::last(Vec::new()))
    }

    async fn create_application(
        &self,
        _: &IntegrationId,
        _: &NewApplication,
    ) -> Result<ApplicationSnapshot, AtsError> {
        Err(refused())
    }

    async fn import_tracked_application(
        &self,
        _: &IntegrationId,
        _: &ImportRequest,
    ) -> Result<ImportedApplication, AtsError> {
        Err(refused())
    }

    async fn move_application(
        &self,
        _: &IntegrationId,
        _: &ApplicationId,
        _: &StageId,
    ) -> Result<(), AtsError> {
        Err(refused())
    }

    async fn reject_application(
        &self,
        _: &IntegrationId,
        _: &ApplicationId,
        _: &str,
        _: Option<String>,
    ) -> Result<(), AtsError> {
        Err(refused())
    }
}

/// A store keeping everything in memory: states, pipelines and the event feed.
#[derive(Default)]
struct MemoryStore {
    state: Mutex<SyncState>,
    applications: Mutex<BTreeMap<ApplicationId, TrackedApplication>>,
    pipelines: Mutex<BTreeMap<JobId, Pipeline>>,
    feed: Mutex<Vec<ChangeEvent>>,
}

impl MemoryStore {
    fn append(&self, events: Vec<ChangeEvent>) -> u64 {
        let mut feed = self.feed.lock().unwrap();
        let before = feed.len();
        for event in events {
            if !feed.iter().any(|stored| stored.id == event.id) {
                feed.push(event);
            }
        }
        (feed.len() - before) as u64
    }
}

#[async_trait]
impl TrackerStore for MemoryStore {
    async fn sync_state(&self, _: &IntegrationId) -> Result<SyncState, StoreError> {
        Ok(self.state.lock().unwrap().clone())
    }

    async fn update_integration(&self, update: IntegrationUpdate) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        state.capabilities = update.capabilities.or(state.capabilities.take());
        state.status = update.status.or(state.status);
        drop(state);
        self.append(update.events);
        Ok(())
    }

    async fn load_applications(
        &self,
        _: &IntegrationId,
        ids: &[ApplicationId],
    ) -> Result<Vec<TrackedApplication>, StoreError> {
        let stored = self.applications.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| stored.get(id).cloned())
            .collect())
    }

    async fn load_pipelines(
        &self,
        _: &IntegrationId,
        jobs: &[JobId],
    ) -> Result<Vec<Pipeline>, StoreError> {
        let stored = self.pipelines.lock().unwrap();
        Ok(jobs
            .iter()
            .filter_map(|job| stored.get(job).cloned())
            .collect())
    }

    async fn save_pipelines(
        &self,
        _: &IntegrationId,
        pipelines: &[Pipeline],
    ) -> Result<(), StoreError> {
        let mut stored = self.pipelines.lock().unwrap();
        for pipeline in pipelines {
            stored.insert(pipeline.job_id.clone(), pipeline.clone());
        }
        Ok(())
    }

    async fn apply_page(&self, changes: PageChanges) -> Result<AppliedPage, StoreError> {
        let mut stored = self.applications.lock().unwrap();
        for state in changes.applications {
            stored.insert(state.id.clone(), state);
        }
        drop(stored);
        Ok(AppliedPage {
            events_appended: self.append(changes.events),
        })
    }

    async fn apply_first_sighting(&self, changes: PageChanges) -> Result<bool, StoreError> {
        self.apply_page(changes).await.map(|_| true)
    }

    async fn hold_stats(&self, _: &IntegrationId) -> Result<HoldStats, StoreError> {
        Ok(HoldStats::default())
    }

    async fn count_held(&self, _: &IntegrationId) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn release_held(
        &self,
        _: &IntegrationId,
        _: Option<LeaseEpoch>,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn complete_pass(&self, completion: PassCompletion) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        if completion.watermark.is_some() {
            state.watermark = completion.watermark;
        }
        state.capabilities = completion.capabilities.or(state.capabilities.take());
        state.failing_since = None;
        drop(state);
        self.append(completion.events);
        Ok(())
    }

    async fn record_failure(&self, failure: PassFailure) -> Result<(), StoreError> {
        self.state.lock().unwrap().failing_since = failure.failing_since;
        self.append(failure.events);
        Ok(())
    }
}

/// A clock the example moves by hand.
struct Hands(Mutex<DateTime<Utc>>);

impl Clock for Hands {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn application(id: &str, stage: &str, outcome: Outcome, at: DateTime<Utc>) -> ApplicationSnapshot {
    ApplicationSnapshot {
        integration_id: IntegrationId::parse("memory:acme").unwrap(),
        id: ApplicationId::parse(id).unwrap(),
        remote_id: None,
        job_id: None,
        job_name: None,
        candidate_id: None,
        candidate_name: None,
        current_stage_id: Some(StageId::parse(stage).unwrap()),
        current_stage: None,
        outcome: Some(outcome),
        rejection_reason_name: None,
        rejected_at: None,
        changed_at: at,
        remote_deleted_at: None,
        remote_created_at: None,
        remote_updated_at: None,
    }
}

fn main() {
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let ats = Arc::new(MemoryAts {
        applications: Mutex::new(vec![
            application("app-1", "applied", Outcome::Pending, start),
            application("app-2", "interview", Outcome::Pending, start),
        ]),
    });
    let store = Arc::new(MemoryStore::default());
    let clock = Arc::new(Hands(Mutex::new(start + Duration::minutes(1))));
    let sync = SyncService::new(
        ats.clone(),
        store.clone(),
        clock.clone(),
        SyncSettings::default(),
    );
    let integration = IntegrationId::parse("memory:acme").unwrap();
    // A lease's fencing token, as a store that hands out leases would give it.
    let lease = LeaseEpoch(1);

    let first = pollster::block_on(sync.run_pass(&integration, lease, PassMode::Full, &()))
        .expect("the first pass");
    println!("first pass: {:?}", first.events_by_kind);

    // The recruiter moves app-2 on and hires; the next pass turns that into events.
    *clock.0.lock().unwrap() = start + Duration::hours(2);
    ats.applications.lock().unwrap()[1] =
        application("app-2", "offer", Outcome::Hired, start + Duration::hours(1));
    let next = pollster::block_on(sync.run_pass(&integration, lease, PassMode::Incremental, &()))
        .expect("the next pass");
    println!("next pass: {:?}", next.events_by_kind);

    for event in store.feed.lock().unwrap().iter() {
        let application = event.application.as_ref().map(|a| a.id.as_str());
        println!("{} {:?}", event.type_name(), application);
    }
}
