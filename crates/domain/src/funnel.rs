//! Funnel analytics: how the applications of a job (or of many jobs, grouped by stage name)
//! move through the pipeline. The store computes the counts and times; this module holds the
//! result types and the arithmetic on them that needs no database.
//!
//! The definitions (also in `docs/console.md`, "Funnel analytics"):
//!
//! - **Cohort**: the applications of the scope whose creation time
//!   (`remote_created_at`, else `first_seen_at`) lies in `[since, until)`.
//! - An application counts in the funnel of its **current** job; a stay counts only when its
//!   stage belongs to that job's pipeline, so after a job change the stays in the old job's
//!   stages count nowhere.
//! - **Stages listed**: the job's pipeline in `position` order, without `INACTIVE` stages unless
//!   an application of the cohort is currently in one. Across jobs, stages are grouped by name
//!   (trimmed, case-insensitive), ordered by their lowest position, then name.
//! - `entered`: applications with at least one stay in the stage (once each, however often they
//!   came back). `reached`: applications that entered this stage or any later one, so a
//!   skipped stage counts as passed.
//! - Time in stage: per application, the sum of its closed stays there whose entry and exit are
//!   both known; `median_seconds` and `p90_seconds` are nearest-rank percentiles of those sums
//!   (a store may read them from buckets for a large cohort, and says how close they are).
//! - Deleted applications count in `entered`, `reached` and the times (that history happened)
//!   but not in `current`, `hired`, `declined` nor the rejection reasons.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{IntegrationId, JobId};

/// Which applications a funnel covers: one job, one integration's jobs, or everything, and a
/// window on the applications' creation time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunnelQuery {
    pub integration: Option<IntegrationId>,
    /// One job's pipeline (needs `integration`); without it, stages are grouped by name.
    pub job: Option<JobId>,
    /// Applications created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Applications created before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Why a [`FunnelQuery`] cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunnelQueryError {
    #[error("a job's funnel needs its integration")]
    JobWithoutIntegration,
}

impl FunnelQuery {
    /// Checks the query: a job without its integration is refused. A window that ends where
    /// or before it starts is empty, not wrong: its funnel holds no application (as a replay
    /// range that ends before it starts holds no event).
    pub fn check(&self) -> Result<(), FunnelQueryError> {
        if self.job.is_some() && self.integration.is_none() {
            return Err(FunnelQueryError::JobWithoutIntegration);
        }
        Ok(())
    }

    /// Whether stages are grouped by name (any scope wider than one job).
    pub fn by_name(&self) -> bool {
        self.job.is_none()
    }
}

/// A funnel: the cohort's counts and one row per stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Funnel {
    pub applications: CohortCounts,
    pub stages: Vec<FunnelStage>,
}

/// The applications of the cohort.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CohortCounts {
    /// Every application of the cohort, deleted ones included.
    pub total: u64,
    /// Not deleted, outcome `PENDING` or unknown.
    pub active: u64,
    /// Not deleted, outcome `HIRED`.
    pub hired: u64,
    /// Not deleted, outcome `DECLINED`.
    pub declined: u64,
    /// Deleted in the ATS.
    pub deleted: u64,
    /// Not deleted, and with no current stage, or one that is not a listed stage of its
    /// current job (or without a job).
    pub without_known_stage: u64,
}

/// One stage of a funnel (or, across jobs, the stages of one name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStage {
    /// The stage's id in a job's funnel; `None` when stages are grouped by name.
    pub stage_id: Option<String>,
    pub name: Option<String>,
    /// The stage's position in its pipeline (across jobs, the lowest of the group).
    pub position: i32,
    /// Applications currently here: not deleted, outcome `PENDING` or unknown.
    pub current: u64,
    /// Applications with at least one stay here.
    pub entered: u64,
    /// Applications that entered this stage or a later one.
    pub reached: u64,
    /// `reached` of the next stage / `reached` of this one; `None` for the last stage or
    /// when none reached this one.
    pub conversion_to_next: Option<f64>,
    /// Nearest-rank median of the applications' time here.
    pub median_seconds: Option<i64>,
    /// Nearest-rank 90th percentile of the applications' time here.
    pub p90_seconds: Option<i64>,
    /// Applications whose time here is known (at least one closed stay with both ends known):
    /// the samples behind the percentiles.
    pub completed_stays: u64,
    /// Applications hired while here (not deleted, current stage this one).
    pub hired: u64,
    /// Applications declined while here (not deleted, current stage this one).
    pub declined: u64,
    /// The most frequent rejection reasons of `declined`, at most three, by count then name.
    pub top_rejection_reasons: Vec<ReasonCount>,
}

