//! Funnel analytics, computed in SQL over the stored stage visits: per stage, how many
//! applications are there now, entered it, reached it or a later one, how long they stayed,
//! and how many were hired or declined there. The definitions are `domain::funnel`'s (and
//! `docs/console.md`'s, "Funnel analytics").
//!
//! Three statements, run at once on the pool: the cohort's counts, one row per stage (or group
//! of stages of one name), and the top rejection reasons per stage. Each starts from the same
//! two CTEs: `cohort` (the applications of the scope and window) and `pipeline` (the stages
//! listed, each with `grp`, the key it is grouped by). Percentiles are nearest-rank, from
//! `ROW_NUMBER()` and `COUNT(*)` over each group (SQLite has no percentile function).

use domain::funnel::{TOP_REASONS, fill_conversions};
use domain::ports::StoreError;
use domain::{CohortCounts, Funnel, FunnelQuery, FunnelStage, IntegrationId, JobId, ReasonCount};
use sea_orm::{FromQueryResult, Value};

use crate::error::OrStoreError;
use crate::funnel_summed::FUNNEL_EXACT_BELOW;
use crate::store::{Backend, Store};

/// The shared beginning of the three statements, with its bound values, and what the scope
/// fixes.
struct Scope {
    ctes: String,
    values: Vec<Value>,
    /// The placeholder of the scope's integration, if it has one.
    integration: Option<String>,
    /// Whether the scope is one job.
    one_job: bool,
}

impl Scope {
    /// `left.integration_id = right.integration_id AND left.job_id = right.job_id AND `, less
    /// the columns the scope fixes: both sides are filtered on them already, and PostgreSQL,
    /// which has no statistics of a CTE's columns, counts each equality as a further 1/200
    /// and took a join of 600 000 rows for one of 3 000.
    fn same_job(&self, left: &str, right: &str) -> String {
        let mut keys = Vec::new();
        if self.integration.is_none() {
            keys.push(format!(
                "{left}.integration_id = {right}.integration_id AND "
            ));
        }
        if !self.one_job {
            keys.push(format!("{left}.job_id = {right}.job_id AND "));
        }
        keys.concat()
    }

    /// The stage visits' side of their join with the cohort `c`: the integration as a constant
    /// where the scope has one, which the statistics of `stage_visits` can estimate.
    fn visits_integration(&self) -> String {
        match &self.integration {
            Some(p) => format!("v.integration_id = {p}"),
            None => "v.integration_id = c.integration_id".to_owned(),
        }
    }
}

#[derive(Debug, FromQueryResult)]
struct CohortRow {
    total: i64,
    active: i64,
    hired: i64,
    declined: i64,
    deleted: i64,
    without_known_stage: i64,
}

#[derive(Debug, FromQueryResult)]
struct StageRow {
    grp: String,
    position: i32,
    stage_id: Option<String>,
    name: Option<String>,
    current_n: i64,
    entered_n: i64,
    reached_n: i64,
    timed_n: i64,
    p50_ms: Option<i64>,
    p90_ms: Option<i64>,
    hired_n: i64,
    declined_n: i64,
}

#[derive(Debug, FromQueryResult)]
struct ReasonRow {
    grp: String,
    reason: String,
    n: i64,
}

pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// Whole seconds, rounded down, from milliseconds.
fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

impl Store {
    /// The funnel of one job, of an integration's jobs, or of every integration's, over the
    /// applications created in the query's window: from the totals kept at write time when the
    /// cohort holds at least [`FUNNEL_EXACT_BELOW`] applications, else (or where the totals cannot
    /// tell) computed exactly from the stays. The query is taken as it is: a window that ends
    /// before it starts holds no application (callers refuse it with [`FunnelQuery::check`]).
    pub async fn funnel(&self, query: &FunnelQuery) -> Result<Funnel, StoreError> {
        match self.funnel_from_totals(query, FUNNEL_EXACT_BELOW).await? {
            Some(funnel) => Ok(funnel),
            None => self.exact_funnel(query).await,
        }
    }

