//! A PostgreSQL database of its own for each benchmark, dropped afterwards.

use adapters_postgres::{Store, StoreOptions};
use anyhow::Context;
use sea_orm::{ConnectionTrait, Database};

/// A database with a random name on the benchmark server.
#[derive(Debug)]
pub(crate) struct BenchDatabase {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl BenchDatabase {
    /// Creates the database on the server that `admin_url` points at.
    pub(crate) async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let admin = Database::connect(admin_url).await.with_context(|| {
            format!(
                "PostgreSQL is not reachable at {admin_url}. Start it (on Debian: \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) or \
                 pass --postgres with a server where the user may create databases"
            )
        })?;
        let name = format!("stagewatch_bench_{:016x}", rand::random::<u64>());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .context("could not create the benchmark database")?;
        // The same server and options (`?sslmode=…`), another database.
        let mut url = url::Url::parse(admin_url).context("the PostgreSQL URL is not a URL")?;
        url.set_path(&name);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: url.into(),
            name,
        })
    }

    /// Creates a database, runs `measure` on it, and drops it whether `measure` succeeded or
    /// not.
    pub(crate) async fn around<T>(
        admin_url: &str,
        measure: impl AsyncFnOnce(&BenchDatabase) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let database = Self::create(admin_url).await?;
        let result = measure(&database).await;
        database.drop_database().await?;
        result
    }

    /// Opens the store on this database and applies the migrations.
    pub(crate) async fn store(&self, max_connections: u32) -> anyhow::Result<Store> {
        Store::connect_with(StoreOptions {
            url: self.url.clone(),
            max_connections,
            migrate: true,
        })
        .await
        .context("could not open the store")
    }

    /// Drops the database, closing whatever still holds a connection to it.
    pub(crate) async fn drop_database(self) -> anyhow::Result<()> {
        let admin = Database::connect(&self.admin_url).await?;
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .context("could not drop the benchmark database")?;
        Ok(())
    }
}
