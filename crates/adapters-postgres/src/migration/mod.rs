//! The schema, as one ordered list of sea-orm-migration migrations that run unchanged on
//! PostgreSQL and SQLite.

use sea_orm_migration::prelude::*;

mod m20261129_000001_initial_schema;

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261129_000001_initial_schema::Migration)]
    }
}
