//! Fencing tokens: `integrations.lease_epoch`, increased by every claim of the integration's
//! lease and checked by every write of a pass, so that a pass that lost its lease cannot write.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::big_integer;

#[derive(Debug, DeriveMigrationName)]
pub(super) struct Migration;

// The trait declares `&SchemaManager` with an elided lifetime; naming it breaks the signature.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("integrations")
                    .add_column(big_integer("lease_epoch").default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("integrations")
                    .drop_column("lease_epoch")
                    .to_owned(),
            )
            .await
    }
}
