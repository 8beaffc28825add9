//! Funnel totals kept at write time, so that a large cohort's funnel sums a few hundred rows
//! instead of joining every application to every stay (see `docs/console.md`, "How a funnel
//! is computed").
//!
//! Each application adds to the totals of its job and its creation day (UTC):
//! - `now`: one, under its current stage and its state (`active`, `hired`, `declined`,
//!   `deleted`);
//! - `reason`: one, under its current stage and its rejection reason, when declined and not
//!   deleted;
//! - `path`: one, under the set of stages it ever stayed in;
//! - `time`: one per stage with a known time there (its closed stays with both ends known, added
//!   up), under that time's bucket.
//!
//! None of these depends on the pipeline: which stages are listed, their order and names are
//! applied when the totals are read, so that a pipeline edit needs no rewrite. A write that
//! touches applications reads what they added before and after it, in its transaction, and adds
//! the difference.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use domain::TrackedApplication;
use domain::detect::StageEntry;
use domain::ports::StoreError;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};
use sha2::{Digest, Sha256};

use crate::entity::{application, stage_visit};
use crate::error::OrStoreError;
use crate::feed::CHUNK;
use crate::rows::application_row;
use crate::store::{Backend, json_ids, placeholders};

/// The kinds of totals.
pub(crate) const NOW: &str = "now";
pub(crate) const REASON: &str = "reason";
pub(crate) const PATH: &str = "path";
pub(crate) const TIME: &str = "time";

/// Times under this many seconds have a bucket each; above, buckets grow by 2^(1/32) (2.2 %).
const EXACT_SECONDS: i64 = 64;
const BUCKETS_PER_DOUBLING: f64 = 32.0;

/// Totals a recount holds in memory before it writes them.
const REBUILD_KEYS_IN_MEMORY: usize = 200_000;

/// Rows each total may be kept in, summed when read. A write adds to one slot's rows; writes at
/// the same time take different slots, so that one never waits for another's row locks (the
/// pages a pass stores at once add to the same totals). More slots than a pass has pages in
/// flight; at most this many rows per total.
pub(crate) const TOTAL_SLOTS: u64 = 4;

/// The slot of a recount, which replaces an integration's rows.
const RECOUNT_SLOT: i16 = 0;

/// One total an application adds to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TotalKey {
    pub integration_id: String,
    /// `""` for an application without a job.
    pub job_id: String,
    /// Days since 1970-01-01 (UTC) of the application's creation time.
    pub created_day: i64,
    pub metric: &'static str,
    /// `""` where the metric has no stage, or the application no current stage.
    pub stage_id: String,
    pub detail: String,
}

impl TotalKey {
    /// The row's key within its job and day: a digest, since stage ids, reasons and paths may
    /// be longer than an index entry can hold.
    fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [self.metric, &self.stage_id, &self.detail] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.finalize()[..16]
            .iter()
            .fold(String::with_capacity(32), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }
}

/// What the totals read of an application.
#[derive(Debug, Clone, FromQueryResult)]
pub(crate) struct Member {
    pub integration_id: String,
    pub application_id: String,
    pub job_id: Option<String>,
    pub current_stage_id: Option<String>,
    pub outcome: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub rejection_reason_name: Option<String>,
    pub remote_created_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
}

impl Member {
    /// When the application was created: the ATS's time, else when it was first seen.
    pub(crate) fn created_at(&self) -> DateTime<Utc> {
        self.remote_created_at.unwrap_or(self.first_seen_at)
    }
}

impl From<application::Model> for Member {
    fn from(row: application::Model) -> Self {
        Self {
            integration_id: row.integration_id,
            application_id: row.application_id,
            job_id: row.job_id,
            current_stage_id: row.current_stage_id,
            outcome: row.outcome,
            deleted_at: row.deleted_at,
            rejection_reason_name: row.rejection_reason_name,
            remote_created_at: row.remote_created_at,
            first_seen_at: row.first_seen_at,
        }
    }
}

/// What the totals read of a stay.
#[derive(Debug, Clone, FromQueryResult)]
pub(crate) struct Stay {
    /// The stay's row; `None` for one this write is about to record.
    pub visit_id: Option<i64>,
    pub application_id: String,
    pub stage_id: String,
    pub entered_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
    pub closed: bool,
}

impl Stay {
    /// Its length in milliseconds, rounded, when it is closed and both ends are known.
    fn ms(&self) -> Option<i64> {
        match (self.closed, self.entered_at, self.left_at) {
            (true, Some(entered), Some(left)) => {
                let micros = (left - entered).num_microseconds()?;
                Some((micros + 500).div_euclid(1000))
            }
            _ => None,
        }
    }
}