/// A rejection reason and how many applications it declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

/// How many rejection reasons a stage lists.
pub const TOP_REASONS: usize = 3;

/// The share of the applications that reached a stage which reached the next one too.
pub fn conversion(reached: u64, reached_next: u64) -> Option<f64> {
    if reached == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    Some(reached_next as f64 / reached as f64)
}

/// Sets every stage's `conversion_to_next` from the `reached` counts, in list order; the last
/// stage has none.
pub fn fill_conversions(stages: &mut [FunnelStage]) {
    let reached: Vec<u64> = stages.iter().map(|s| s.reached).collect();
    for (index, stage) in stages.iter_mut().enumerate() {
        stage.conversion_to_next = reached
            .get(index + 1)
            .and_then(|next| conversion(reached[index], *next));
    }
}

/// The 1-based rank of the nearest-rank `percent` percentile among `n` sorted samples:
/// `ceil(percent / 100 × n)`, at least 1. The store computes the same in SQL as
/// `(percent * n + 99) / 100` in integer arithmetic.
pub fn nearest_rank(n: u64, percent: u64) -> u64 {
    (percent * n).div_ceil(100).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(reached: u64) -> FunnelStage {
        FunnelStage {
            stage_id: None,
            name: None,
            position: 0,
            current: 0,
            entered: 0,
            reached,
            conversion_to_next: Some(9.0),
            median_seconds: None,
            p90_seconds: None,
            completed_stays: 0,
            hired: 0,
            declined: 0,
            top_rejection_reasons: Vec::new(),
        }
    }

    #[test]
    fn conversion_is_next_over_this_and_none_without_applications() {
        assert_eq!(conversion(4, 3), Some(0.75));
        assert_eq!(conversion(4, 0), Some(0.0));
        assert_eq!(conversion(0, 0), None);
    }

    #[test]
    fn the_last_stage_converts_to_nothing() {
        let mut stages = vec![stage(4), stage(2), stage(0), stage(0)];
        fill_conversions(&mut stages);
        let conversions: Vec<Option<f64>> = stages.iter().map(|s| s.conversion_to_next).collect();
        assert_eq!(conversions, [Some(0.5), Some(0.0), None, None]);
        let mut one = vec![stage(3)];
        fill_conversions(&mut one);
        assert_eq!(one[0].conversion_to_next, None);
    }

    #[test]
    fn nearest_rank_matches_the_sql_formula() {
        assert_eq!(nearest_rank(1, 50), 1);
        assert_eq!(nearest_rank(1, 90), 1);
        assert_eq!(nearest_rank(2, 50), 1);
        assert_eq!(nearest_rank(3, 50), 2);
        assert_eq!(nearest_rank(10, 90), 9);
        assert_eq!(nearest_rank(11, 90), 10);
        // The SQL's integer arithmetic, spelled as the store spells it.
        #[allow(clippy::manual_div_ceil)]
        for n in 1..500 {
            for percent in [50, 90] {
                assert_eq!(
                    nearest_rank(n, percent),
                    (percent * n + 99) / 100,
                    "{n} {percent}"
                );
            }
        }
    }

    #[test]
    fn a_reversed_window_is_empty_and_a_job_needs_its_integration() {
        let at = |h: i64| DateTime::<Utc>::from_timestamp(h * 3600, 0).unwrap();
        let query = FunnelQuery {
            since: Some(at(2)),
            until: Some(at(1)),
            ..FunnelQuery::default()
        };
        assert_eq!(query.check(), Ok(()));
        let job_alone = FunnelQuery {
            job: Some(JobId::parse("j").unwrap()),
            ..FunnelQuery::default()
        };
        assert_eq!(
            job_alone.check(),
            Err(FunnelQueryError::JobWithoutIntegration)
        );
    }
}
