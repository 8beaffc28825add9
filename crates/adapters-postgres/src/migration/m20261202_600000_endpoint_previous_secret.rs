//! Secret rotation with an overlap: an endpoint keeps its previous signing secret, and when it
//! stops being used, so that deliveries can be signed with both while consumers switch over.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{text_null, timestamp_with_time_zone_null as at_null};

#[derive(Debug, DeriveMigrationName)]
pub(super) struct Migration;

// The trait declares `&SchemaManager` with an elided lifetime; naming it breaks the signature.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table("webhook_endpoints")
                    .add_column(text_null("previous_secret"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("webhook_endpoints")
                    .add_column(at_null("previous_secret_expires_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["previous_secret_expires_at", "previous_secret"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("webhook_endpoints")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
