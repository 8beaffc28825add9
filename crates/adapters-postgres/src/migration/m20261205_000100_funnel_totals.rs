//! Funnel totals, kept at write time (see `funnel_totals`): one row per job, creation day and
//! total, keyed by a digest of what it counts. Existing applications are counted in as the
//! table is created.

use sea_orm_migration::prelude::*;

use crate::funnel_totals;
use crate::store::Backend;

#[derive(Debug, DeriveMigrationName)]
pub(super) struct Migration;

// The trait declares `&SchemaManager` with an elided lifetime; naming it breaks the signature.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The same statement on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE funnel_totals (\
                   integration_id TEXT NOT NULL, \
                   job_id TEXT NOT NULL, \
                   created_day BIGINT NOT NULL, \
                   total_key TEXT NOT NULL, \
                   metric TEXT NOT NULL, \
                   stage_id TEXT NOT NULL, \
                   detail TEXT NOT NULL, \
                   n BIGINT NOT NULL, \
                   PRIMARY KEY (integration_id, job_id, created_day, total_key))",
            )
            .await?;
        let backend = Backend::of(manager.get_database_backend());
        funnel_totals::count_all(manager.get_connection(), backend)
            .await
            .map_err(|error| DbErr::Custom(error.to_string()))
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE funnel_totals")
            .await?;
        Ok(())
    }
}