impl From<stage_visit::Model> for Stay {
    fn from(row: stage_visit::Model) -> Self {
        Self {
            visit_id: Some(row.id),
            application_id: row.application_id,
            stage_id: row.stage_id,
            entered_at: row.entered_at,
            left_at: row.left_at,
            closed: row.closed,
        }
    }
}

/// Days since 1970-01-01 of an instant, in UTC.
pub(crate) fn day_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

/// The bucket of a time in stage of `ms` milliseconds (whole seconds, rounded down, are what a
/// funnel reports).
pub(crate) fn bucket_of(ms: i64) -> i64 {
    let seconds = ms.div_euclid(1000);
    if seconds < EXACT_SECONDS {
        return seconds;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let above =
        (BUCKETS_PER_DOUBLING * (seconds as f64 / EXACT_SECONDS as f64).log2()).floor() as i64;
    EXACT_SECONDS + above
}

/// The seconds a bucket stands for: the value itself below a minute or so, else the middle of
/// the bucket (geometrically), within 1.6 % of any whole number of seconds in it.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
pub(crate) fn bucket_seconds(bucket: i64) -> i64 {
    if bucket < EXACT_SECONDS {
        return bucket;
    }
    let exponent = ((bucket - EXACT_SECONDS) as f64 + 0.5) / BUCKETS_PER_DOUBLING;
    (EXACT_SECONDS as f64 * exponent.exp2()).floor() as i64
}

/// The totals one application adds to.
pub(crate) fn contributions(member: &Member, stays: &[&Stay]) -> Vec<TotalKey> {
    let key = |metric: &'static str, stage_id: &str, detail: String| TotalKey {
        integration_id: member.integration_id.clone(),
        job_id: member.job_id.clone().unwrap_or_default(),
        created_day: day_of(member.created_at()),
        metric,
        stage_id: stage_id.to_owned(),
        detail,
    };
    let current = member.current_stage_id.as_deref().unwrap_or_default();
    let deleted = member.deleted_at.is_some();
    let state = match member.outcome.as_deref() {
        _ if deleted => "deleted",
        None | Some("PENDING") => "active",
        Some("HIRED") => "hired",
        Some("DECLINED") => "declined",
        Some(_) => "other",
    };
    let mut keys = vec![key(NOW, current, state.to_owned())];
    if state == "declined"
        && let Some(reason) = &member.rejection_reason_name
    {
        keys.push(key(REASON, current, reason.clone()));
    }
    let mut times: HashMap<&str, Option<i64>> = HashMap::new();
    for stay in stays {
        let time = times.entry(stay.stage_id.as_str()).or_default();
        if let Some(ms) = stay.ms() {
            *time = Some(time.unwrap_or(0) + ms);
        }
    }
    if !times.is_empty() {
        let path: BTreeSet<&str> = times.keys().copied().collect();
        let path = serde_json::to_string(&path).expect("strings serialize to JSON");
        keys.push(key(PATH, "", path));
    }
    for (stage, time) in times {
        if let Some(ms) = time {
            keys.push(key(TIME, stage, bucket_of(ms).to_string()));
        }
    }
    keys
}

/// An application this write stores for the first time, with the stays it records for it: what
/// a read after the write would find, without the read (a first pass writes only such).
pub(crate) fn first_written(
    state: &TrackedApplication,
    entries: &[&StageEntry],
) -> (Member, Vec<Stay>) {
    let row = application_row(state);
    let stays = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            // As `record_visits` writes them: each closed by the next entry of the batch.
            let next = entries.get(index + 1);
            Stay {
                visit_id: None,
                application_id: row.application_id.clone(),
                stage_id: entry.stage.stage_id.as_str().to_owned(),
                entered_at: entry.entered_at,
                left_at: next.and_then(|n| n.entered_at),
                closed: next.is_some(),
            }
        })
        .collect();
    (Member::from(row), stays)
}

/// Applications and their stays, as the totals read them.
pub(crate) type Members = Vec<(Member, Vec<Stay>)>;

/// The differences between what `before` and `after` add to the totals.
pub(crate) fn difference(before: &Members, after: &Members) -> HashMap<TotalKey, i64> {
    let mut deltas: HashMap<TotalKey, i64> = HashMap::new();
    for (members, sign) in [(before, -1), (after, 1)] {
        for (member, stays) in members {
            let stays: Vec<&Stay> = stays.iter().collect();
            for key in contributions(member, &stays) {
                *deltas.entry(key).or_default() += sign;
            }
        }
    }
    deltas.retain(|_, n| *n != 0);
    deltas
}