    /// The funnel computed from the stored stays, with exact percentiles, whatever the size
    /// of the cohort.
    pub async fn exact_funnel(&self, query: &FunnelQuery) -> Result<Funnel, StoreError> {
        let scope = self.funnel_scope(query);
        let cohort = CohortRow::find_by_statement(self.statement(
            format!("{} {}", scope.ctes, cohort_sql(&scope)),
            scope.values.clone(),
        ))
        .one(&self.db);
        let stages = StageRow::find_by_statement(self.statement(
            format!(
                "{} {}",
                scope.ctes,
                self.stages_sql(&scope, query.by_name())
            ),
            scope.values.clone(),
        ))
        .all(&self.db);
        let reasons = ReasonRow::find_by_statement(self.statement(
            format!("{} {}", scope.ctes, self.reasons_sql(&scope)),
            scope.values,
        ))
        .all(&self.db);
        let (cohort, stages, reasons) =
            tokio::try_join!(cohort, stages, reasons).or_store_error()?;

        let applications = cohort.map_or_else(CohortCounts::default, |row| CohortCounts {
            total: count(row.total),
            active: count(row.active),
            hired: count(row.hired),
            declined: count(row.declined),
            deleted: count(row.deleted),
            without_known_stage: count(row.without_known_stage),
        });
        let mut stages: Vec<FunnelStage> = stages
            .into_iter()
            .map(|row| FunnelStage {
                top_rejection_reasons: reasons
                    .iter()
                    .filter(|r| r.grp == row.grp)
                    .take(TOP_REASONS)
                    .map(|r| ReasonCount {
                        reason: r.reason.clone(),
                        count: count(r.n),
                    })
                    .collect(),
                stage_id: if query.by_name() { None } else { row.stage_id },
                name: row.name,
                position: row.position,
                current: count(row.current_n),
                entered: count(row.entered_n),
                reached: count(row.reached_n),
                conversion_to_next: None,
                median_seconds: row.p50_ms.map(seconds),
                p90_seconds: row.p90_ms.map(seconds),
                completed_stays: count(row.timed_n),
                hired: count(row.hired_n),
                declined: count(row.declined_n),
            })
            .collect();
        fill_conversions(&mut stages);
        Ok(Funnel {
            applications,
            stages,
        })
    }

    /// Whether the integration has a job with this id: a stored pipeline, or a tracked
    /// application in it.
    pub async fn job_known(
        &self,
        integration: &IntegrationId,
        job: &JobId,
    ) -> Result<bool, StoreError> {
        #[derive(Debug, FromQueryResult)]
        struct Known {
            known: i64,
        }
        let row = Known::find_by_statement(self.statement(
            "SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE integration_id = $1 AND job_id = $2) \
             OR EXISTS (SELECT 1 FROM applications WHERE integration_id = $1 AND job_id = $2) \
             THEN 1 ELSE 0 END AS BIGINT) AS known",
            vec![integration.as_str().into(), job.as_str().into()],
        ))
        .one(&self.db)
        .await
        .or_store_error()?;
        Ok(row.is_some_and(|r| r.known == 1))
    }

    /// `WITH cohort AS (…), pipeline AS (…)` for the query, and its values. Whether someone of
    /// the cohort is in an inactive stage is asked of `applications` (an index probe per
    /// inactive stage), not of the `cohort` CTE: PostgreSQL cannot estimate a CTE's rows and
    /// scanned the whole cohort once per stage.
    fn funnel_scope(&self, query: &FunnelQuery) -> Scope {
        let mut values: Vec<Value> = Vec::new();
        let mut bind = |value: Value| {
            values.push(value);
            format!("${}", values.len())
        };
        let mut applications = vec!["1 = 1".to_owned()];
        let mut stages = vec!["1 = 1".to_owned()];
        let mut integration_param = None;
        if let Some(integration) = &query.integration {
            let p = bind(integration.as_str().into());
            applications.push(format!("a.integration_id = {p}"));
            stages.push(format!("s.integration_id = {p}"));
            integration_param = Some(p);
        }
        if let Some(job) = &query.job {
            let p = bind(job.as_str().into());
            applications.push(format!("a.job_id = {p}"));
            stages.push(format!("s.job_id = {p}"));
        }
        let created = self.instant("COALESCE(a.remote_created_at, a.first_seen_at)");
        if let Some(since) = query.since {
            let p = bind(since.into());
            applications.push(format!("{created} >= {}", self.instant(&p)));
        }
        if let Some(until) = query.until {
            let p = bind(until.into());
            applications.push(format!("{created} < {}", self.instant(&p)));
        }
        let grp = if query.by_name() {
            // Unnamed stages keep to themselves, by id.
            "COALESCE(NULLIF(LOWER(TRIM(s.name)), ''), '#' || s.stage_id)"
        } else {
            "s.stage_id"
        };
        // Not materialized on PostgreSQL: inlined, both are estimated from the statistics of
        // their tables, where a materialized CTE's columns have none (a funnel over 100 000
        // applications and 350 000 visits took 7.4 s materialized, 2.0 s inlined).
        let materialized = match self.backend {
            Backend::Postgres => "NOT MATERIALIZED ",
            Backend::Sqlite => "",
        };
        let ctes = format!(
            "WITH cohort AS {materialized}(\
               SELECT a.integration_id, a.application_id, a.job_id, a.current_stage_id, \
                 a.outcome, a.deleted_at, a.rejection_reason_name \
               FROM applications a WHERE {applications}), \
             pipeline AS {materialized}(\
               SELECT s.integration_id, s.job_id, s.stage_id, s.position, s.name, {grp} AS grp \
               FROM stages s WHERE {stages} \
               AND (s.status IS NULL OR s.status <> 'INACTIVE' OR EXISTS (\
                 SELECT 1 FROM applications a WHERE {applications} \
                 AND a.integration_id = s.integration_id AND a.job_id = s.job_id \
                 AND a.current_stage_id = s.stage_id AND a.deleted_at IS NULL)))",
            applications = applications.join(" AND "),
            stages = stages.join(" AND "),
        );
        Scope {
            ctes,
            values,
            integration: integration_param,
            one_job: query.job.is_some(),
        }
    }

