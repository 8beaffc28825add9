//! The whole simulated state behind one lock, and the changes the write endpoints make to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::config::SandboxConfig;
use crate::errors::KomboError;
use crate::model::{Application, Clock, Integration, Outcome, Random};
use crate::truth::{TruthChange, TruthEntry};

/// A notification the webhook sender owes a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    DataChanged {
        integration: usize,
        models: BTreeSet<&'static str>,
    },
    StateChanged {
        integration: usize,
    },
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) api_key: String,
    pub(crate) environment_id: String,
    pub(crate) integrations: Vec<Integration>,
    pub(crate) by_id: HashMap<String, usize>,
    pub(crate) random: Random,
    pub(crate) clock: Clock,
    changed: BTreeMap<usize, BTreeSet<&'static str>>,
    state_changed: Vec<usize>,
}

impl World {
    pub(crate) fn new(config: &SandboxConfig) -> Self {
        let mut random = Random::new(config.seed);
        let mut clock = Clock::new();
        let now = clock.now();
        let environment_id = random.kombo_id();
        let integrations: Vec<Integration> = config
            .integrations
            .iter()
            .map(|integration| {
                let mut integration = random.integration(integration, now);
                integration.remote_data = config.remote_data;
                integration
            })
            .collect();
        let by_id = integrations
            .iter()
            .enumerate()
            .map(|(position, integration)| (integration.id.clone(), position))
            .collect();
        Self {
            api_key: config.api_key.clone(),
            environment_id,
            integrations,
            by_id,
            random,
            clock,
            changed: BTreeMap::new(),
            state_changed: Vec::new(),
        }
    }

    pub(crate) fn integration(&self, id: &str) -> Option<&Integration> {
        self.by_id
            .get(id)
            .map(|&position| &self.integrations[position])
    }

    /// Records `change` of the application at `application` (or of the job `job` alone), with the
    /// timestamp the caller already stamped on the data.
    pub(crate) fn record(
        &mut self,
        integration: usize,
        application: Option<usize>,
        job: usize,
        at: DateTime<Utc>,
        change: TruthChange,
    ) -> TruthEntry {
        let target = &mut self.integrations[integration];
        let entry = TruthEntry {
            integration: target.id.clone(),
            application_id: application
                .map(|position| target.applications[position].id.clone())
                .unwrap_or_default(),
            job_id: target.jobs[job].id.clone(),
            at,
            change,
        };
        self.changed
            .entry(integration)
            .or_default()
            .extend(entry.change.changed_models().iter().copied());
        target.truth.push(entry.clone());
        entry
    }

    /// The notifications owed since the last call.
    pub(crate) fn take_notices(&mut self) -> Vec<Notice> {
        let mut notices: Vec<Notice> = std::mem::take(&mut self.state_changed)
            .into_iter()
            .map(|integration| Notice::StateChanged { integration })
            .collect();
        notices.extend(std::mem::take(&mut self.changed).into_iter().map(
            |(integration, models)| Notice::DataChanged {
                integration,
                models,
            },
        ));
        notices
    }

    pub(crate) fn mark_ready(&mut self, integration: usize) {
        if !self.integrations[integration].ready {
            self.integrations[integration].ready = true;
            self.state_changed.push(integration);
        }
    }

    /// Marks `fraction` of the integration's live, served applications deleted at once and sets
    /// `data_expired_at`, as a scope change in Kombo does.
    pub(crate) fn mass_delete(&mut self, integration: usize, fraction: f64) -> usize {
        let now = self.clock.now();
        let target = &self.integrations[integration];
        let live: Vec<usize> = target
            .applications
            .iter()
            .enumerate()
            .filter(|(_, application)| {
                application.deleted_at.is_none() && target.serves(application)
            })
            .map(|(position, _)| position)
            .collect();
        let mut deleted = 0;
        for position in live {
            if !self.random.chance(fraction) {
                continue;
            }
            let at = self.clock.now();
            let application = self.integrations[integration].update_application(position, at);
            application.deleted_at = Some(at);
            application.changed_at = at;
            let job = application.job;
            self.record(integration, Some(position), job, at, TruthChange::Deleted);
            deleted += 1;
        }
        self.integrations[integration].data_expired_at = Some(now);
        self.state_changed.push(integration);
        deleted
    }

    fn live_application(&self, integration: usize, id: &str) -> Result<usize, KomboError> {
        let target = &self.integrations[integration];
        target
            .applications_by_id
            .get(id)
            .copied()
            .filter(|&position| {
                let application = &target.applications[position];
                application.deleted_at.is_none() && target.serves(application)
            })
            .ok_or_else(|| {
                KomboError::not_found(format!("No application with the ID \"{id}\" exists."))
            })
    }

