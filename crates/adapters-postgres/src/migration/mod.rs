//! The schema, as one ordered list of sea-orm-migration migrations that run unchanged on
//! PostgreSQL and SQLite.

use sea_orm_migration::prelude::*;

mod m20261129_000001_initial_schema;
mod m20261202_000010_lease_epoch;
mod m20261202_000011_status_order_and_feed_retention;
mod m20261202_600000_endpoint_previous_secret;
mod m20261203_000100_console_sessions;
mod m20261204_000100_job_index_led_by_job;
mod m20261204_000200_pending_deliveries_index;
mod m20261205_000100_funnel_totals;
mod m20261205_000200_funnel_total_slots;
mod m20261205_000300_sync_requested_at;

/// Every migration, oldest first.
#[derive(Debug)]
pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_initial_schema::Migration),
            Box::new(m20261202_000010_lease_epoch::Migration),
            Box::new(m20261202_000011_status_order_and_feed_retention::Migration),
            Box::new(m20261202_600000_endpoint_previous_secret::Migration),
            Box::new(m20261203_000100_console_sessions::Migration),
            Box::new(m20261204_000100_job_index_led_by_job::Migration),
            Box::new(m20261204_000200_pending_deliveries_index::Migration),
            Box::new(m20261205_000100_funnel_totals::Migration),
            Box::new(m20261205_000200_funnel_total_slots::Migration),
            Box::new(m20261205_000300_sync_requested_at::Migration),
        ]
    }
}
