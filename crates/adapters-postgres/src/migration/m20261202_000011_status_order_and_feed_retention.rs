//! `integrations.status_updated_at`: Kombo's time of the last integration state applied from
//! a webhook, so that an older state arriving late is dropped. `feed_counter.pruned_through`:
//! the last sequence removed by the feed's optional age-based retention, so that a cursor
//! before it is answered `410 Gone` instead of silently skipping events.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, timestamp_with_time_zone_null};

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
                    .add_column(timestamp_with_time_zone_null("status_updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("feed_counter")
                    .add_column(big_integer("pruned_through").default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("feed_counter")
                    .drop_column("pruned_through")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("integrations")
                    .drop_column("status_updated_at")
                    .to_owned(),
            )
            .await
    }
}
