//! The fair limit of figure 1: a `COPY` of exactly the rows a first pass wrote — applications,
//! stage visits, events, outbox rows and the funnel's totals — into tables with the same
//! columns and indexes. The
//! rows are taken from the tables right after the pass (into files, so a million applications
//! need no memory), then copied back into `LIKE … INCLUDING ALL` twins, once after each of the
//! benchmark's first passes.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use adapters_postgres::Store;
use anyhow::Context;
use futures::StreamExt;
use sea_orm::ConnectionTrait;

/// Every table a first pass writes rows to (the integration's own row and its jobs apart). The
/// funnel's totals are upserted by every page; their rows are copied as the pass left them.
const TABLES: [&str; 5] = [
    "applications",
    "stage_visits",
    "events",
    "webhook_deliveries",
    "funnel_totals",
];
/// Bytes sent per `COPY` message.
const CHUNK: usize = 1 << 20;

/// The rows of each table, as `COPY`'s text format, in files under `dir`.
#[derive(Debug)]
pub(crate) struct PassRows {
    files: Vec<(&'static str, PathBuf, u64)>,
}

impl PassRows {
    /// Rows per table, for the report.
    pub(crate) fn counts(&self) -> String {
        self.files
            .iter()
            .map(|(table, _, rows)| format!("{rows} {table}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Saves every row of the pass's tables (the database holds nothing else yet).
pub(crate) async fn capture(store: &Store, dir: &Path) -> anyhow::Result<PassRows> {
    std::fs::create_dir_all(dir)?;
    let pool = store.connection().get_postgres_connection_pool();
    let mut conn = pool.acquire().await?;
    let mut files = Vec::new();
    for table in TABLES {
        let path = dir.join(format!("{table}.copy"));
        let mut out = BufWriter::new(std::fs::File::create(&path)?);
        let mut rows = 0_u64;
        let mut stream = conn
            .copy_out_raw(&format!("COPY {table} TO STDOUT"))
            .await
            .with_context(|| format!("could not read {table}"))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            #[allow(clippy::naive_bytecount)] // once per row, outside the timed copies
            let lines = chunk.iter().filter(|b| **b == b'\n').count();
            rows += lines as u64;
            out.write_all(&chunk)?;
        }
        out.flush()?;
        files.push((table, path, rows));
    }
    Ok(PassRows { files })
}

/// Copies the saved rows into fresh twins of their tables, and returns how long the copies
/// took (creating and dropping the twins apart).
pub(crate) async fn copy(store: &Store, rows: &PassRows) -> anyhow::Result<Duration> {
    let connection = store.connection();
    for (table, _, _) in &rows.files {
        connection
            .execute_unprepared(&format!(
                "DROP TABLE IF EXISTS fair_{table}; \
                 CREATE TABLE fair_{table} (LIKE {table} INCLUDING ALL)"
            ))
            .await
            .with_context(|| format!("could not create the twin of {table}"))?;
    }
    let pool = connection.get_postgres_connection_pool();
    let mut conn = pool.acquire().await?;
    let mut buffer = vec![0_u8; CHUNK];
    let started = Instant::now();
    for (table, path, _) in &rows.files {
        let mut file = std::fs::File::open(path)?;
        let mut copy = conn
            .copy_in_raw(&format!("COPY fair_{table} FROM STDIN"))
            .await
            .with_context(|| format!("could not start the COPY into fair_{table}"))?;
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            copy.send(&buffer[..read]).await?;
        }
        copy.finish()
            .await
            .with_context(|| format!("the COPY into fair_{table} failed"))?;
    }
    let elapsed = started.elapsed();
    drop(conn);
    for (table, _, _) in &rows.files {
        connection
            .execute_unprepared(&format!("DROP TABLE fair_{table}"))
            .await?;
    }
    Ok(elapsed)
}
