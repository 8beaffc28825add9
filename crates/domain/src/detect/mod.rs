//! The change-detection rules: one pure function from (what we hold, what Kombo says now, the
//! job's pipeline) to (the events, what we hold next). `docs/change-detection.md` has the rule
//! table; each rule below names its row.

use chrono::{DateTime, Utc};

use crate::application::{ApplicationSnapshot, Origin, TrackedApplication};
use crate::event::{
    Baseline, ChangeEvent, Declined, Deleted, Direction, EventKind, Hired, JobChange, JobRef,
    OutcomeChange, Restored, StageChange,
};
use crate::ids::{ApplicationId, JobId, StageId};
use crate::outcome::Outcome;
use crate::stage::{Pipeline, Stage, StageRef};

#[cfg(test)]
mod tests;

/// What `detect` needs besides the snapshot: when it runs, and how to label an application seen
/// for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectContext {
    pub detected_at: DateTime<Utc>,
    /// `Discovered` in a sync; `CreatedHere` when stagewatch itself just created the application.
    pub origin_for_new: Origin,
}

impl DetectContext {
    /// The context of a sync pass.
    pub fn sync(detected_at: DateTime<Utc>) -> Self {
        Self {
            detected_at,
            origin_for_new: Origin::Discovered,
        }
    }
}

/// The outcome of comparing one snapshot with what was held.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Detection {
    /// The changes, in the fixed order of rule 8.
    pub events: Vec<ChangeEvent>,
    pub next_state: TrackedApplication,
    /// The application entered a stage (for the stage history); `None` when it did not.
    pub stage_entry: Option<StageEntry>,
    pub signals: Signals,
    /// The snapshot was older than what was held and was ignored (rule 2).
    pub stale: bool,
}

impl Detection {
    /// Whether applying this detection would delete the application: what the mass-deletion
    /// guard holds back.
    pub fn deletes(&self) -> bool {
        self.events
            .iter()
            .any(|event| matches!(event.kind, EventKind::Deleted(_)))
    }
}

/// An application entering a stage, for the stage timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageEntry {
    pub application_id: ApplicationId,
    pub stage: StageRef,
    /// `None` when the application was already in the stage before tracking began.
    pub entered_at: Option<DateTime<Utc>>,
}

/// What the sync should do about this detection beyond storing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// The current stage is not in the pipeline given (rule 4): refresh the job's pipeline and
    /// detect again.
    pub refresh_pipeline: Option<JobId>,
    /// A stage of the pipeline has a new name, index or status (rule 9).
    pub stage_update: Option<(JobId, Stage)>,
    /// The stage went from known to `null` (rule 5).
    pub stage_went_unknown: bool,
    /// The outcome went from known to `null` (rule 5).
    pub outcome_went_unknown: bool,
}

/// Compares Kombo's `snapshot` with the `previous` state and returns the events and the state to
/// hold next. `pipeline` is the pipeline of the snapshot's job, if known.
///
/// Pure and deterministic: the same inputs give the same events with the same ids.
pub fn detect(
    previous: Option<&TrackedApplication>,
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
    ctx: &DetectContext,
) -> Detection {
    match previous {
        None => baseline(snapshot, pipeline, ctx),
        // Rule 2: an older snapshot says nothing new.
        Some(previous) if snapshot.changed_at < previous.changed_at => Detection {
            events: Vec::new(),
            next_state: previous.clone(),
            stage_entry: None,
            signals: Signals::default(),
            stale: true,
        },
        Some(previous) => compare(previous, snapshot, pipeline, ctx),
    }
}