    /// An expression of a timestamp column or parameter that compares as time. SQLite keeps
    /// timestamps as RFC 3339 text; `julianday` reads it whatever its precision or offset.
    pub(crate) fn instant(&self, expression: &str) -> String {
        match self.backend {
            Backend::Postgres => expression.to_owned(),
            Backend::Sqlite => format!("julianday({expression})"),
        }
    }

    /// Milliseconds from `v.entered_at` to `v.left_at`.
    fn stay_ms(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => {
                "CAST(ROUND(EXTRACT(EPOCH FROM (v.left_at - v.entered_at)) * 1000) AS BIGINT)"
            }
            Backend::Sqlite => {
                "CAST(ROUND((julianday(v.left_at) - julianday(v.entered_at)) * 86400000.0) \
                 AS INTEGER)"
            }
        }
    }

    /// Byte order for names, the same on both backends.
    fn binary(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " COLLATE \"C\"",
            Backend::Sqlite => "",
        }
    }

    fn stages_sql(&self, scope: &Scope, by_name: bool) -> String {
        let ms = self.stay_ms();
        let visits_integration = scope.visits_integration();
        let pipeline_of_cohort = scope.same_job("p", "c");
        let groups_of_tops = scope.same_job("t", "g");
        let binary = self.binary();
        let name = if by_name {
            "MIN(TRIM(name))"
        } else {
            "MIN(name)"
        };
        format!(
            ", stays AS (\
               SELECT c.integration_id, c.application_id, c.job_id, p.grp, p.position, \
                 CASE WHEN v.closed AND v.entered_at IS NOT NULL AND v.left_at IS NOT NULL \
                   THEN {ms} END AS ms \
               FROM cohort c \
               JOIN stage_visits v ON {visits_integration} \
                 AND v.application_id = c.application_id \
               JOIN pipeline p ON {pipeline_of_cohort} p.stage_id = v.stage_id), \
             per_app AS (\
               SELECT integration_id, application_id, job_id, grp, \
                 MAX(position) AS top_position, CAST(SUM(ms) AS BIGINT) AS ms \
               FROM stays GROUP BY integration_id, application_id, job_id, grp), \
             app_top AS (\
               SELECT integration_id, job_id, MAX(top_position) AS top_position \
               FROM per_app GROUP BY integration_id, application_id, job_id), \
             top_counts AS (\
               SELECT integration_id, job_id, top_position, COUNT(*) AS n \
               FROM app_top GROUP BY integration_id, job_id, top_position), \
             job_groups AS (\
               SELECT integration_id, job_id, grp, MIN(position) AS position \
               FROM pipeline GROUP BY integration_id, job_id, grp), \
             reached AS (\
               SELECT g.grp, CAST(SUM(t.n) AS BIGINT) AS n FROM job_groups g \
               JOIN top_counts t ON {groups_of_tops} t.top_position >= g.position \
               GROUP BY g.grp), \
             entered AS (SELECT grp, COUNT(*) AS n FROM per_app GROUP BY grp), \
             ranked AS (\
               SELECT grp, ms, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY ms) AS rn, \
                 COUNT(*) OVER (PARTITION BY grp) AS n \
               FROM per_app WHERE ms IS NOT NULL), \
             times AS (\
               SELECT grp, MAX(n) AS n, \
                 MAX(CASE WHEN rn = (50 * n + 99) / 100 THEN ms END) AS p50, \
                 MAX(CASE WHEN rn = (90 * n + 99) / 100 THEN ms END) AS p90 \
               FROM ranked GROUP BY grp), \
             present AS (\
               SELECT p.grp, \
                 SUM(CASE WHEN c.outcome IS NULL OR c.outcome = 'PENDING' THEN 1 ELSE 0 END) \
                   AS current_n, \
                 SUM(CASE WHEN c.outcome = 'HIRED' THEN 1 ELSE 0 END) AS hired_n, \
                 SUM(CASE WHEN c.outcome = 'DECLINED' THEN 1 ELSE 0 END) AS declined_n \
               FROM cohort c JOIN pipeline p \
                 ON {pipeline_of_cohort} p.stage_id = c.current_stage_id \
               WHERE c.deleted_at IS NULL GROUP BY p.grp), \
             groups AS (\
               SELECT grp, MIN(position) AS position, MIN(stage_id) AS stage_id, \
                 {name} AS name \
               FROM pipeline GROUP BY grp) \
             SELECT g.grp, g.position, g.stage_id, g.name, \
               CAST(COALESCE(x.current_n, 0) AS BIGINT) AS current_n, \
               CAST(COALESCE(e.n, 0) AS BIGINT) AS entered_n, \
               CAST(COALESCE(r.n, 0) AS BIGINT) AS reached_n, \
               CAST(COALESCE(t.n, 0) AS BIGINT) AS timed_n, \
               t.p50 AS p50_ms, t.p90 AS p90_ms, \
               CAST(COALESCE(x.hired_n, 0) AS BIGINT) AS hired_n, \
               CAST(COALESCE(x.declined_n, 0) AS BIGINT) AS declined_n \
             FROM groups g \
             LEFT JOIN entered e ON e.grp = g.grp \
             LEFT JOIN reached r ON r.grp = g.grp \
             LEFT JOIN times t ON t.grp = g.grp \
             LEFT JOIN present x ON x.grp = g.grp \
             ORDER BY g.position, g.name{binary}, g.grp{binary}"
        )
    }

    fn reasons_sql(&self, scope: &Scope) -> String {
        let binary = self.binary();
        let pipeline_of_cohort = scope.same_job("p", "c");
        format!(
            ", reasons AS (\
               SELECT p.grp, c.rejection_reason_name AS reason, COUNT(*) AS n \
               FROM cohort c JOIN pipeline p \
                 ON {pipeline_of_cohort} p.stage_id = c.current_stage_id \
               WHERE c.deleted_at IS NULL AND c.outcome = 'DECLINED' \
                 AND c.rejection_reason_name IS NOT NULL \
               GROUP BY p.grp, c.rejection_reason_name), \
             ranked AS (\
               SELECT grp, reason, n, \
                 ROW_NUMBER() OVER (PARTITION BY grp ORDER BY n DESC, reason{binary}) AS rn \
               FROM reasons) \
             SELECT grp, reason, CAST(n AS BIGINT) AS n FROM ranked WHERE rn <= {TOP_REASONS} \
             ORDER BY grp, rn"
        )
    }
}

