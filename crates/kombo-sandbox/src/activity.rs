//! Random hiring activity: one seeded step at a time, each recorded in the ground truth.

use chrono::Duration;
use rand::Rng;

use crate::model::{Interview, Outcome, REJECTION_REASONS, WITHDRAWAL_REASON};
use crate::truth::{TruthChange, TruthEntry};
use crate::world::World;

/// How many random positions to try before giving up on finding a fitting application; keeps a
/// step O(1) however many applications an integration holds.
const PICK_ATTEMPTS: usize = 16;

impl World {
    /// One random change somewhere; `None` when no integration has anything to change.
    pub(crate) fn step(&mut self) -> Option<TruthEntry> {
        if self.integrations.is_empty() {
            return None;
        }
        let integration = self.random.rng.random_range(0..self.integrations.len());
        self.step_in(integration)
    }

    /// One random change in the integration at `integration`.
    pub(crate) fn step_in(&mut self, integration: usize) -> Option<TruthEntry> {
        if self.integrations[integration].jobs.is_empty() {
            return None;
        }
        let roll = self.random.rng.random_range(0..100);
        let entry = match roll {
            0..30 => self.forward(integration, 1),
            30..36 => {
                let stages: isize = if self.random.chance(0.5) { 2 } else { 3 };
                self.forward(integration, stages)
            }
            36..41 => self.backward(integration),
            41..47 => self.hire(integration),
            47..55 => {
                let reason = self.random.pick(REJECTION_REASONS).to_owned();
                self.decline(integration, reason)
            }
            55..58 => self.decline(integration, WITHDRAWAL_REASON.to_owned()),
            58..61 => self.reopen(integration),
            61..63 => self.change_job(integration),
            63..66 => self.delete(integration),
            66..68 => self.restore(integration),
            68..71 => Some(self.rename_stage(integration)),
            71..73 => self.reorder_stages(integration),
            73..82 => self.edit_candidate(integration),
            82..89 => self.add_interview(integration),
            _ => None,
        };
        entry.or_else(|| self.new_application(integration))
    }

    fn pick(
        &mut self,
        integration: usize,
        fits: impl Fn(&crate::model::Application) -> bool,
    ) -> Option<usize> {
        let count = self.integrations[integration].applications.len();
        if count == 0 {
            return None;
        }
        (0..PICK_ATTEMPTS).find_map(|_| {
            let position = self.random.rng.random_range(0..count);
            let application = &self.integrations[integration].applications[position];
            (application.tracked && fits(application)).then_some(position)
        })
    }

    fn pick_pending(&mut self, integration: usize) -> Option<usize> {
        self.pick(integration, |application| {
            application.deleted_at.is_none() && application.outcome == Outcome::Pending
        })
    }

    /// Moves a pending application `by` active stages along (negative: back).
    fn shift_stage(
        &mut self,
        integration: usize,
        position: usize,
        by: isize,
    ) -> Option<TruthEntry> {
        let target = &self.integrations[integration];
        let application = &target.applications[position];
        let job = application.job;
        let stages = target.jobs[job].active_stages();
        let current = stages
            .iter()
            .position(|stage| stage.id == application.stage_id)
            .unwrap_or(0);
        let wanted = current.saturating_add_signed(by).min(stages.len() - 1);
        if wanted == current {
            return None;
        }
        let from = application.stage_id.clone();
        let to = stages[wanted].id.clone();
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.stage_id.clone_from(&to);
        application.changed_at = at;
        Some(self.record(
            integration,
            Some(position),
            job,
            at,
            TruthChange::StageMoved { from, to },
        ))
    }

    fn forward(&mut self, integration: usize, stages: isize) -> Option<TruthEntry> {
        let position = self.pick_pending(integration)?;
        self.shift_stage(integration, position, stages)
    }

    fn backward(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick_pending(integration)?;
        self.shift_stage(integration, position, -1)
    }

    fn set_outcome(
        &mut self,
        integration: usize,
        position: usize,
        outcome: Outcome,
        reason: Option<String>,
    ) -> TruthEntry {
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        let change = match outcome {
            Outcome::Hired => TruthChange::Hired,
            Outcome::Declined => TruthChange::Declined {
                reason: reason.clone(),
            },
            Outcome::Pending => TruthChange::Reopened,
        };
        application.outcome = outcome;
        application.rejected_at = (outcome == Outcome::Declined).then_some(at);
        application.rejection_reason = reason;
        application.changed_at = at;
        let job = application.job;
        self.record(integration, Some(position), job, at, change)
    }

    fn hire(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick_pending(integration)?;
        Some(self.set_outcome(integration, position, Outcome::Hired, None))
    }

    fn decline(&mut self, integration: usize, reason: String) -> Option<TruthEntry> {
        let position = self.pick_pending(integration)?;
        Some(self.set_outcome(integration, position, Outcome::Declined, Some(reason)))
    }

    fn reopen(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick(integration, |application| {
            application.deleted_at.is_none() && application.outcome != Outcome::Pending
        })?;
        Some(self.set_outcome(integration, position, Outcome::Pending, None))
    }

