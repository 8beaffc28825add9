use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use super::in_flight::PagesInFlight;
use super::page::{assemble_page, newest_per_application};
use super::pipelines::PipelineCache;
use super::read_ahead::{self, ReadAhead};
use super::{PassMode, PassObserver, PassOutcome, PassReport, SyncError, SyncSettings};
use crate::application::{ApplicationSnapshot, TrackedApplication};
use crate::detect::DetectContext;
use crate::event::{
    CapabilityChange, ChangeEvent, DeletionsHeld, EventKind, FailureReport, Recovered,
    StatusChange, SyncFailed,
};
use crate::ids::{ApplicationId, IntegrationId, JobId};
use crate::integration::{Capabilities, IntegrationInfo, Support, TrackedField};
use crate::ports::{
    ApplicationQuery, AtsError, AtsGateway, Clock, IntegrationUpdate, LeaseEpoch, PageChanges,
    PassCompletion, PassFailure, SyncState, TrackerStore,
};

/// How often one pass starts reading applications from the first page again after Kombo
/// refused a cursor, before it fails (and the next pass starts over).
const MAX_PAGINATION_RESTARTS: u32 = 3;

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

    /// Runs one pass under the lease `lease` (the fencing token of the caller's claim): every
    /// write carries it, and the store refuses them all once the integration was claimed again.
    /// On failure the pages already stored stay stored (each was atomic), the watermark stays,
    /// and the failure is recorded on the integration — unless the lease was lost, when the
    /// pass stops without another write.
    pub async fn run_pass(
        &self,
        integration: &IntegrationId,
        lease: LeaseEpoch,
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
        let pass = Pass {
            integration,
            lease,
            state: &state,
        };
        match self.pass(&pass, &mut report, observer).await {
            Ok(()) => Ok(report),
            // Another pass owns the integration now: any write would be refused too.
            Err(error) if error.is_lease_lost() => Err(error),
            Err(error) => {
                // When the store itself is down this write fails too; the pass's own error is the
                // one worth returning.
                let _ = self.record_failure(&pass, &error).await;
                Err(error)
            }
        }
    }

    /// Releases deletions held by the mass-deletion guard into the feed: an operator confirmed
    /// they are real. Returns how many applications were released. Once held, deletions leave
    /// only this way (or when a newer observation shows the application back).
    pub async fn confirm_deletions(&self, integration: &IntegrationId) -> Result<u64, SyncError> {
        Ok(self.store.release_held(integration, None).await?)
    }

    async fn pass(
        &self,
        pass: &Pass<'_>,
        report: &mut PassReport,
        observer: &dyn PassObserver,
    ) -> Result<(), SyncError> {
        let integration = pass.integration;
        let state = pass.state;
        let started_at = report.started_at;
        let info = self.ats.integration_info(integration).await?;
        let mut capabilities = self.refresh_integration(pass, &info, started_at).await?;
        if !capabilities.applications.is_available() {
            return self
                .finish_unreadable(pass, report, capabilities, None)
                .await;
        }

        let mut pipelines = PipelineCache::new(
            self.ats.as_ref(),
            self.store.as_ref(),
            integration,
            self.settings.page_size,
        );
        let mut gaps = BTreeSet::new();
        let full = report.mode == PassMode::Full;
        if full {
            pipelines.fetch_all(report).await?;
        }

        let query = ApplicationQuery {
            updated_after: if full { None } else { state.watermark },
            include_deleted: true,
            page_size: self.settings.page_size,
            ..ApplicationQuery::default()
        };
        let mut in_flight = PagesInFlight::new();
        let read = self
            .read_pages(
                pass,
                &query,
                &mut pipelines,
                &mut gaps,
                report,
                observer,
                &mut in_flight,
            )
            .await;
        // Every page settles before the pass ends, however it ends: a pass never returns while
        // one of its transactions is still open.
        in_flight.settle_all().await;
        let stored = in_flight.account(report, observer);
        match (read, stored) {
            (_, Err(error)) if error.is_lease_lost() => Err(error.into()),
            (Err(error), _) => Err(error),
            (Ok(_), Err(error)) => Err(error.into()),
            (Ok(PagesRead::Interrupted), Ok(())) => {
                report.outcome = PassOutcome::Interrupted;
                Ok(())
            }
            (Ok(PagesRead::Unsupported { message }), Ok(())) => {
                let previous = capabilities.clone();
                capabilities.applications = Support::Unsupported;
                report
                    .warnings
                    .push(format!("applications cannot be read: {message}"));
                self.finish_unreadable(pass, report, capabilities, Some(previous))
                    .await
            }
            (Ok(PagesRead::Complete), Ok(())) => {
                self.finish_complete(pass, &info, capabilities, &gaps, report)
                    .await
            }
        }
    }

    /// Reads, detects and stores every page of `query`. Each page is fetched while the previous
    /// one is detected and stored ([`ReadAhead`]), and stored while the next ones are fetched
    /// and detected ([`PagesInFlight`]); the pages still being stored when this returns are
    /// the caller's to settle.
    #[allow(clippy::too_many_arguments)]
    async fn read_pages<'s>(
        &'s self,
        pass: &Pass<'_>,
        query: &ApplicationQuery,
        pipelines: &mut PipelineCache<'_>,
        gaps: &mut BTreeSet<TrackedField>,
        report: &mut PassReport,
        observer: &dyn PassObserver,
        in_flight: &mut PagesInFlight<'s>,
    ) -> Result<PagesRead, SyncError> {
        let integration = pass.integration;
        let mut fetched = in_flight
            .alongside(self.ats.fetch_applications(integration, query, None))
            .await;
        let mut restarts = 0;
        loop {
            let mut page = match fetched {
                Ok(page) => page,
                // Pages already applied are applied again harmlessly: what they hold is stored,
                // so reading them again raises no event.
                Err(AtsError::CursorExpired { message }) if restarts < MAX_PAGINATION_RESTARTS => {
                    restarts += 1;
                    report.warnings.push(format!(
                        "Kombo refused the page cursor ({message}); reading from the first page again"
                    ));
                    fetched = in_flight
                        .alongside(self.ats.fetch_applications(integration, query, None))
                        .await;
                    continue;
                }
                Err(AtsError::Unsupported { message, .. }) => {
                    return Ok(PagesRead::Unsupported { message });
                }
                Err(error) => return Err(error.into()),
            };
            report.pages += 1;
            report.skipped_records += page.skipped.len() as u64;
            let mut ahead = page.next.take().map(|cursor| {
                ReadAhead::start(
                    self.ats
                        .fetch_applications(integration, query, Some(cursor)),
                )
            });
            let applications: HashSet<ApplicationId> =
                page.items.iter().map(|item| item.id.clone()).collect();
            read_ahead::alongside(&mut ahead, in_flight.make_room_for(&applications)).await;
            in_flight.account(report, observer)?;
            let detected = in_flight
                .alongside(read_ahead::alongside(
                    &mut ahead,
                    self.detect_page(integration, page.items, pipelines, gaps, report),
                ))
                .await;
            in_flight.account(report, observer)?;
            let mut changes = detected?;
            changes.lease = Some(pass.lease);
            report.deletions_held += changes.held.len() as u64;
            // An empty page (an idle incremental pass) writes nothing: no transaction at all,
            // and it counts as stored at once.
            if changes.writes_nothing() {
                observer.page_applied(report);
            } else {
                in_flight.start(applications, self.store.apply_page(changes));
            }
            let interrupted = ahead.is_some() && !observer.keep_going();
            // An interrupted pass drops the page read ahead unseen.
            let Some(ahead) = ahead.filter(|_| !interrupted) else {
                return Ok(if interrupted {
                    PagesRead::Interrupted
                } else {
                    PagesRead::Complete
                });
            };
            fetched = in_flight.alongside(ahead.finish()).await;
            in_flight.account(report, observer)?;
        }
    }

    /// Detects a page against the stored states and the pass's pipelines. A snapshot naming a
    /// stage its pipeline lacks has the job fetched again (once per pass) and the page detected
    /// again (rule 4).
    async fn detect_page(
        &self,
        integration: &IntegrationId,
        snapshots: Vec<ApplicationSnapshot>,
        pipelines: &mut PipelineCache<'_>,
        gaps: &mut BTreeSet<TrackedField>,
        report: &mut PassReport,
    ) -> Result<PageChanges, SyncError> {
        let snapshots = newest_per_application(snapshots);
        let ids: Vec<ApplicationId> = snapshots.iter().map(|s| s.id.clone()).collect();
        let states: HashMap<ApplicationId, TrackedApplication> = if ids.is_empty() {
            HashMap::new()
        } else {
            self.store
                .load_applications(integration, &ids)
                .await?
                .into_iter()
                .map(|state| (state.id.clone(), state))
                .collect()
        };
        pipelines
            .ensure(snapshots.iter().filter_map(|s| s.job_id.clone()), report)
            .await?;
        let ctx = DetectContext::sync(self.clock.now());
        let mut page = assemble_page(
            integration,
            &snapshots,
            &states,
            pipelines.pipelines(),
            &ctx,
        );
        let refresh: Vec<JobId> = page
            .wants_pipeline
            .iter()
            .filter(|job| pipelines.can_refresh(job))
            .cloned()
            .collect();
        if !refresh.is_empty() {
            pipelines.refresh(refresh, report).await?;
            page = assemble_page(
                integration,
                &snapshots,
                &states,
                pipelines.pipelines(),
                &ctx,
            );
        }
        page.tally(report, gaps);
        pipelines.update(&page.changes.pipelines);
        Ok(page.changes)
    }

    /// Stores Kombo's fresh description of the integration, raising events for what changed.
    async fn refresh_integration(
        &self,
        pass: &Pass<'_>,
        info: &IntegrationInfo,
        at: DateTime<Utc>,
    ) -> Result<Capabilities, SyncError> {
        let (integration, state) = (pass.integration, pass.state);
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
        // Nothing changed: nothing to write (the pass's completion stores the capabilities).
        let unchanged = events.is_empty()
            && state.capabilities.as_ref() == Some(&capabilities)
            && state.status == Some(info.status);
        if !unchanged {
            self.store
                .update_integration(IntegrationUpdate {
                    integration_id: integration.clone(),
                    lease: pass.lease,
                    capabilities: Some(capabilities.clone()),
                    status: Some(info.status),
                    events,
                })
                .await?;
        }
        Ok(capabilities)
    }

    /// Ends a pass over an ATS that cannot read applications: a state to show, not a failure.
    /// Deletions held before stay held: nothing read here can confirm or supersede them.
    async fn finish_unreadable(
        &self,
        pass: &Pass<'_>,
        report: &mut PassReport,
        capabilities: Capabilities,
        stored: Option<Capabilities>,
    ) -> Result<(), SyncError> {
        let integration = pass.integration;
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
                lease: pass.lease,
                watermark: None,
                full: report.mode == PassMode::Full,
                started_at: at,
                finished_at: self.clock.now(),
                capabilities: Some(capabilities),
                deletions_held: pass.state.deletions_held,
                events,
            })
            .await?;
        report.outcome = PassOutcome::ApplicationsUnreadable;
        Ok(())
    }

    /// After the last page: flag gaps, run the mass-deletion guard, move the watermark.
    async fn finish_complete(
        &self,
        pass: &Pass<'_>,
        info: &IntegrationInfo,
        capabilities: Capabilities,
        gaps: &BTreeSet<TrackedField>,
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let (integration, state) = (pass.integration, pass.state);
        let started_at = report.started_at;
        let finished_at = self.clock.now();
        let mut events = Vec::new();

        let mut flagged = capabilities.clone();
        flagged.observed_gaps.extend(
            gaps.iter()
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

        let mut deletions_held = false;
        if self.store.count_held(integration).await? > 0 {
            let stats = self.store.hold_stats(integration).await?;
            // Once the guard held deletions for an operator, they stay held until the operator
            // confirms (or newer snapshots supersede them), even when the condition that
            // tripped it is gone: Kombo clearing `data_expired_at`, or new applications
            // lowering the share, says nothing about whether these deletions are real.
            if state.deletions_held
                || self
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
                report.deletions_released = self
                    .store
                    .release_held(integration, Some(pass.lease))
                    .await?;
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
                lease: pass.lease,
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

    async fn record_failure(&self, pass: &Pass<'_>, error: &SyncError) -> Result<(), SyncError> {
        let (integration, state) = (pass.integration, pass.state);
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
                lease: pass.lease,
                at,
                error: report,
                failing_since,
                events,
            })
            .await?;
        Ok(())
    }
}

/// How reading a pass's pages ended.
enum PagesRead {
    Complete,
    /// The observer asked to stop between pages.
    Interrupted,
    /// Kombo answered that this integration's applications cannot be read.
    Unsupported {
        message: String,
    },
}

/// What every step of a pass needs: whose pass it is, under which lease, from which state.
struct Pass<'a> {
    integration: &'a IntegrationId,
    lease: LeaseEpoch,
    state: &'a SyncState,
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
