//! Shared harness of the app-server tests: databases on both backends, a sandbox, the wiring.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use adapters_kombo::{KomboClient, KomboConfig};
use adapters_postgres::{Store, StoreOptions};
use sea_orm::{ConnectionTrait, Database};

/// The PostgreSQL server the tests use; `STAGEWATCH_TEST_POSTGRES` overrides it.
pub fn postgres_admin_url() -> String {
    std::env::var("STAGEWATCH_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database for one test: a fresh PostgreSQL database (dropped on `drop_database`) or an
/// SQLite file in a temporary folder.
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("stagewatch.db").display()
        );
        Self {
            url,
            postgres_name: None,
            _dir: Some(dir),
        }
    }

    /// Creates a database with a random name on the test server. Fails loudly when PostgreSQL
    /// is not reachable: these tests never skip.
    pub async fn postgres() -> Self {
        let admin_url = postgres_admin_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {admin_url} ({error}). Start it (on Debian: \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) or \
                 point STAGEWATCH_TEST_POSTGRES at a server where user postgres may create databases."
            )
        });
        let name = format!("stagewatch_app_{:016x}", rand::random::<u64>());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let base = admin_url.rsplit_once('/').expect("database in the URL").0;
        Self {
            url: format!("{base}/{name}"),
            postgres_name: Some(name),
            _dir: None,
        }
    }

    pub async fn store(&self) -> Store {
        Store::connect_with(StoreOptions {
            url: self.url.clone(),
            max_connections: 8,
            migrate: true,
        })
        .await
        .expect("open the store")
    }

    /// Drops a PostgreSQL database (connections must be closed first, hence `WITH (FORCE)`).
    pub async fn drop_database(self) {
        if let Some(name) = &self.postgres_name {
            let admin = Database::connect(&postgres_admin_url())
                .await
                .expect("admin");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop the test database");
        }
    }
}

/// A Kombo client for a running sandbox.
pub fn kombo_client(base_url: &str, api_key: &str) -> Arc<KomboClient> {
    let mut config = KomboConfig::new(
        url::Url::parse(base_url).expect("sandbox URL"),
        secrecy::SecretString::from(api_key.to_owned()),
    );
    config.timeout = Duration::from_secs(10);
    config.requests_per_second = 10_000;
    config.max_concurrency = 16;
    Arc::new(KomboClient::new(config).expect("client"))
}
