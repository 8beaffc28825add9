//! The applications' job index, led by `job_id` rather than `integration_id`.
//!
//! Per-id lookups (`integration_id = $1 AND application_id = …`) belong to the primary key. With
//! a second index that also began with `integration_id`, PostgreSQL chose between the two from
//! the integration's statistics, and where those did not know the integration yet (its rows
//! written since the last `ANALYZE`: a first pass, autovacuum off or behind) it estimated one
//! row for the prefix and walked the job index instead, filtering every row of the integration
//! once per id. Led by `job_id`, the job index serves the same reads (a job's applications are
//! always asked for with their integration) and no longer competes for the per-id lookups.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(super) struct Migration;

const TABLE: &str = "applications";

fn job_index(name: &'static str, columns: [&'static str; 3]) -> IndexCreateStatement {
    let mut index = Index::create().name(name).table(TABLE).to_owned();
    for column in columns {
        index.col(column);
    }
    index
}

// The trait declares `&SchemaManager` with an elided lifetime; naming it breaks the signature.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_applications_job")
                    .table(TABLE)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(job_index(
                "idx_applications_by_job",
                ["job_id", "integration_id", "current_stage_id"],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_applications_by_job")
                    .table(TABLE)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(job_index(
                "idx_applications_job",
                ["integration_id", "job_id", "current_stage_id"],
            ))
            .await
    }
}