    /// `PUT /ats/applications/{id}/stage`.
    pub(crate) fn move_to_stage(
        &mut self,
        integration: usize,
        id: &str,
        stage_id: &str,
    ) -> Result<(), KomboError> {
        let position = self.live_application(integration, id)?;
        let target = &self.integrations[integration];
        let application = &target.applications[position];
        let job = application.job;
        if target.jobs[job].stage(stage_id).is_none() {
            return Err(KomboError::input_invalid(format!(
                "The stage \"{stage_id}\" does not belong to the application's job."
            )));
        }
        if application.stage_id == stage_id {
            return Ok(());
        }
        let from = application.stage_id.clone();
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        stage_id.clone_into(&mut application.stage_id);
        application.changed_at = at;
        self.record(
            integration,
            Some(position),
            job,
            at,
            TruthChange::StageMoved {
                from,
                to: stage_id.to_owned(),
            },
        );
        Ok(())
    }

    /// `POST /ats/applications/{id}/reject`.
    pub(crate) fn reject(
        &mut self,
        integration: usize,
        id: &str,
        reason: Option<String>,
    ) -> Result<(), KomboError> {
        let position = self.live_application(integration, id)?;
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.outcome = Outcome::Declined;
        application.rejection_reason.clone_from(&reason);
        application.rejected_at = Some(at);
        application.changed_at = at;
        let job = application.job;
        self.record(
            integration,
            Some(position),
            job,
            at,
            TruthChange::Declined { reason },
        );
        Ok(())
    }

    /// `POST /ats/jobs/{job_id}/applications`; returns the new application's position.
    pub(crate) fn create_application(
        &mut self,
        integration: usize,
        job_reference: &str,
        stage_id: Option<&str>,
        first_name: String,
        last_name: String,
        email: String,
    ) -> Result<usize, KomboError> {
        let target = &self.integrations[integration];
        let job = target.job_by_reference(job_reference).ok_or_else(|| {
            KomboError::not_found(format!("No job with the ID \"{job_reference}\" exists."))
        })?;
        if !target.jobs[job].open {
            return Err(KomboError::job_closed());
        }
        let stage_id = match stage_id {
            Some(stage_id) if target.jobs[job].stage(stage_id).is_some() => stage_id.to_owned(),
            Some(stage_id) => {
                return Err(KomboError::input_invalid(format!(
                    "The stage \"{stage_id}\" does not belong to the job."
                )));
            }
            None => target.jobs[job].first_stage().id.clone(),
        };
        let duplicate = target.applications.iter().any(|application| {
            application.job == job
                && application.deleted_at.is_none()
                && application.candidate.email.eq_ignore_ascii_case(&email)
        });
        if duplicate {
            return Err(KomboError::application_already_exists());
        }
        let mut candidate = self.random.candidate();
        candidate.first_name = first_name;
        candidate.last_name = last_name;
        candidate.email = email;
        candidate.source = Some("Kombo".to_owned());
        let position = self.insert_application(integration, job, stage_id, candidate);
        Ok(position)
    }

    pub(crate) fn insert_application(
        &mut self,
        integration: usize,
        job: usize,
        stage_id: String,
        candidate: crate::model::Candidate,
    ) -> usize {
        let at = self.clock.now();
        let application = Application {
            id: self.random.kombo_id(),
            remote_id: self.random.remote_id(),
            job,
            stage_id: stage_id.clone(),
            outcome: Outcome::Pending,
            rejection_reason: None,
            rejected_at: None,
            candidate,
            interviews: Vec::new(),
            created_at: at,
            changed_at: at,
            updated_at: at,
            deleted_at: None,
            tracked: true,
        };
        let position = self.integrations[integration].push_application(application);
        self.record(
            integration,
            Some(position),
            job,
            at,
            TruthChange::Created { stage_id },
        );
        position
    }

    /// `POST /ats/import-tracked-application`: finds the ATS application by the remote ids in the
    /// request and starts serving it. Returns its Kombo id.
    pub(crate) fn import(
        &mut self,
        integration: usize,
        remote_ids: &[String],
    ) -> Result<String, KomboError> {
        let target = &self.integrations[integration];
        let position = remote_ids
            .iter()
            .find_map(|remote_id| target.applications_by_remote_id.get(remote_id).copied())
            .ok_or_else(|| {
                KomboError::not_found("No application with these remote IDs exists in the ATS.")
            })?;
        let id = target.applications[position].id.clone();
        if target.applications[position].tracked {
            return Ok(id);
        }
        let at = self.clock.now();
        let application = self.integrations[integration].update_application(position, at);
        application.tracked = true;
        let job = application.job;
        self.record(integration, Some(position), job, at, TruthChange::Tracked);
        Ok(id)
    }
}
