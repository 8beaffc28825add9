//! Funnel totals in slots: each total may be kept in several rows (`slot`), summed when read.
//!
//! Pages a pass stores at once add to the same totals (a job's applications spread over many
//! pages), and an `INSERT … ON CONFLICT DO UPDATE` of a row another open transaction wrote waits
//! for that transaction to end: the pages queued behind each other there. Each write now adds
//! to the rows of one slot, and writes at the same time take different slots (see
//! `funnel_totals::TOTAL_SLOTS`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(Debug, DeriveMigrationName)]
pub(super) struct Migration;

const COLUMNS: &str = "integration_id, job_id, created_day, total_key, metric, stage_id, detail, n";

/// The totals' table under `name`: with the `slot` column in its key, or as the previous
/// migration made it.
fn totals_table(name: &str, slotted: bool) -> String {
    let (slot_column, slot_key) = if slotted {
        ("slot SMALLINT NOT NULL DEFAULT 0, ", ", slot")
    } else {
        ("", "")
    };
    format!(
        "CREATE TABLE {name} (\
           integration_id TEXT NOT NULL, \
           job_id TEXT NOT NULL, \
           created_day BIGINT NOT NULL, \
           total_key TEXT NOT NULL, \
           metric TEXT NOT NULL, \
           stage_id TEXT NOT NULL, \
           detail TEXT NOT NULL, \
           n BIGINT NOT NULL, \
           {slot_column}\
           PRIMARY KEY (integration_id, job_id, created_day, total_key{slot_key}))"
    )
}

// The trait declares `&SchemaManager` with an elided lifetime; naming it breaks the signature.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            // Adding a column with a constant default rewrites nothing; only the key is rebuilt.
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE funnel_totals ADD COLUMN slot SMALLINT NOT NULL DEFAULT 0; \
                     ALTER TABLE funnel_totals DROP CONSTRAINT funnel_totals_pkey; \
                     ALTER TABLE funnel_totals ADD CONSTRAINT funnel_totals_pkey \
                     PRIMARY KEY (integration_id, job_id, created_day, total_key, slot)",
                )
                .await?;
            }
            // SQLite cannot change a primary key in place.
            _ => {
                db.execute_unprepared(&format!(
                    "{}; \
                     INSERT INTO funnel_totals_slotted ({COLUMNS}) \
                     SELECT {COLUMNS} FROM funnel_totals; \
                     DROP TABLE funnel_totals; \
                     ALTER TABLE funnel_totals_slotted RENAME TO funnel_totals",
                    totals_table("funnel_totals_slotted", true)
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Each total's slots summed into one row again.
        db.execute_unprepared(&format!(
            "{}; \
             INSERT INTO funnel_totals_unslotted ({COLUMNS}) \
             SELECT integration_id, job_id, created_day, total_key, MIN(metric), MIN(stage_id), \
             MIN(detail), SUM(n) FROM funnel_totals \
             GROUP BY integration_id, job_id, created_day, total_key; \
             DROP TABLE funnel_totals; \
             ALTER TABLE funnel_totals_unslotted RENAME TO funnel_totals",
            totals_table("funnel_totals_unslotted", false)
        ))
        .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE funnel_totals \
                 RENAME CONSTRAINT funnel_totals_unslotted_pkey TO funnel_totals_pkey",
            )
            .await?;
        }
        Ok(())
    }
}
