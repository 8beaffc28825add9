//! Stages and the job-specific pipelines they form.

use serde::{Deserialize, Serialize};

use crate::ids::{JobId, RemoteId, StageId};

/// Whether a stage is in use. Kombo sends `ACTIVE`, `INACTIVE` (archived or hidden stages that
/// applications may still reference) or `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StageStatus {
    Active,
    Inactive,
}

/// One stage of a job's pipeline, as `GET /ats/jobs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stage {
    pub id: StageId,
    pub remote_id: Option<RemoteId>,
    pub name: Option<String>,
    /// Position in the pipeline when the ATS orders its stages; `None` when it does not.
    pub index: Option<i32>,
    pub status: Option<StageStatus>,
}

impl Stage {
    /// The compact reference events and tracked states carry.
    pub fn to_ref(&self) -> StageRef {
        StageRef {
            stage_id: self.id.clone(),
            name: self.name.clone(),
            index: self.index,
        }
    }
}

/// A stage as an event names it: enough for a consumer to show it without another lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StageRef {
    pub stage_id: StageId,
    pub name: Option<String>,
    pub index: Option<i32>,
}

/// One job's stages. Stages are job-specific in most ATS, so every lookup goes through the
/// pipeline of the application's own job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub job_id: JobId,
    pub job_remote_id: Option<RemoteId>,
    pub job_name: Option<String>,
    pub stages: Vec<Stage>,
}

impl Pipeline {
    /// The stage with this id, if the pipeline has it.
    pub fn stage(&self, id: &StageId) -> Option<&Stage> {
        self.stages.iter().find(|stage| &stage.id == id)
    }

    /// The active stages strictly between two positions, in pipeline order: what a forward move
    /// from `from` to `to` jumped over. Inactive stages are not counted as skipped, since no
    /// application can be moved into them.
    pub fn stages_between(&self, from: i32, to: i32) -> Vec<StageRef> {
        let mut between: Vec<&Stage> = self
            .stages
            .iter()
            .filter(|stage| stage.status != Some(StageStatus::Inactive))
            .filter(|stage| stage.index.is_some_and(|index| index > from && index < to))
            .collect();
        between.sort_by_key(|stage| stage.index);
        between.into_iter().map(Stage::to_ref).collect()
    }

    /// Replaces the stage with the same id (a rename or re-order), or appends it when new.
    /// Returns whether anything changed.
    pub fn upsert_stage(&mut self, stage: Stage) -> bool {
        match self
            .stages
            .iter_mut()
            .find(|existing| existing.id == stage.id)
        {
            Some(existing) if *existing == stage => false,
            Some(existing) => {
                *existing = stage;
                true
            }
            None => {
                self.stages.push(stage);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(id: &str, index: Option<i32>, status: Option<StageStatus>) -> Stage {
        Stage {
            id: StageId::parse(id).unwrap(),
            remote_id: None,
            name: Some(id.to_uppercase()),
            index,
            status,
        }
    }

    fn pipeline() -> Pipeline {
        Pipeline {
            job_id: JobId::parse("job").unwrap(),
            job_remote_id: None,
            job_name: Some("Backend Engineer".into()),
            stages: vec![
                stage("applied", Some(0), Some(StageStatus::Active)),
                stage("screen", Some(1), None),
                stage("archived", Some(2), Some(StageStatus::Inactive)),
                stage("takehome", Some(3), Some(StageStatus::Active)),
                stage("onsite", Some(4), Some(StageStatus::Active)),
                stage("unordered", None, Some(StageStatus::Active)),
            ],
        }
    }

    #[test]
    fn stages_between_lists_active_stages_in_order() {
        let skipped = pipeline().stages_between(0, 4);
        let ids: Vec<_> = skipped.iter().map(|s| s.stage_id.as_str()).collect();
        assert_eq!(ids, ["screen", "takehome"]);
    }

    #[test]
    fn stages_between_is_empty_for_adjacent_or_backward_positions() {
        assert!(pipeline().stages_between(3, 4).is_empty());
        assert!(pipeline().stages_between(4, 0).is_empty());
    }

    #[test]
    fn upsert_stage_reports_changes_only() {
        let mut pipeline = pipeline();
        let same = pipeline.stages[0].clone();
        assert!(!pipeline.upsert_stage(same));
        let mut renamed = pipeline.stages[0].clone();
        renamed.name = Some("New name".into());
        assert!(pipeline.upsert_stage(renamed));
        assert_eq!(pipeline.stages[0].name.as_deref(), Some("New name"));
        assert!(pipeline.upsert_stage(stage("offer", Some(5), None)));
        assert_eq!(pipeline.stages.len(), 7);
    }
}