/// Rule 1: the first sight of an application.
fn baseline(
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
    ctx: &DetectContext,
) -> Detection {
    let mut signals = Signals::default();
    let stage = snapshot.current_stage_id.as_ref().map(|id| {
        let resolved = resolve_stage(id, snapshot, pipeline);
        resolved.record_signals(snapshot, &mut signals);
        resolved.stage
    });
    let entered_current_stage_at = match ctx.origin_for_new {
        Origin::CreatedHere => stage.as_ref().map(|_| snapshot.changed_at),
        Origin::Discovered => None,
    };
    let next = TrackedApplication {
        integration_id: snapshot.integration_id.clone(),
        id: snapshot.id.clone(),
        remote_id: snapshot.remote_id.clone(),
        job_id: snapshot.job_id.clone(),
        job_name: job_name(snapshot, pipeline, None),
        candidate_id: snapshot.candidate_id.clone(),
        candidate_name: snapshot.candidate_name.clone(),
        current_stage: stage.clone(),
        stage_unknown_since: None,
        outcome: snapshot.outcome.clone(),
        outcome_unknown_since: None,
        rejection_reason_name: snapshot.rejection_reason_name.clone(),
        rejected_at: snapshot.rejected_at,
        changed_at: snapshot.changed_at,
        deleted_at: snapshot.remote_deleted_at,
        remote_created_at: snapshot.remote_created_at,
        origin: ctx.origin_for_new,
        first_seen_at: ctx.detected_at,
        last_seen_at: ctx.detected_at,
        entered_current_stage_at,
    };
    let detail = Baseline {
        stage: stage.clone(),
        outcome: snapshot.outcome.clone(),
        deleted: snapshot.remote_deleted_at.is_some(),
    };
    let kind = match ctx.origin_for_new {
        Origin::CreatedHere => EventKind::ApplicationCreated(detail),
        Origin::Discovered => EventKind::ApplicationDiscovered(detail),
    };
    let event = ChangeEvent::for_application(&next, kind, snapshot.changed_at, ctx.detected_at);
    Detection {
        events: vec![event],
        stage_entry: stage.map(|stage| StageEntry {
            application_id: next.id.clone(),
            stage,
            entered_at: entered_current_stage_at,
        }),
        next_state: next,
        signals,
        stale: false,
    }
}

