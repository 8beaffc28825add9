//! A funnel from the totals kept at write time (`funnel_totals`): the same definitions as the
//! exact computation in `funnel`, read from a few rows per job, day and stage, with the
//! pipelines applied here. Counts are the same; times in stage are read from buckets, so their
//! percentiles are within 1.6 % of the exact ones.
//!
//! Whole days of the window come from the totals; the applications created in a part of a day
//! at either end of it are read one by one and added as they would have been at write time.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use domain::funnel::{TOP_REASONS, fill_conversions, nearest_rank};
use domain::ports::StoreError;
use domain::{CohortCounts, Funnel, FunnelQuery, FunnelStage, ReasonCount};
use sea_orm::{ConnectionTrait, FromQueryResult, Value};

use crate::error::OrStoreError;
use crate::funnel::count;
use crate::funnel_totals::{
    self, MEMBER_COLUMNS, Member, NOW, PATH, REASON, Stay, TIME, TotalKey, bucket_seconds,
    contributions, day_of, with_stays,
};
use crate::store::{Backend, Store};

/// Below this many applications in the cohort a funnel is computed exactly from the stays,
/// which is fast at that size and gives exact percentiles.
pub const FUNNEL_EXACT_BELOW: u64 = 2_000;

/// A job of the scope.
type JobKey = (String, String);

/// The totals of one job, summed over the window.
#[derive(Debug, Default)]
struct JobTotals {
    /// `(current stage, state)` → applications.
    now: HashMap<(String, String), u64>,
    /// `(current stage, reason)` → declined applications.
    reasons: HashMap<(String, String), u64>,
    /// The stages stayed in → applications.
    paths: Vec<(Vec<String>, u64)>,
    /// stage → time bucket → applications.
    times: HashMap<String, BTreeMap<i64, u64>>,
}