/// The cohort's counts.
fn cohort_sql(scope: &Scope) -> String {
    let pipeline_of_cohort = scope.same_job("p", "c");
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total, \
         CAST(COALESCE(SUM(CASE WHEN c.deleted_at IS NULL \
           AND (c.outcome IS NULL OR c.outcome = 'PENDING') THEN 1 ELSE 0 END), 0) AS BIGINT) \
           AS active, \
         CAST(COALESCE(SUM(CASE WHEN c.deleted_at IS NULL AND c.outcome = 'HIRED' \
           THEN 1 ELSE 0 END), 0) AS BIGINT) AS hired, \
         CAST(COALESCE(SUM(CASE WHEN c.deleted_at IS NULL AND c.outcome = 'DECLINED' \
           THEN 1 ELSE 0 END), 0) AS BIGINT) AS declined, \
         CAST(COALESCE(SUM(CASE WHEN c.deleted_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) \
           AS deleted, \
         CAST(COALESCE(SUM(CASE WHEN c.deleted_at IS NULL AND p.stage_id IS NULL \
           THEN 1 ELSE 0 END), 0) AS BIGINT) AS without_known_stage \
         FROM cohort c LEFT JOIN pipeline p \
           ON {pipeline_of_cohort} p.stage_id = c.current_stage_id"
    )
}