/// Rules 2–10 for an application already held, with a snapshot not older than it.
fn compare(
    previous: &TrackedApplication,
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
    ctx: &DetectContext,
) -> Detection {
    let mut next = previous.clone();
    next.changed_at = snapshot.changed_at;
    next.last_seen_at = ctx.detected_at;
    let mut signals = Signals::default();

    // Rule 10: Kombo nulls a deleted application's fields after 14 days; while it stays deleted,
    // nothing it says is a transition.
    if let (Some(_), Some(deleted_at)) = (previous.deleted_at, snapshot.remote_deleted_at) {
        next.deleted_at = Some(deleted_at);
        return Detection {
            events: Vec::new(),
            next_state: next,
            stage_entry: None,
            signals,
            stale: false,
        };
    }
    let deleting = snapshot.remote_deleted_at.is_some();
    let mut kinds = Vec::new();

    // Rule 7, second half: a restore comes first, so the changes after it read in order.
    if let (Some(was_deleted_at), None) = (previous.deleted_at, snapshot.remote_deleted_at) {
        next.deleted_at = None;
        kinds.push(EventKind::Restored(Restored { was_deleted_at }));
    }

    refresh_descriptive_fields(&mut next, snapshot, pipeline);

    let job_changed = match &snapshot.job_id {
        Some(job_id) if previous.job_id.as_ref() != Some(job_id) => {
            kinds.push(EventKind::JobChanged(JobChange {
                from: previous.job_id.clone().map(|id| JobRef {
                    id,
                    name: previous.job_name.clone(),
                }),
                to: JobRef {
                    id: job_id.clone(),
                    name: next.job_name.clone(),
                },
            }));
            next.job_id = Some(job_id.clone());
            true
        }
        _ => false,
    };

    let stage_entry = match &snapshot.current_stage_id {
        // Rule 5: the ATS stopped telling. Keep the last known stage; a deleted snapshot may be
        // anonymized, which is no gap in the ATS's support.
        None => {
            if previous.current_stage.is_some()
                && previous.stage_unknown_since.is_none()
                && !deleting
            {
                next.stage_unknown_since = Some(ctx.detected_at);
                signals.stage_went_unknown = true;
            }
            None
        }
        Some(stage_id) => {
            next.stage_unknown_since = None;
            let resolved = resolve_stage(stage_id, snapshot, pipeline);
            resolved.record_signals(snapshot, &mut signals);
            let moved = previous.current_stage.as_ref().map(|s| &s.stage_id) != Some(stage_id);
            next.current_stage = Some(resolved.stage.clone());
            if moved {
                // Rule 4.
                kinds.push(EventKind::StageChanged(stage_change(
                    previous,
                    &resolved,
                    pipeline,
                    job_changed,
                    snapshot.changed_at,
                )));
                next.entered_current_stage_at = Some(snapshot.changed_at);
                Some(StageEntry {
                    application_id: next.id.clone(),
                    stage: resolved.stage,
                    entered_at: Some(snapshot.changed_at),
                })
            } else {
                // Rule 9: a rename or re-order of the same stage only refreshes names.
                None
            }
        }
    };

    match &snapshot.outcome {
        None => {
            if previous.outcome.is_some() && previous.outcome_unknown_since.is_none() && !deleting {
                next.outcome_unknown_since = Some(ctx.detected_at);
                signals.outcome_went_unknown = true;
            }
        }
        Some(outcome) => {
            next.outcome_unknown_since = None;
            next.rejection_reason_name
                .clone_from(&snapshot.rejection_reason_name);
            next.rejected_at = snapshot.rejected_at;
            if previous.outcome.as_ref() != Some(outcome) {
                // Rule 6.
                next.outcome = Some(outcome.clone());
                kinds.extend(outcome_events(previous, outcome, &next));
            }
        }
    }

    // Rule 7: a deletion comes last, after whatever else its snapshot changed.
    if let (None, Some(remote_deleted_at)) = (previous.deleted_at, snapshot.remote_deleted_at) {
        next.deleted_at = Some(remote_deleted_at);
        kinds.push(EventKind::Deleted(Deleted { remote_deleted_at }));
    }

    let events = kinds
        .into_iter()
        .map(|kind| ChangeEvent::for_application(&next, kind, snapshot.changed_at, ctx.detected_at))
        .collect();
    Detection {
        events,
        next_state: next,
        stage_entry,
        signals,
        stale: false,
    }
}

/// Fields that describe the application but are no transitions of their own.
fn refresh_descriptive_fields(
    next: &mut TrackedApplication,
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
) {
    next.job_name = job_name(snapshot, pipeline, next.job_name.as_deref());
    if snapshot.remote_id.is_some() {
        next.remote_id.clone_from(&snapshot.remote_id);
    }
    if snapshot.candidate_id.is_some() {
        next.candidate_id.clone_from(&snapshot.candidate_id);
    }
    if snapshot.candidate_name.is_some() {
        next.candidate_name.clone_from(&snapshot.candidate_name);
    }
    if snapshot.remote_created_at.is_some() {
        next.remote_created_at = snapshot.remote_created_at;
    }
}

fn job_name(
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
    held: Option<&str>,
) -> Option<String> {
    snapshot
        .job_name
        .clone()
        .or_else(|| pipeline.and_then(|p| p.job_name.clone()))
        .or_else(|| held.map(str::to_owned))
}

/// The outcome change and its sharp form (rule 6).
fn outcome_events(
    previous: &TrackedApplication,
    outcome: &Outcome,
    next: &TrackedApplication,
) -> Vec<EventKind> {
    let change = OutcomeChange {
        from: previous.outcome.clone(),
        to: outcome.clone(),
    };
    let sharp = match outcome {
        Outcome::Hired => Some(EventKind::Hired(Hired {
            previous_outcome: previous.outcome.clone(),
            stage: next.current_stage.clone(),
        })),
        Outcome::Declined => Some(EventKind::Declined(Declined {
            previous_outcome: previous.outcome.clone(),
            stage: next.current_stage.clone(),
            rejection_reason: next.rejection_reason_name.clone(),
            rejected_at: next.rejected_at,
        })),
        Outcome::Pending if previous.outcome.as_ref().is_some_and(Outcome::is_decided) => {
            Some(EventKind::Reopened(change.clone()))
        }
        Outcome::Pending | Outcome::Unrecognized(_) => None,
    };
    std::iter::once(EventKind::OutcomeChanged(change))
        .chain(sharp)
        .collect()
}

