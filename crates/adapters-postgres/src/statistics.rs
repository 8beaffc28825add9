//! Planner statistics kept fresh while a large pass writes.
//!
//! PostgreSQL plans from statistics that autovacuum refreshes on its own schedule (and never,
//! where it is off). The sync's own lookups do not depend on them (they probe an index per id,
//! see `store::application_probe`), but the API's reads, the feed's and the funnel's do, and a
//! first pass can grow the tables from nothing to millions of rows in minutes. So every
//! 10 000 application rows this process writes, the store looks for the tables a pass fills
//! whose rows changed since their last `ANALYZE` by more than 50 + half the table, and analyzes
//! them in the background: a sampled read of about a tenth of a second, each time a table has
//! grown by half (a dozen times from ten thousand rows to a million), and never twice for one
//! change when several replicas write. Autovacuum's own rule (a tenth of the table) held an
//! `ANALYZE` running for most of a first pass, on the cores the pass needs; plans need the
//! table's size right within a factor, not a tenth.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};

use crate::store::{Backend, Store};

/// Application rows written by this process between two looks at the statistics.
const CHECK_EVERY: u64 = 10_000;

/// The statistics target of the refreshes made during a pass: a sample of 3 000 rows (300 per
/// unit) instead of the default 30 000. The plans that need these statistics only need the
/// tables' sizes and their columns' rough spread, and a full-size sample, read and sorted again
/// each time a table grew by half, took a sixth of PostgreSQL's time in a first pass.
/// Autovacuum's later `ANALYZE`, where it runs, uses the server's own target.
const STATISTICS_TARGET: u32 = 10;

/// The tables a pass fills, whose statistics are looked at. The outbox grows with the events:
/// without statistics the webhook workers' claim read every pending row (35 ms a claim with
/// 100 000 pending, 0.6 ms once analyzed), and one endpoint drained 87 deliveries a second.
const SYNC_TABLES: [&str; 5] = [
    "applications",
    "stage_visits",
    "events",
    "funnel_totals",
    "webhook_deliveries",
];

/// How many application rows this process has written, and when to look next.
#[derive(Debug)]
pub(crate) struct WriteCounter {
    written: AtomicU64,
    next_check_at: AtomicU64,
    /// A refresh is running: the next checkpoint does not start another.
    refreshing: AtomicBool,
}

impl Default for WriteCounter {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            next_check_at: AtomicU64::new(CHECK_EVERY),
            refreshing: AtomicBool::new(false),
        }
    }
}

