use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use super::page::{PageDetector, PassMemory};
use super::{PassMode, PassObserver, PassOutcome, PassReport, SyncError, SyncSettings};
use crate::event::{
    CapabilityChange, ChangeEvent, DeletionsHeld, EventKind, FailureReport, Recovered,
    StatusChange, SyncFailed,
};
use crate::ids::IntegrationId;
use crate::integration::{Capabilities, IntegrationInfo, Support};
use crate::ports::{
    ApplicationQuery, AtsError, AtsGateway, Clock, IntegrationUpdate, JobQuery, PassCompletion,
    PassFailure, SyncState, TrackerStore,
};

/// Runs sync passes: for one integration, reads what changed in Kombo, detects the changes and
/// stores each page atomically; the watermark moves only after a complete pass.
#[derive(Clone)]
pub struct SyncService {
    ats: Arc<dyn AtsGateway>,
    store: Arc<dyn TrackerStore>,
    clock: Arc<dyn Clock>,
    settings: SyncSettings,
}

impl std::fmt::Debug for SyncService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SyncService {
    pub fn new(
        ats: Arc<dyn AtsGateway>,
        store: Arc<dyn TrackerStore>,
        clock: Arc<dyn Clock>,
        settings: SyncSettings,
    ) -> Self {
        Self {
            ats,
            store,
            clock,
            settings,
        }
    }

    /// Runs one pass. On failure the pages already stored stay stored (each was atomic), the
    /// watermark stays, and the failure is recorded on the integration.
    pub async fn run_pass(
        &self,
        integration: &IntegrationId,
        mode: PassMode,
        observer: &dyn PassObserver,
    ) -> Result<PassReport, SyncError> {
        let started_at = self.clock.now();
        let state = self.store.sync_state(integration).await?;
        let mode = if state.watermark.is_none() {
            PassMode::Full
        } else {
            mode
        };
        let mut report = PassReport::new(integration.clone(), mode, started_at);
        match self.pass(integration, &state, &mut report, observer).await {
            Ok(()) => Ok(report),
            Err(error) => {
                // When the store itself is down this write fails too; the pass's own error is the
                // one worth returning.
                let _ = self.record_failure(integration, &state, &error).await;
                Err(error)
            }
        }
    }

    /// Releases deletions held by the mass-deletion guard into the feed: an operator confirmed
    /// they are real. Returns how many applications were released.
    pub async fn confirm_deletions(&self, integration: &IntegrationId) -> Result<u64, SyncError> {
        Ok(self.store.release_held(integration).await?)
    }

    async fn pass(
        &self,
        integration: &IntegrationId,
        state: &SyncState,
        report: &mut PassReport,
        observer: &dyn PassObserver,
    ) -> Result<(), SyncError> {
        let started_at = report.started_at;
        let info = self.ats.integration_info(integration).await?;
        let mut capabilities = self
            .refresh_integration(integration, state, &info, started_at)
            .await?;
        if !capabilities.applications.is_available() {
            return self
                .finish_unreadable(integration, report, capabilities, None)
                .await;
        }

        let detector = PageDetector {
            ats: self.ats.as_ref(),
            store: self.store.as_ref(),
            integration,
            page_size: self.settings.page_size,
        };
        let mut memory = PassMemory::default();
        let full = report.mode == PassMode::Full;
        if full {
            let all = JobQuery {
                ids: Vec::new(),
                page_size: self.settings.page_size,
            };
            let fetched = detector.fetch_all_jobs(&all, &mut memory, report).await?;
            memory
                .refreshed_jobs
                .extend(fetched.into_iter().map(|p| p.job_id));
        }

        let query = ApplicationQuery {
            updated_after: if full { None } else { state.watermark },
            include_deleted: true,
            page_size: self.settings.page_size,
            ..ApplicationQuery::default()
        };
        let mut cursor = None;
        loop {
            let page = match self
                .ats
                .fetch_applications(integration, &query, cursor)
                .await
            {
                Ok(page) => page,
                Err(AtsError::Unsupported { message, .. }) => {
                    let previous = capabilities.clone();
                    capabilities.applications = Support::Unsupported;
                    report
                        .warnings
                        .push(format!("applications cannot be read: {message}"));
                    return self
                        .finish_unreadable(integration, report, capabilities, Some(previous))
                        .await;
                }
                Err(error) => return Err(error.into()),
            };
            report.pages += 1;
            report.skipped_records += page.skipped.len() as u64;
            let changes = detector
                .detect_page(page.items, self.clock.now(), &mut memory, report)
                .await?;
            report.deletions_held += changes.held.len() as u64;
            let applied = self.store.apply_page(changes).await?;
            report.events_appended += applied.events_appended;
            observer.page_applied(report);
            match page.next {
                None => break,
                Some(_) if !observer.keep_going() => {
                    report.outcome = PassOutcome::Interrupted;
                    return Ok(());
                }
                Some(next) => cursor = Some(next),
            }
        }
        self.finish_complete(integration, state, &info, capabilities, memory, report)
            .await
    }