impl JobTotals {
    fn add(&mut self, metric: &str, stage_id: String, detail: String, n: u64) {
        match metric {
            NOW => *self.now.entry((stage_id, detail)).or_default() += n,
            REASON => *self.reasons.entry((stage_id, detail)).or_default() += n,
            PATH => {
                let stages: Vec<String> = serde_json::from_str(&detail).unwrap_or_default();
                self.paths.push((stages, n));
            }
            TIME => {
                if let Ok(bucket) = detail.parse() {
                    *self
                        .times
                        .entry(stage_id)
                        .or_default()
                        .entry(bucket)
                        .or_default() += n;
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, FromQueryResult)]
struct TotalRow {
    integration_id: String,
    job_id: String,
    metric: String,
    stage_id: String,
    detail: String,
    n: i64,
}

#[derive(Debug, Clone, FromQueryResult)]
struct StageRow {
    integration_id: String,
    job_id: String,
    stage_id: String,
    position: i32,
    name: Option<String>,
    status: Option<String>,
}

/// A listed stage of a job, with the group it counts in.
#[derive(Debug)]
struct Listed {
    stage_id: String,
    position: i32,
    name: Option<String>,
    group: String,
}

/// `[from, to)` in time, either side open.
type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The window's whole days (`[from, to)`, either side open) and its parts of days.
struct Window {
    days: Option<(Option<i64>, Option<i64>)>,
    parts: Vec<Span>,
}

fn day_start(day: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(day)
}

impl Window {
    fn of(query: &FunnelQuery) -> Self {
        let from = query.since.map(|since| {
            let day = day_of(since);
            if day_start(day) == since {
                day
            } else {
                day + 1
            }
        });
        let to = query.until.map(day_of);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Self {
                days: None,
                parts: vec![(query.since, query.until)],
            };
        }
        let mut parts = Vec::new();
        if let (Some(since), Some(from)) = (query.since, from)
            && day_start(from) != since
        {
            parts.push((Some(since), Some(day_start(from))));
        }
        if let (Some(until), Some(to)) = (query.until, to)
            && day_start(to) != until
        {
            parts.push((Some(day_start(to)), Some(until)));
        }
        Self {
            days: Some((from, to)),
            parts,
        }
    }
}

impl Store {
    /// Recomputes every funnel total from the stored applications and stays, one
    /// integration per transaction under the integration's row lock, so that pages written
    /// meanwhile wait for it. The migration that added the totals does it once; writes keep
    /// them since.
    pub async fn rebuild_funnel_totals(&self) -> Result<(), StoreError> {
        let integrations = funnel_totals::integrations_to_count(&self.db, self.backend).await?;
        for integration in integrations {
            let tx = self.begin_write().await?;
            if self.backend == Backend::Postgres {
                tx.execute_raw(self.statement(
                    "SELECT id FROM integrations WHERE id = $1 FOR UPDATE",
                    vec![integration.as_str().into()],
                ))
                .await
                .or_store_error()?;
            }
            funnel_totals::recount(&tx, self.backend, &integration).await?;
            tx.commit().await.or_store_error()?;
        }
        funnel_totals::analyze(&self.db, self.backend).await
    }

    /// The funnel from the totals, or `None` where the exact computation answers instead: a
    /// cohort of fewer than `exact_below` applications, an empty window, or a scope where one job
    /// lists two stages of one group (their times would have to be added per application).
    pub async fn funnel_from_totals(
        &self,
        query: &FunnelQuery,
        exact_below: u64,
    ) -> Result<Option<Funnel>, StoreError> {
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since >= until
        {
            return Ok(None);
        }
        let window = Window::of(query);
        let mut totals: HashMap<JobKey, JobTotals> = HashMap::new();
        if let Some((from, to)) = window.days {
            for row in self.summed_totals(query, from, to).await? {
                totals
                    .entry((row.integration_id, row.job_id))
                    .or_default()
                    .add(&row.metric, row.stage_id, row.detail, count(row.n));
            }
        }
        for (from, to) in window.parts {
            for (member, stays) in self.created_between(query, from, to).await? {
                let stays: Vec<&Stay> = stays.iter().collect();
                for key in contributions(&member, &stays) {
                    let TotalKey {
                        integration_id,
                        job_id,
                        metric,
                        stage_id,
                        detail,
                        ..
                    } = key;
                    totals
                        .entry((integration_id, job_id))
                        .or_default()
                        .add(metric, stage_id, detail, 1);
                }
            }
        }
        let cohort: u64 = totals.values().flat_map(|t| t.now.values()).sum();
        if cohort < exact_below {
            return Ok(None);
        }
        let stages = self.scope_stages(query).await?;
        Ok(self.assemble(query, &totals, stages))
    }

    /// The totals of the scope's whole days, summed per job.
    async fn summed_totals(
        &self,
        query: &FunnelQuery,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<TotalRow>, StoreError> {
        let mut values: Vec<Value> = Vec::new();
        let mut filters = scope_filters(query, &mut values);
        if let Some(from) = from {
            values.push(from.into());
            filters.push(format!("created_day >= ${}", values.len()));
        }
        if let Some(to) = to {
            values.push(to.into());
            filters.push(format!("created_day < ${}", values.len()));
        }
        TotalRow::find_by_statement(self.statement(
            format!(
                "SELECT integration_id, job_id, metric, stage_id, detail, \
                 CAST(SUM(n) AS BIGINT) AS n FROM funnel_totals WHERE {} \
                 GROUP BY integration_id, job_id, metric, stage_id, detail \
                 HAVING SUM(n) <> 0",
                filters.join(" AND ")
            ),
            values,
        ))
        .all(&self.db)
        .await
        .or_store_error()
    }

    /// The scope's applications created in `[from, to)`, with their stays.
    async fn created_between(
        &self,
        query: &FunnelQuery,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<crate::funnel_totals::Members, StoreError> {
        let mut values: Vec<Value> = Vec::new();
        let mut filters = scope_filters(query, &mut values);
        let created = self.instant("COALESCE(remote_created_at, first_seen_at)");
        for (bound, op) in [(from, ">="), (to, "<")] {
            if let Some(bound) = bound {
                values.push(bound.into());
                let p = format!("${}", values.len());
                filters.push(format!("{created} {op} {}", self.instant(&p)));
            }
        }
        let members = Member::find_by_statement(self.statement(
            format!(
                "SELECT {MEMBER_COLUMNS} FROM applications WHERE {}",
                filters.join(" AND ")
            ),
            values,
        ))
        .all(&self.db)
        .await
        .or_store_error()?;
        let mut by_integration: BTreeMap<String, Vec<Member>> = BTreeMap::new();
        for member in members {
            by_integration
                .entry(member.integration_id.clone())
                .or_default()
                .push(member);
        }
        let mut grouped = Vec::new();
        for (integration, members) in by_integration {
            let ids: Vec<&str> = members.iter().map(|m| m.application_id.as_str()).collect();
            let stays =
                funnel_totals::read_stays(&self.db, self.backend, &integration, &ids).await?;
            grouped.extend(with_stays(members, stays));
        }
        Ok(grouped)
    }

    /// The pipelines of the scope's jobs.
    async fn scope_stages(&self, query: &FunnelQuery) -> Result<Vec<StageRow>, StoreError> {
        let mut values: Vec<Value> = Vec::new();
        let filters = scope_filters(query, &mut values);
        StageRow::find_by_statement(self.statement(
            format!(
                "SELECT integration_id, job_id, stage_id, position, name, status \
                 FROM stages WHERE {}",
                filters.join(" AND ")
            ),
            values,
        ))
        .all(&self.db)
        .await
        .or_store_error()
    }

    /// The group a stage counts in: its id in a job's funnel; across jobs its name, trimmed
    /// and folded to lower case as the exact computation's SQL does on this backend (on SQLite
    /// only ASCII letters), or its id when it has no name.
    fn group_of(&self, by_name: bool, stage_id: &str, name: Option<&str>) -> String {
        if !by_name {
            return stage_id.to_owned();
        }
        let trimmed = name.map(|n| n.trim_matches(' ')).unwrap_or_default();
        if trimmed.is_empty() {
            return format!("#{stage_id}");
        }
        match self.backend {
            Backend::Postgres => trimmed.to_lowercase(),
            Backend::Sqlite => trimmed.to_ascii_lowercase(),
        }
    }

    /// The funnel from the summed totals and the pipelines; `None` when a job lists two
    /// stages of one group.
    fn assemble(
        &self,
        query: &FunnelQuery,
        totals: &HashMap<JobKey, JobTotals>,
        stages: Vec<StageRow>,
    ) -> Option<Funnel> {
        let by_name = query.by_name();
        // Each job's listed stages: not inactive, or an application of the cohort (not
        // deleted) is there now.
        let mut pipelines: HashMap<JobKey, Vec<Listed>> = HashMap::new();
        for stage in stages {
            let job = (stage.integration_id.clone(), stage.job_id.clone());
            let occupied = totals.get(&job).is_some_and(|t| {
                t.now
                    .iter()
                    .any(|((s, state), n)| *s == stage.stage_id && state != "deleted" && *n > 0)
            });
            if stage.status.as_deref() == Some("INACTIVE") && !occupied {
                continue;
            }
            let group = self.group_of(by_name, &stage.stage_id, stage.name.as_deref());
            pipelines.entry(job).or_default().push(Listed {
                stage_id: stage.stage_id,
                position: stage.position,
                name: stage.name,
                group,
            });
        }
        for listed in pipelines.values() {
            let groups: HashSet<&str> = listed.iter().map(|s| s.group.as_str()).collect();
            if groups.len() != listed.len() {
                return None;
            }
        }

        let mut rows: BTreeMap<String, GroupRow> = BTreeMap::new();
        for listed in pipelines.values().flatten() {
            let row = rows
                .entry(listed.group.clone())
                .or_insert_with(|| GroupRow {
                    position: listed.position,
                    stage_id: listed.stage_id.clone(),
                    name: None,
                    ..GroupRow::default()
                });
            row.position = row.position.min(listed.position);
            row.stage_id = row.stage_id.clone().min(listed.stage_id.clone());
            let name = if by_name {
                listed
                    .name
                    .as_deref()
                    .map(|n| n.trim_matches(' ').to_owned())
            } else {
                listed.name.clone()
            };
            row.name = match (row.name.take(), name) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }

        let mut cohort = CohortCounts::default();
        let mut reasons: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for (job, job_totals) in totals {
            let listed: HashMap<&str, &Listed> = pipelines
                .get(job)
                .map(|l| l.iter().map(|s| (s.stage_id.as_str(), s)).collect())
                .unwrap_or_default();
            for ((stage, state), n) in &job_totals.now {
                cohort.total += n;
                match state.as_str() {
                    "active" => cohort.active += n,
                    "hired" => cohort.hired += n,
                    "declined" => cohort.declined += n,
                    "deleted" => cohort.deleted += n,
                    _ => {}
                }
                if state == "deleted" {
                    continue;
                }
                let Some(listed) = listed.get(stage.as_str()) else {
                    cohort.without_known_stage += n;
                    continue;
                };
                let row = rows
                    .get_mut(&listed.group)
                    .expect("listed stages have rows");
                match state.as_str() {
                    "active" => row.current += n,
                    "hired" => row.hired += n,
                    "declined" => row.declined += n,
                    _ => {}
                }
            }
            for ((stage, reason), n) in &job_totals.reasons {
                if let Some(listed) = listed.get(stage.as_str()) {
                    *reasons
                        .entry(listed.group.clone())
                        .or_default()
                        .entry(reason.clone())
                        .or_default() += n;
                }
            }
            // The lowest position of each of the job's groups, for `reached`.
            let mut group_positions: HashMap<&str, i32> = HashMap::new();
            for stage in listed.values() {
                let position = group_positions
                    .entry(stage.group.as_str())
                    .or_insert(i32::MAX);
                *position = (*position).min(stage.position);
            }
            for (path, n) in &job_totals.paths {
                let entered: Vec<&&Listed> =
                    path.iter().filter_map(|s| listed.get(s.as_str())).collect();
                let Some(top) = entered.iter().map(|s| s.position).max() else {
                    continue;
                };
                let groups: HashSet<&str> = entered.iter().map(|s| s.group.as_str()).collect();
                for group in groups {
                    rows.get_mut(group)
                        .expect("listed stages have rows")
                        .entered += n;
                }
                for (group, position) in &group_positions {
                    if top >= *position {
                        rows.get_mut(*group)
                            .expect("listed stages have rows")
                            .reached += n;
                    }
                }
            }
            for (stage, buckets) in &job_totals.times {
                if let Some(listed) = listed.get(stage.as_str()) {
                    let row = rows
                        .get_mut(&listed.group)
                        .expect("listed stages have rows");
                    for (bucket, n) in buckets {
                        *row.times.entry(*bucket).or_default() += n;
                    }
                }
            }
        }

        let mut ordered: Vec<(String, GroupRow)> = rows.into_iter().collect();
        let nulls_last = self.backend == Backend::Postgres;
        ordered.sort_by(|(ga, a), (gb, b)| {
            a.position
                .cmp(&b.position)
                .then_with(|| match (&a.name, &b.name) {
                    (Some(x), Some(y)) => x.as_bytes().cmp(y.as_bytes()),
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) if nulls_last => std::cmp::Ordering::Greater,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) if nulls_last => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                })
                .then_with(|| ga.as_bytes().cmp(gb.as_bytes()))
        });
        let mut stages: Vec<FunnelStage> = ordered
            .into_iter()
            .map(|(group, row)| {
                let timed: u64 = row.times.values().sum();
                let mut top: Vec<(String, u64)> = reasons
                    .remove(&group)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                top.sort_by(|(ra, na), (rb, nb)| {
                    nb.cmp(na).then_with(|| ra.as_bytes().cmp(rb.as_bytes()))
                });
                FunnelStage {
                    stage_id: (!by_name).then_some(row.stage_id),
                    name: row.name,
                    position: row.position,
                    current: row.current,
                    entered: row.entered,
                    reached: row.reached,
                    conversion_to_next: None,
                    median_seconds: percentile(&row.times, timed, 50),
                    p90_seconds: percentile(&row.times, timed, 90),
                    completed_stays: timed,
                    hired: row.hired,
                    declined: row.declined,
                    top_rejection_reasons: top
                        .into_iter()
                        .take(TOP_REASONS)
                        .map(|(reason, count)| ReasonCount { reason, count })
                        .collect(),
                }
            })
            .collect();
        fill_conversions(&mut stages);
        Some(Funnel {
            applications: cohort,
            stages,
        })
    }
}

/// One row of the funnel while it is added up.
#[derive(Debug, Default)]
struct GroupRow {
    position: i32,
    stage_id: String,
    name: Option<String>,
    current: u64,
    entered: u64,
    reached: u64,
    hired: u64,
    declined: u64,
    times: BTreeMap<i64, u64>,
}

/// The nearest-rank percentile of bucketed times, in seconds.
fn percentile(times: &BTreeMap<i64, u64>, n: u64, percent: u64) -> Option<i64> {
    if n == 0 {
        return None;
    }
    let rank = nearest_rank(n, percent);
    let mut seen = 0;
    for (bucket, count) in times {
        seen += count;
        if seen >= rank {
            return Some(bucket_seconds(*bucket));
        }
    }
    None
}

/// `integration_id = $n` and `job_id = $m` as the query's scope has them.
fn scope_filters(query: &FunnelQuery, values: &mut Vec<Value>) -> Vec<String> {
    let mut filters = vec!["1 = 1".to_owned()];
    if let Some(integration) = &query.integration {
        values.push(integration.as_str().into());
        filters.push(format!("integration_id = ${}", values.len()));
    }
    if let Some(job) = &query.job {
        values.push(job.as_str().into());
        filters.push(format!("job_id = ${}", values.len()));
    }
    filters
}
