//! Planner statistics kept fresh while a large pass writes.
//!
//! PostgreSQL plans from statistics that autovacuum refreshes on its own schedule (and never,
//! where it is off). The sync's own lookups do not depend on them (they probe an index per id),
//! but the API's reads and the feed's do, and a first pass can grow the tables from nothing to
//! millions of rows in minutes. So the store analyzes the tables a pass fills after the first
//! 10 000 applications it writes and again at every doubling: a handful of times per
//! million, each a sampled read of about a tenth of a second.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::ConnectionTrait;

use crate::store::{Backend, Store};

/// Applications written by this process before the first `ANALYZE`.
const FIRST_ANALYZE_AFTER: u64 = 10_000;

/// How many application rows this process has written, and when to analyze next.
#[derive(Debug)]
pub(crate) struct WriteCounter {
    written: AtomicU64,
    next_analyze_at: AtomicU64,
}

impl Default for WriteCounter {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            next_analyze_at: AtomicU64::new(FIRST_ANALYZE_AFTER),
        }
    }
}

impl WriteCounter {
    /// Counts `rows` and says whether they crossed the next threshold (which then doubles).
    fn crossed(&self, rows: u64) -> bool {
        let written = self.written.fetch_add(rows, Ordering::Relaxed) + rows;
        let next = self.next_analyze_at.load(Ordering::Relaxed);
        written >= next
            && self
                .next_analyze_at
                .compare_exchange(next, written * 2, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl Store {
    /// Called after a committed page: analyzes the sync's tables when the rows written so far
    /// crossed a threshold. A failure is logged, never the caller's: statistics are an
    /// optimisation.
    pub(crate) async fn count_written(&self, rows: usize) {
        if self.backend != Backend::Postgres || !self.written.crossed(rows as u64) {
            return;
        }
        let started = std::time::Instant::now();
        match self
            .db
            .execute_unprepared("ANALYZE applications, stage_visits, events")
            .await
        {
            Ok(_) => tracing::info!(
                duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "planner statistics refreshed"
            ),
            Err(error) => tracing::warn!(%error, "could not refresh planner statistics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_double() {
        let counter = WriteCounter::default();
        assert!(!counter.crossed(9_999));
        assert!(counter.crossed(1));
        assert!(!counter.crossed(9_999));
        assert!(counter.crossed(1), "at 20 000");
        assert!(!counter.crossed(19_999));
        assert!(counter.crossed(1), "at 40 000");
    }
}