    /// Stores Kombo's fresh description of the integration, raising events for what changed.
    async fn refresh_integration(
        &self,
        integration: &IntegrationId,
        state: &SyncState,
        info: &IntegrationInfo,
        at: DateTime<Utc>,
    ) -> Result<Capabilities, SyncError> {
        let capabilities = state.capabilities.as_ref().map_or_else(
            || info.capabilities.clone(),
            |held| held.refreshed_by(&info.capabilities),
        );
        let mut events = Vec::new();
        events.extend(capability_event(
            integration,
            state.capabilities.as_ref(),
            &capabilities,
            at,
            "coverage",
        ));
        if let Some(previous) = state.status.filter(|previous| *previous != info.status) {
            events.push(ChangeEvent::for_integration(
                integration,
                EventKind::StatusChanged(StatusChange {
                    from: Some(previous),
                    to: info.status,
                }),
                &stamp(at),
                at,
            ));
        }
        self.store
            .update_integration(IntegrationUpdate {
                integration_id: integration.clone(),
                capabilities: Some(capabilities.clone()),
                status: Some(info.status),
                events,
            })
            .await?;
        Ok(capabilities)
    }

    /// Ends a pass over an ATS that cannot read applications: a state to show, not a failure.
    async fn finish_unreadable(
        &self,
        integration: &IntegrationId,
        report: &mut PassReport,
        capabilities: Capabilities,
        stored: Option<Capabilities>,
    ) -> Result<(), SyncError> {
        let at = report.started_at;
        let events = stored
            .and_then(|stored| {
                capability_event(
                    integration,
                    Some(&stored),
                    &capabilities,
                    at,
                    "applications",
                )
            })
            .into_iter()
            .collect();
        self.store
            .complete_pass(PassCompletion {
                integration_id: integration.clone(),
                watermark: None,
                full: report.mode == PassMode::Full,
                started_at: at,
                finished_at: self.clock.now(),
                capabilities: Some(capabilities),
                deletions_held: false,
                events,
            })
            .await?;
        report.outcome = PassOutcome::ApplicationsUnreadable;
        Ok(())
    }

    /// After the last page: flag gaps, run the mass-deletion guard, move the watermark.
    async fn finish_complete(
        &self,
        integration: &IntegrationId,
        state: &SyncState,
        info: &IntegrationInfo,
        capabilities: Capabilities,
        memory: PassMemory,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let started_at = report.started_at;
        let finished_at = self.clock.now();
        let mut events = Vec::new();

        let mut flagged = capabilities.clone();
        flagged.observed_gaps.extend(
            memory
                .gaps
                .iter()
                .copied()
                .filter(|field| capabilities.support_of(*field).is_available()),
        );
        events.extend(capability_event(
            integration,
            Some(&capabilities),
            &flagged,
            started_at,
            "gaps",
        ));

        let stats = self.store.hold_stats(integration).await?;
        let mut deletions_held = false;
        if stats.held > 0 {
            if self
                .settings
                .deletion_guard
                .trips(stats, info.data_expired_at.is_some())
            {
                deletions_held = true;
                report.deletions_held = stats.held;
                if !state.deletions_held {
                    events.push(ChangeEvent::for_integration(
                        integration,
                        EventKind::DeletionsHeld(DeletionsHeld {
                            held: stats.held,
                            tracked: stats.tracked,
                            data_expired_at: info.data_expired_at,
                        }),
                        &stamp(started_at),
                        finished_at,
                    ));
                }
            } else {
                report.deletions_released = self.store.release_held(integration).await?;
                report.deletions_held = 0;
            }
        }

        if let Some(failing_since) = state.failing_since {
            events.push(ChangeEvent::for_integration(
                integration,
                EventKind::Recovered(Recovered {
                    failing_since,
                    failed_for_seconds: (finished_at - failing_since).num_seconds().max(0),
                }),
                &stamp(failing_since),
                finished_at,
            ));
        }

        self.store
            .complete_pass(PassCompletion {
                integration_id: integration.clone(),
                watermark: Some(started_at - self.settings.watermark_margin),
                full: report.mode == PassMode::Full,
                started_at,
                finished_at,
                capabilities: Some(flagged),
                deletions_held,
                events,
            })
            .await?;
        report.outcome = PassOutcome::Completed;
        Ok(())
    }

    async fn record_failure(
        &self,
        integration: &IntegrationId,
        state: &SyncState,
        error: &SyncError,
    ) -> Result<(), SyncError> {
        let at = self.clock.now();
        let report = FailureReport {
            kind: error.kind().to_owned(),
            message: error.to_string(),
        };
        let failing_since = if error.is_failure() {
            Some(state.failing_since.unwrap_or(at))
        } else {
            state.failing_since
        };
        let mut events = Vec::new();
        if error.is_failure() && state.failing_since.is_none() {
            events.push(ChangeEvent::for_integration(
                integration,
                EventKind::SyncFailed(SyncFailed {
                    error: report.clone(),
                    failing_since: at,
                }),
                &stamp(at),
                at,
            ));
        }
        self.store
            .record_failure(PassFailure {
                integration_id: integration.clone(),
                at,
                error: report,
                failing_since,
                events,
            })
            .await?;
        Ok(())
    }
}

/// `integration.capability_changed` when `to` differs from `from` (or nothing was known).
fn capability_event(
    integration: &IntegrationId,
    from: Option<&Capabilities>,
    to: &Capabilities,
    at: DateTime<Utc>,
    cause: &str,
) -> Option<ChangeEvent> {
    if from == Some(to) {
        return None;
    }
    let changed = from.map_or_else(
        || vec!["applications", "outcome", "current_stage"],
        |from| from.differences(to),
    );
    Some(ChangeEvent::for_integration(
        integration,
        EventKind::CapabilityChanged(CapabilityChange {
            from: from.cloned(),
            to: to.clone(),
            changed: changed.into_iter().map(str::to_owned).collect(),
        }),
        &format!("{cause}@{}", stamp(at)),
        at,
    ))
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