/// Groups stays by application, in the order of `members`.
pub(crate) fn with_stays(members: Vec<Member>, stays: Vec<Stay>) -> Members {
    let mut by_application: HashMap<String, Vec<Stay>> = HashMap::new();
    for stay in stays {
        by_application
            .entry(stay.application_id.clone())
            .or_default()
            .push(stay);
    }
    members
        .into_iter()
        .map(|member| {
            let stays = by_application
                .remove(&member.application_id)
                .unwrap_or_default();
            (member, stays)
        })
        .collect()
}

fn statement(backend: Backend, sql: impl Into<String>, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend.database_backend(), sql, values)
}

/// The columns of `applications` a [`Member`] is read from.
pub(crate) const MEMBER_COLUMNS: &str = "integration_id, application_id, job_id, current_stage_id, outcome, \
     deleted_at, rejection_reason_name, remote_created_at, first_seen_at";

/// These applications of the integration (those stored) with their stays. On PostgreSQL, one
/// index probe per id (see [`json_ids`]).
pub(crate) async fn read_members<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
    integration: &str,
    ids: &[&str],
) -> Result<Members, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let members = match backend {
        Backend::Postgres => Member::find_by_statement(statement(
            backend,
            format!(
                "SELECT a.* FROM jsonb_array_elements_text($2::jsonb) AS wanted(id) \
                 CROSS JOIN LATERAL (SELECT {MEMBER_COLUMNS} FROM applications \
                 WHERE integration_id = $1 AND application_id = wanted.id LIMIT 1) AS a"
            ),
            vec![integration.into(), json_ids(ids.iter().copied())],
        ))
        .all(conn)
        .await
        .or_store_error()?,
        Backend::Sqlite => {
            let mut members = Vec::new();
            for chunk in ids.chunks(CHUNK) {
                let rows = application::Entity::find()
                    .filter(application::Column::IntegrationId.eq(integration))
                    .filter(application::Column::ApplicationId.is_in(chunk.iter().copied()))
                    .all(conn)
                    .await
                    .or_store_error()?;
                members.extend(rows.into_iter().map(Member::from));
            }
            members
        }
    };
    let stored: Vec<&str> = members.iter().map(|m| m.application_id.as_str()).collect();
    let stays = read_stays(conn, backend, integration, &stored).await?;
    Ok(with_stays(members, stays))
}

/// The stays of these applications of the integration. On PostgreSQL, one index probe per id.
pub(crate) async fn read_stays<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
    integration: &str,
    ids: &[&str],
) -> Result<Vec<Stay>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if backend == Backend::Postgres {
        return Stay::find_by_statement(statement(
            backend,
            "SELECT v.* FROM jsonb_array_elements_text($2::jsonb) AS wanted(id) \
             CROSS JOIN LATERAL (SELECT id AS visit_id, application_id, stage_id, entered_at, \
             left_at, closed FROM stage_visits WHERE integration_id = $1 AND application_id = wanted.id) AS v",
            vec![integration.into(), json_ids(ids.iter().copied())],
        ))
        .all(conn)
        .await
        .or_store_error();
    }
    let mut stays = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let rows = stage_visit::Entity::find()
            .filter(stage_visit::Column::IntegrationId.eq(integration))
            .filter(stage_visit::Column::ApplicationId.is_in(chunk.iter().copied()))
            .all(conn)
            .await
            .or_store_error()?;
        stays.extend(rows.into_iter().map(Stay::from));
    }
    Ok(stays)
}