fn stage_change(
    previous: &TrackedApplication,
    to: &ResolvedStage,
    pipeline: Option<&Pipeline>,
    job_changed: bool,
    changed_at: DateTime<Utc>,
) -> StageChange {
    // Within one job, read the previous stage from the current pipeline: its index may have
    // moved since it was stored. A previous stage the pipeline no longer has (removed, or a
    // stage of the job the application left) keeps its stored index, which belongs to another
    // numbering: no direction or skipped stages can be read from it.
    let current_from = previous.current_stage.as_ref().and_then(|held| {
        pipeline
            .filter(|_| !job_changed)
            .and_then(|p| p.stage(&held.stage_id))
    });
    let from_in_pipeline = current_from.is_some();
    let from = current_from
        .map(Stage::to_ref)
        .or_else(|| previous.current_stage.clone());
    let positions = from.as_ref().and_then(|f| f.index).zip(to.stage.index);
    let direction = match positions {
        _ if job_changed || !to.in_pipeline || !from_in_pipeline => Direction::Unknown,
        Some((from, to)) if to > from => Direction::Forward,
        Some((from, to)) if to < from => Direction::Backward,
        _ => Direction::Unknown,
    };
    let skipped = match (direction, positions, pipeline) {
        (Direction::Forward, Some((from, to)), Some(pipeline)) => pipeline.stages_between(from, to),
        _ => Vec::new(),
    };
    let time_in_previous_stage_seconds = from
        .as_ref()
        .and(previous.entered_current_stage_at)
        .map(|entered| (changed_at - entered).num_seconds().max(0));
    StageChange {
        from,
        to: to.stage.clone(),
        direction,
        skipped,
        time_in_previous_stage_seconds,
    }
}

/// The current stage as an event should name it.
struct ResolvedStage {
    stage: StageRef,
    /// Whether the job's pipeline has the stage.
    in_pipeline: bool,
    /// The pipeline's stage with Kombo's fresher name, index or status, when they differ.
    update: Option<Stage>,
}

impl ResolvedStage {
    fn record_signals(&self, snapshot: &ApplicationSnapshot, signals: &mut Signals) {
        if !self.in_pipeline {
            signals.refresh_pipeline.clone_from(&snapshot.job_id);
        }
        if let (Some(update), Some(job_id)) = (&self.update, &snapshot.job_id) {
            signals.stage_update = Some((job_id.clone(), update.clone()));
        }
    }
}

/// Rules 4 and 9: look the stage up in the job's pipeline, preferring the names and index of
/// Kombo's expansion (it reflects renames that the stored pipeline has not seen yet).
fn resolve_stage(
    id: &StageId,
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
) -> ResolvedStage {
    let expansion = snapshot
        .current_stage
        .as_ref()
        .filter(|stage| &stage.id == id);
    match pipeline.and_then(|p| p.stage(id)) {
        Some(known) => {
            let fresher = expansion.map(|e| Stage {
                id: known.id.clone(),
                remote_id: e.remote_id.clone().or_else(|| known.remote_id.clone()),
                name: e.name.clone().or_else(|| known.name.clone()),
                index: e.index.or(known.index),
                status: e.status.or(known.status),
            });
            let update = fresher.filter(|fresh| fresh != known);
            let stage = update.as_ref().unwrap_or(known).to_ref();
            ResolvedStage {
                stage,
                in_pipeline: true,
                update,
            }
        }
        None => ResolvedStage {
            stage: StageRef {
                stage_id: id.clone(),
                name: expansion.and_then(|e| e.name.clone()),
                index: None,
            },
            in_pipeline: false,
            update: None,
        },
    }
}
