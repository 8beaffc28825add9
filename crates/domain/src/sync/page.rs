//! Turning one page of snapshots into one atomic [`PageChanges`]: pure, given the stored states
//! and the pipelines of the page.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::PassReport;
use crate::application::{ApplicationSnapshot, TrackedApplication};
use crate::detect::{DetectContext, Detection, detect};
use crate::ids::{ApplicationId, IntegrationId, JobId};
use crate::integration::TrackedField;
use crate::ports::{HeldChange, PageChanges};
use crate::stage::Pipeline;

/// A page's detections, ready to store, and what they ask of the pass.
#[derive(Debug)]
pub(super) struct AssembledPage {
    pub changes: PageChanges,
    /// Jobs whose pipeline lacks a stage a snapshot names (rule 4): worth fetching again
    /// before the page is stored.
    pub wants_pipeline: BTreeSet<JobId>,
    tally: PageTally,
}

/// What a page adds to the pass's report.
#[derive(Debug, Default)]
struct PageTally {
    seen: u64,
    stale: u64,
    gaps: BTreeSet<TrackedField>,
    events_by_kind: BTreeMap<&'static str, u64>,
}

impl AssembledPage {
    /// Counts this page into the pass's report and the gaps it observed.
    pub(super) fn tally(&self, report: &mut PassReport, gaps: &mut BTreeSet<TrackedField>) {
        report.applications_seen += self.tally.seen;
        report.stale_snapshots += self.tally.stale;
        gaps.extend(self.tally.gaps.iter().copied());
        for (kind, count) in &self.tally.events_by_kind {
            *report.events_by_kind.entry((*kind).to_owned()).or_default() += count;
        }
    }
}

/// Detects every snapshot against its stored state and its job's pipeline. Stage renames a
/// snapshot reveals are seen by the later snapshots of the page and returned in
/// `changes.pipelines`; `pipelines` itself is left as it was.
pub(super) fn assemble_page(
    integration: &IntegrationId,
    snapshots: &[ApplicationSnapshot],
    states: &HashMap<ApplicationId, TrackedApplication>,
    pipelines: &HashMap<JobId, Pipeline>,
    ctx: &DetectContext,
) -> AssembledPage {
    let mut changes = PageChanges {
        integration_id: integration.clone(),
        lease: None,
        applications: Vec::new(),
        events: Vec::new(),
        stage_entries: Vec::new(),
        held: Vec::new(),
        pipelines: Vec::new(),
    };
    let mut renamed: BTreeMap<JobId, Pipeline> = BTreeMap::new();
    let mut wants_pipeline = BTreeSet::new();
    let mut tally = PageTally::default();
    for snapshot in snapshots {
        let pipeline = snapshot
            .job_id
            .as_ref()
            .and_then(|job| renamed.get(job).or_else(|| pipelines.get(job)));
        let detection = detect(states.get(&snapshot.id), snapshot, pipeline, ctx);
        wants_pipeline.extend(detection.signals.refresh_pipeline.clone());
        if let Some((job, stage)) = &detection.signals.stage_update
            && let Some(pipeline) = renamed.get(job).or_else(|| pipelines.get(job))
        {
            let mut updated = pipeline.clone();
            if updated.upsert_stage(stage.clone()) {
                renamed.insert(job.clone(), updated);
            }
        }
        tally.count(&detection);
        if detection.stale {
            continue;
        }
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
    changes.pipelines = renamed.into_values().collect();
    AssembledPage {
        changes,
        wants_pipeline,
        tally,
    }
}

impl PageTally {
    fn count(&mut self, detection: &Detection) {
        self.seen += 1;
        if detection.stale {
            self.stale += 1;
        }
        if detection.signals.stage_went_unknown {
            self.gaps.insert(TrackedField::CurrentStage);
        }
        if detection.signals.outcome_went_unknown {
            self.gaps.insert(TrackedField::Outcome);
        }
        for event in &detection.events {
            *self.events_by_kind.entry(event.type_name()).or_default() += 1;
        }
    }
}

/// Kombo should not list an application twice in one page; if it does, the newest snapshot
/// wins, so that one page never writes one application twice.
pub(super) fn newest_per_application(
    snapshots: Vec<ApplicationSnapshot>,
) -> Vec<ApplicationSnapshot> {
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