impl WriteCounter {
    /// Counts `rows` and says whether they crossed the next checkpoint; one caller wins it.
    fn crossed(&self, rows: u64) -> bool {
        let written = self.written.fetch_add(rows, Ordering::Relaxed) + rows;
        let next = self.next_check_at.load(Ordering::Relaxed);
        written >= next
            && self
                .next_check_at
                .compare_exchange(
                    next,
                    written + CHECK_EVERY,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

#[derive(Debug, FromQueryResult)]
struct Stale {
    relname: String,
}

impl Store {
    /// Called after a committed page: every [`CHECK_EVERY`] rows, starts analyzing the sync's
    /// tables whose statistics are stale ([`Self::analyze_stale`]), in the background (an `ANALYZE`
    /// of a large table takes a tenth of a second, which the page's pass need not wait for),
    /// one refresh at a time. A failure is logged, never the caller's: statistics are an
    /// optimisation.
    pub(crate) fn count_written(&self, rows: usize) {
        if self.backend != Backend::Postgres || !self.written.crossed(rows as u64) {
            return;
        }
        if self.written.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(error) = store.analyze_stale().await {
                tracing::warn!(%error, "could not refresh planner statistics");
            }
            store.written.refreshing.store(false, Ordering::Release);
        });
    }

    /// Analyzes each of [`SYNC_TABLES`] changed by more than 50 rows and half its size since
    /// its last `ANALYZE` (autovacuum's `autovacuum_analyze_threshold`, with a scale factor of
    /// 0.5 rather than its 0.1); returns the tables analyzed.
    pub(crate) async fn analyze_stale(&self) -> Result<Vec<String>, sea_orm::DbErr> {
        let tables = SYNC_TABLES
            .iter()
            .map(|table| format!("'{table}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let stale = Stale::find_by_statement(self.statement(
            format!(
                "SELECT s.relname::text AS relname FROM pg_stat_user_tables s \
                 JOIN pg_class c ON c.oid = s.relid \
                 WHERE s.schemaname = current_schema() AND s.relname IN ({tables}) \
                 AND s.n_mod_since_analyze > 50 + 0.5 * GREATEST(c.reltuples, 0)"
            ),
            Vec::new(),
        ))
        .all(&self.db)
        .await?;
        let mut analyzed = Vec::with_capacity(stale.len());
        for Stale { relname } in stale {
            // The name comes from `SYNC_TABLES`, through the catalogue.
            let started = std::time::Instant::now();
            let tx = self.db.begin().await?;
            tx.execute_unprepared(&format!(
                "SET LOCAL default_statistics_target = {STATISTICS_TARGET}"
            ))
            .await?;
            tx.execute_unprepared(&format!("ANALYZE \"{relname}\""))
                .await?;
            tx.commit().await?;
            tracing::info!(
                table = %relname,
                duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "planner statistics refreshed"
            );
            analyzed.push(relname);
        }
        Ok(analyzed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_every_ten_thousand_rows() {
        let counter = WriteCounter::default();
        assert!(!counter.crossed(9_999));
        assert!(counter.crossed(1), "at 10 000");
        assert!(!counter.crossed(9_999));
        assert!(counter.crossed(1), "at 20 000");
        assert!(counter.crossed(15_000), "at 35 000");
        assert!(!counter.crossed(9_999), "next at 45 000");
        assert!(counter.crossed(1));
    }
}

#[cfg(all(test, feature = "scratch"))]
mod postgres_tests {
    use std::time::{Duration, Instant};

    use sea_orm::{ConnectionTrait, Statement, Value};

    use super::STATISTICS_TARGET;
    use crate::scratch::ScratchDatabase;
    use crate::store::{Store, application_probe, json_ids};

    async fn insert_applications(store: &Store, integration: &str, count: u32) {
        store
            .connection()
            .execute_raw(store.statement(
                "INSERT INTO applications (integration_id, application_id, job_id, \
                 current_stage_id, changed_at, origin, first_seen_at, last_seen_at) \
                 SELECT $1, 'app-' || g, 'job-' || (g % 50), 'stage-' || (g % 7), now(), \
                 'discovered', now(), now() FROM generate_series(1, $2::int) AS g",
                vec![integration.into(), count.into()],
            ))
            .await
            .expect("insert applications");
    }

    /// Waits (at most 20 s) until the statistics count `rows` live rows in `table`.
    async fn wait_until_counted(store: &Store, table: &str, rows: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let row = store
                .connection()
                .query_one_raw(store.statement(
                    "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = $1",
                    vec![table.into()],
                ))
                .await
                .expect("statistics")
                .expect("a row");
            let counted: i64 = row.try_get("", "n_live_tup").expect("a count");
            if counted >= rows || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn plan(store: &Store, sql: &str, values: Vec<Value>) -> String {
        let rows = store
            .connection()
            .query_all_raw(Statement::from_sql_and_values(
                store.connection().get_database_backend(),
                format!("EXPLAIN {sql}"),
                values,
            ))
            .await
            .expect("explain");
        rows.iter()
            .map(|row| {
                row.try_get::<String>("", "QUERY PLAN")
                    .expect("a plan line")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The situation after a large first pass into one integration: statistics that know it,
    /// and none of the rows another integration wrote since.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probes_keep_to_the_primary_key_and_stale_tables_get_analyzed() {
        let db = ScratchDatabase::postgres().await;
        let store = db.store().await;
        // Autovacuum, where it is on, must not analyze behind the test's back.
        store
            .connection()
            .execute_unprepared("ALTER TABLE applications SET (autovacuum_enabled = false)")
            .await
            .unwrap();
        insert_applications(&store, "greenhouse:large", 20_000).await;
        // Counts reach the statistics after the insert (within a second or so): an `ANALYZE`
        // before them would be undone by their arrival, and the table look stale again.
        wait_until_counted(&store, "applications", 20_000).await;
        store
            .connection()
            .execute_unprepared("ANALYZE applications")
            .await
            .unwrap();
        // More than half the analyzed rows: stale by the store's rule.
        insert_applications(&store, "greenhouse:newer", 12_000).await;

        let values = || {
            vec![
                Value::from("greenhouse:newer"),
                json_ids(["app-5", "app-77", "app-4999"]),
            ]
        };
        for columns in ["*", "1 AS one"] {
            let plan = plan(
                &store,
                &format!("SELECT a.* {}", application_probe(columns)),
                values(),
            )
            .await;
            let probes_by_key = plan.contains("using applications_pkey")
                && plan
                    .lines()
                    .any(|line| line.contains("Index Cond") && line.contains("application_id"));
            assert!(
                probes_by_key,
                "each id must be one primary-key probe:\n{plan}"
            );
        }

        // The inserted rows reach the statistics collector within a second or so.
        let deadline = Instant::now() + Duration::from_secs(20);
        let analyzed = loop {
            let analyzed = store.analyze_stale().await.expect("analyze");
            if !analyzed.is_empty() || Instant::now() > deadline {
                break analyzed;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(analyzed, vec!["applications".to_owned()]);
        // Sampled at the refresh's own target: a histogram of at most 10 buckets, where the
        // server's default of 100 gives 100 for these 32 000 distinct ids.
        let row = store
            .connection()
            .query_one_raw(store.statement(
                "SELECT array_length(histogram_bounds::text::text[], 1) AS bounds \
                 FROM pg_stats WHERE tablename = 'applications' AND attname = 'application_id'",
                Vec::new(),
            ))
            .await
            .expect("pg_stats")
            .expect("statistics of application_id");
        let bounds: i32 = row.try_get("", "bounds").expect("histogram bounds");
        assert!(
            i64::from(bounds) <= i64::from(STATISTICS_TARGET) + 1,
            "{bounds} histogram bounds"
        );
        let again = store.analyze_stale().await.expect("analyze");
        assert!(again.is_empty(), "analyzed tables are fresh: {again:?}");
        store.connection().close_by_ref().await.ok();
        db.drop_database().await;
    }

    /// A backlog written since the last `ANALYZE` (the outbox of a first pass): the webhook
    /// workers' claim reads it through the partial index of pending rows once the statistics
    /// know its size.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grown_outbox_gets_analyzed_and_claimed_in_order() {
        let db = ScratchDatabase::postgres().await;
        let store = db.store().await;
        let conn = store.connection();
        conn.execute_unprepared(
            "ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false); \
             ANALYZE webhook_deliveries; \
             INSERT INTO webhook_endpoints (id, url, event_types, secret, enabled, created_at, \
               updated_at) VALUES ('ep-1', 'https://example.com/hook', '[]', 'whsec_x', true, \
               now(), now()); \
             INSERT INTO webhook_deliveries (endpoint_id, event_sequence, event_id, status, \
               attempts, next_attempt_at, created_at) \
             SELECT 'ep-1', g, 'evt-' || g, 'pending', 0, now(), now() \
             FROM generate_series(1, 30000) AS g",
        )
        .await
        .expect("a backlog");
        // The claim's inner select, as `outbox.rs` writes it.
        let claim = "SELECT id FROM webhook_deliveries WHERE status = 'pending' \
             AND next_attempt_at <= now() \
             AND (lease_expires_at IS NULL OR lease_expires_at <= now()) \
             AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled = true) \
             ORDER BY event_sequence, id LIMIT 8 FOR UPDATE SKIP LOCKED";
        let deadline = Instant::now() + Duration::from_secs(20);
        let analyzed = loop {
            let analyzed = store.analyze_stale().await.expect("analyze");
            if analyzed.iter().any(|t| t == "webhook_deliveries") || Instant::now() > deadline {
                break analyzed;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(
            analyzed.iter().any(|t| t == "webhook_deliveries"),
            "{analyzed:?}"
        );
        let after = plan(&store, claim, Vec::new()).await;
        assert!(
            after.contains("idx_deliveries_pending_in_order"),
            "claimed in order from the pending rows:\n{after}"
        );
        store.connection().close_by_ref().await.ok();
        db.drop_database().await;
    }
}