/// Adds `deltas` to the totals' rows of `slot` (below [`TOTAL_SLOTS`]). Rows that fall to
/// zero stay: their keys (a day, a stage, a path) come back, and their number is bounded by the
/// keys ever used.
pub(crate) async fn add_totals<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
    slot: i16,
    deltas: HashMap<TotalKey, i64>,
) -> Result<(), StoreError> {
    let mut deltas: Vec<(TotalKey, i64)> = deltas.into_iter().collect();
    // One order for every writer, so that two transactions of one slot never wait on each
    // other's rows in a cycle.
    deltas.sort_unstable();
    if backend == Backend::Postgres {
        return add_totals_at_once(conn, slot, &deltas).await;
    }
    for chunk in deltas.chunks(CHUNK / 9) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 9);
        let mut rows = Vec::with_capacity(chunk.len());
        for (key, n) in chunk {
            rows.push(format!("({})", placeholders(values.len() + 1, 9)));
            values.push(key.integration_id.clone().into());
            values.push(key.job_id.clone().into());
            values.push(key.created_day.into());
            values.push(key.digest().into());
            values.push(key.metric.into());
            values.push(key.stage_id.clone().into());
            values.push(key.detail.clone().into());
            values.push((*n).into());
            values.push(slot.into());
        }
        let sql = format!(
            "INSERT INTO funnel_totals \
             (integration_id, job_id, created_day, total_key, metric, stage_id, detail, n, slot) \
             VALUES {} ON CONFLICT (integration_id, job_id, created_day, total_key, slot) \
             DO UPDATE SET n = funnel_totals.n + excluded.n",
            rows.join(", ")
        );
        conn.execute_raw(statement(backend, sql, values))
            .await
            .or_store_error()?;
    }
    Ok(())
}

/// [`add_totals`] on PostgreSQL: every row in one statement (a page's deltas took four), read
/// from one JSON array in its order.
async fn add_totals_at_once<C: ConnectionTrait>(
    conn: &C,
    slot: i16,
    deltas: &[(TotalKey, i64)],
) -> Result<(), StoreError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = deltas
        .iter()
        .map(|(key, n)| {
            serde_json::json!([
                key.integration_id,
                key.job_id,
                key.created_day,
                key.digest(),
                key.metric,
                key.stage_id,
                key.detail,
                n,
            ])
        })
        .collect();
    conn.execute_raw(statement(
        Backend::Postgres,
        "INSERT INTO funnel_totals \
         (integration_id, job_id, created_day, total_key, metric, stage_id, detail, n, slot) \
         SELECT r->>0, r->>1, (r->>2)::bigint, r->>3, r->>4, r->>5, r->>6, (r->>7)::bigint, $2::smallint \
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS rows(r, position) \
         ORDER BY position \
         ON CONFLICT (integration_id, job_id, created_day, total_key, slot) \
         DO UPDATE SET n = funnel_totals.n + excluded.n",
        vec![serde_json::Value::Array(rows).into(), slot.into()],
    ))
    .await
    .or_store_error()?;
    Ok(())
}

/// The integrations with stored applications, for a recount.
pub(crate) async fn integrations_to_count<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
) -> Result<Vec<String>, StoreError> {
    #[derive(Debug, FromQueryResult)]
    struct Integration {
        integration_id: String,
    }
    Ok(Integration::find_by_statement(statement(
        backend,
        "SELECT DISTINCT integration_id FROM applications ORDER BY integration_id",
        Vec::new(),
    ))
    .all(conn)
    .await
    .or_store_error()?
    .into_iter()
    .map(|row| row.integration_id)
    .collect())
}

/// Counts every stored application into the totals, an integration at a time: what a database
/// written before the totals existed needs, once, when the migration creates their table.
pub(crate) async fn count_all<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
) -> Result<(), StoreError> {
    for integration in integrations_to_count(conn, backend).await? {
        recount(conn, backend, &integration).await?;
    }
    analyze(conn, backend).await
}

/// Refreshes the planner's statistics of the totals after a recount.
pub(crate) async fn analyze<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        conn.execute_unprepared("ANALYZE funnel_totals")
            .await
            .or_store_error()?;
    }
    Ok(())
}