    fn change_job(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick_pending(integration)?;
        let target = &self.integrations[integration];
        let from_job = target.applications[position].job;
        let to_job = self.random.rng.random_range(0..target.jobs.len());
        if to_job == from_job || !target.jobs[to_job].open {
            return None;
        }
        let stage_id = target.jobs[to_job].first_stage().id.clone();
        let change = TruthChange::JobChanged {
            from_job: target.jobs[from_job].id.clone(),
            to_job: target.jobs[to_job].id.clone(),
            stage_id: stage_id.clone(),
        };
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.job = to_job;
        application.stage_id = stage_id;
        application.changed_at = at;
        Some(self.record(integration, Some(position), to_job, at, change))
    }

    fn delete(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick(integration, |application| application.deleted_at.is_none())?;
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.deleted_at = Some(at);
        application.changed_at = at;
        let job = application.job;
        Some(self.record(integration, Some(position), job, at, TruthChange::Deleted))
    }

    fn restore(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick(integration, |application| application.deleted_at.is_some())?;
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.deleted_at = None;
        application.changed_at = at;
        let job = application.job;
        Some(self.record(integration, Some(position), job, at, TruthChange::Restored))
    }

    /// Touches `updated_at` (not `changed_at`) of the job's applications: their current-stage
    /// record changed, which Kombo's `updated_after` reports.
    fn touch_job_applications(
        &mut self,
        integration: usize,
        job: usize,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let target = &mut self.integrations[integration];
        target.jobs[job].updated_at = at;
        let positions: Vec<usize> = (0..target.applications.len())
            .filter(|&position| target.applications[position].job == job)
            .collect();
        for position in positions {
            target.update_application(position, at);
        }
    }

    fn rename_stage(&mut self, integration: usize) -> TruthEntry {
        let target = &self.integrations[integration];
        let job = self.random.rng.random_range(0..target.jobs.len());
        let stage = self
            .random
            .rng
            .random_range(0..target.jobs[job].stages.len());
        let old = target.jobs[job].stages[stage].name.clone();
        let new = match old.strip_suffix(" (new)") {
            Some(original) => original.to_owned(),
            None => format!("{old} (new)"),
        };
        let at = self.clock.now();
        let record = &mut self.integrations[integration].jobs[job].stages[stage];
        record.name.clone_from(&new);
        let stage_id = record.id.clone();
        self.touch_job_applications(integration, job, at);
        self.record(
            integration,
            None,
            job,
            at,
            TruthChange::StageRenamed {
                stage_id,
                from: old,
                to: new,
            },
        )
    }

    fn reorder_stages(&mut self, integration: usize) -> Option<TruthEntry> {
        let target = &self.integrations[integration];
        let job = self.random.rng.random_range(0..target.jobs.len());
        let count = target.jobs[job].stages.len();
        // Swap two neighbours after the first stage, so new applications still start there.
        if count < 3 {
            return None;
        }
        let first = self.random.rng.random_range(1..count - 1);
        let at = self.clock.now();
        let stages = &mut self.integrations[integration].jobs[job].stages;
        let (left, right) = (stages[first].index, stages[first + 1].index);
        stages[first].index = right;
        stages[first + 1].index = left;
        stages.sort_by_key(|stage| stage.index);
        let stage_ids = stages.iter().map(|stage| stage.id.clone()).collect();
        self.touch_job_applications(integration, job, at);
        Some(self.record(
            integration,
            None,
            job,
            at,
            TruthChange::StagesReordered { stage_ids },
        ))
    }

    fn edit_candidate(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick(integration, |application| application.deleted_at.is_none())?;
        let phone = format!("+49 40 {:07}", self.random.rng.random_range(0..10_000_000));
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.candidate.phone = Some(phone);
        let job = application.job;
        Some(self.record(
            integration,
            Some(position),
            job,
            at,
            TruthChange::CandidateEdited,
        ))
    }

    fn add_interview(&mut self, integration: usize) -> Option<TruthEntry> {
        let position = self.pick_pending(integration)?;
        let interview = Interview {
            id: self.random.kombo_id(),
            remote_id: self.random.remote_id(),
            title: self
                .random
                .pick(&[
                    "Phone screen",
                    "Technical interview",
                    "Culture chat",
                    "Final round",
                ])
                .to_owned(),
            starting_at: self.clock.peek() + Duration::days(self.random.rng.random_range(1..14)),
        };
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.interviews.push(interview);
        let job = application.job;
        Some(self.record(
            integration,
            Some(position),
            job,
            at,
            TruthChange::InterviewAdded,
        ))
    }

    fn new_application(&mut self, integration: usize) -> Option<TruthEntry> {
        let target = &self.integrations[integration];
        let open: Vec<usize> = (0..target.jobs.len())
            .filter(|&job| target.jobs[job].open)
            .collect();
        if open.is_empty() {
            return None;
        }
        let job = open[self.random.rng.random_range(0..open.len())];
        let stage_id = self.integrations[integration].jobs[job]
            .first_stage()
            .id
            .clone();
        let candidate = self.random.candidate();
        self.insert_application(integration, job, stage_id, candidate);
        self.integrations[integration].truth.last().cloned()
    }
}
