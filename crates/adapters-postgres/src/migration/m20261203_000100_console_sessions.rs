//! Console sessions: an API key exchanged for a cookie. Kept in the database, not in a
//! process, so that every replica behind a load balancer knows them and signing out ends a
//! session everywhere. Also an index for one application's events, which the console lists.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{text, timestamp_with_time_zone as at};

#[derive(Debug, DeriveMigrationName)]
pub(super) struct Migration;

// The trait declares `&SchemaManager` with an elided lifetime; naming it breaks the signature.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("console_sessions")
                    // SHA-256 of the cookie's token: a leaked table opens no session.
                    .col(text("token_hash").primary_key())
                    // Which API key signed in: removing the key from the configuration ends
                    // its sessions.
                    .col(text("key_hash"))
                    .col(text("csrf_token"))
                    .col(at("created_at"))
                    .col(at("expires_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_console_sessions_expiry")
                    .table("console_sessions")
                    .col("expires_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_application")
                    .table("events")
                    .col("integration_id")
                    .col("application_id")
                    .col("sequence")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_application")
                    .table("events")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("console_sessions").to_owned())
            .await
    }
}