/// Replaces one integration's totals by a count of its applications and stays, a thousand
/// applications at a time. Callers that may run beside writers hold the integration's row lock.
pub(crate) async fn recount<C: ConnectionTrait>(
    conn: &C,
    backend: Backend,
    integration_id: &str,
) -> Result<(), StoreError> {
    conn.execute_raw(statement(
        backend,
        "DELETE FROM funnel_totals WHERE integration_id = $1",
        vec![integration_id.into()],
    ))
    .await
    .or_store_error()?;
    let mut applications = 0_usize;
    let mut counted: HashMap<TotalKey, i64> = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut page = application::Entity::find()
            .filter(application::Column::IntegrationId.eq(integration_id))
            .order_by_asc(application::Column::ApplicationId)
            .limit(1000);
        if let Some(after) = &after {
            page = page.filter(application::Column::ApplicationId.gt(after.as_str()));
        }
        let rows: Vec<Member> = page
            .all(conn)
            .await
            .or_store_error()?
            .into_iter()
            .map(Member::from)
            .collect();
        let Some(last) = rows.last() else {
            break;
        };
        after = Some(last.application_id.clone());
        let ids: Vec<&str> = rows.iter().map(|m| m.application_id.as_str()).collect();
        let stays = read_stays(conn, backend, integration_id, &ids).await?;
        applications += rows.len();
        for (member, stays) in with_stays(rows, stays) {
            let stays: Vec<&Stay> = stays.iter().collect();
            for key in contributions(&member, &stays) {
                *counted.entry(key).or_default() += 1;
            }
        }
        // Each row written once where it fits in memory, rather than updated per batch
        // (every update leaves a dead row behind until the next vacuum).
        if counted.len() >= REBUILD_KEYS_IN_MEMORY {
            add_totals(conn, backend, RECOUNT_SLOT, std::mem::take(&mut counted)).await?;
        }
        tracing::info!(
            integration = %integration_id,
            applications,
            "funnel totals recounted so far"
        );
    }
    add_totals(conn, backend, RECOUNT_SLOT, counted).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_seconds_exact_below_a_minute_and_within_a_percent_above() {
        assert_eq!(bucket_of(59_999), 59);
        assert_eq!(bucket_seconds(bucket_of(59_999)), 59);
        assert_eq!(bucket_of(-1), -1);
        for seconds in [64_i64, 65, 100, 3_600, 86_400, 30 * 86_400, 400 * 86_400] {
            let shown = bucket_seconds(bucket_of(seconds * 1000));
            #[allow(clippy::cast_precision_loss)]
            let error = (shown - seconds).abs() as f64 / seconds as f64;
            assert!(error < 0.016, "{seconds} s shown as {shown} s");
        }
        assert!(bucket_of(3_600_000) < bucket_of(3_700_000));
    }

    fn member(outcome: Option<&str>, deleted: bool) -> Member {
        Member {
            integration_id: "acme".into(),
            application_id: "a1".into(),
            job_id: Some("backend".into()),
            current_stage_id: Some("onsite".into()),
            outcome: outcome.map(str::to_owned),
            deleted_at: deleted.then(Utc::now),
            rejection_reason_name: Some("Salary".into()),
            remote_created_at: None,
            first_seen_at: DateTime::from_timestamp(86_400 * 3 + 5, 0).unwrap(),
        }
    }

    fn stay(stage: &str, entered: i64, left: Option<i64>) -> Stay {
        Stay {
            visit_id: None,
            application_id: "a1".into(),
            stage_id: stage.into(),
            entered_at: DateTime::from_timestamp(entered, 0),
            left_at: left.and_then(|l| DateTime::from_timestamp(l, 0)),
            closed: left.is_some(),
        }
    }

    #[test]
    fn an_application_adds_its_state_path_and_summed_times() {
        let stays = [
            stay("applied", 0, Some(10)),
            stay("screen", 10, Some(30)),
            stay("applied", 30, Some(35)),
            stay("onsite", 35, None),
        ];
        let stays: Vec<&Stay> = stays.iter().collect();
        let mut keys: Vec<(&str, String, String)> =
            contributions(&member(Some("DECLINED"), false), &stays)
                .into_iter()
                .inspect(|k| assert_eq!((k.job_id.as_str(), k.created_day), ("backend", 3)))
                .map(|k| (k.metric, k.stage_id, k.detail))
                .collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                (NOW, "onsite".into(), "declined".into()),
                (
                    PATH,
                    String::new(),
                    r#"["applied","onsite","screen"]"#.into()
                ),
                (REASON, "onsite".into(), "Salary".into()),
                (TIME, "applied".into(), "15".into()),
                (TIME, "screen".into(), "20".into()),
            ]
        );
        let deleted = contributions(&member(Some("DECLINED"), true), &[]);
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].detail, "deleted");
    }

    #[test]
    fn the_difference_of_a_move_takes_back_the_old_path_and_adds_the_new() {
        let before = vec![(member(None, false), vec![stay("applied", 0, None)])];
        let after = vec![(
            member(None, false),
            vec![stay("applied", 0, Some(60)), stay("onsite", 60, None)],
        )];
        let mut deltas: Vec<(&str, String, i64)> = difference(&before, &after)
            .into_iter()
            .map(|(k, n)| (k.metric, k.detail, n))
            .collect();
        deltas.sort();
        assert_eq!(
            deltas,
            vec![
                (PATH, r#"["applied","onsite"]"#.into(), 1),
                (PATH, r#"["applied"]"#.into(), -1),
                (TIME, "60".into(), 1),
            ]
        );
    }
}
