//! The baseline of the ingest figure: `COPY … FROM STDIN` of rows shaped like stagewatch's
//! applications into a copy of its `applications` table (same columns, keys and indexes).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use adapters_postgres::Store;
use anyhow::Context;
use sea_orm::ConnectionTrait;

/// Rows sent per `COPY` chunk: large enough to stream, small enough to stay out of the figures.
const ROWS_PER_CHUNK: usize = 10_000;

const COLUMNS: &str = "integration_id, application_id, remote_id, job_id, job_name, \
    candidate_id, candidate_name, current_stage_id, current_stage_name, current_stage_index, \
    outcome, changed_at, remote_created_at, origin, first_seen_at, last_seen_at, \
    entered_current_stage_at";

/// Copies `rows` rows into `raw_applications` in one `COPY`, and returns how long it took.
pub(crate) async fn copy_rows(store: &Store, rows: usize) -> anyhow::Result<Duration> {
    let connection = store.connection();
    connection
        .execute_unprepared(
            "DROP TABLE IF EXISTS raw_applications; \
             CREATE TABLE raw_applications (LIKE applications INCLUDING ALL)",
        )
        .await
        .context("could not create the baseline table")?;
    let pool = connection.get_postgres_connection_pool();
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!("COPY raw_applications ({COLUMNS}) FROM STDIN"))
        .await
        .context("could not start the COPY")?;
    let now = chrono::Utc::now().to_rfc3339();
    let mut chunk = String::new();
    for row in 0..rows {
        write_row(&mut chunk, row, &now);
        if (row + 1) % ROWS_PER_CHUNK == 0 {
            copy.send(chunk.as_bytes()).await?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        copy.send(chunk.as_bytes()).await?;
    }
    copy.finish().await.context("the COPY failed")?;
    Ok(started.elapsed())
}

/// One row in `COPY`'s text format, with values as long as the sandbox's.
fn write_row(out: &mut String, row: usize, now: &str) {
    let job = row / 100;
    let stage = row % 7;
    let _ = writeln!(
        out,
        "bench-large-greenhouse\tAPP{row:020}\tremote-{row}\tJOB{job:020}\tSenior Engineer {job}\t\
         CAND{row:019}\tCandidate Number {row}\tSTAGE{stage:018}\tStage {stage}\t{stage}\t\
         PENDING\t{now}\t{now}\tpolled\t{now}\t{now}\t{now}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_has_one_value_per_column() {
        let mut out = String::new();
        write_row(&mut out, 12, "2026-01-01T00:00:00Z");
        let values = out.trim_end().split('\t').count();
        assert_eq!(values, COLUMNS.split(',').count());
        assert!(out.ends_with('\n'));
    }
}
