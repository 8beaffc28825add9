//! Scratch databases for tests, shared by every crate's tests (feature `scratch`): a fresh
//! PostgreSQL database with a random name, dropped afterwards even when the test fails, or an
//! SQLite file in a temporary folder. The PostgreSQL server is `127.0.0.1:5432` with trust
//! authentication for `postgres`, or the one [`POSTGRES_URL_VARIABLE`] names. When it does not
//! answer, the test fails and says how to start one: tests that need PostgreSQL never skip.

use sea_orm::{ConnectionTrait, Database, Statement};

use crate::store::{Backend, Store, StoreOptions};

/// The environment variable naming the server scratch databases are created on (a URL whose
/// user may create databases).
pub const POSTGRES_URL_VARIABLE: &str = "STAGEWATCH_TEST_POSTGRES_URL";

/// The server scratch databases are created on.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VARIABLE)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// What to do when PostgreSQL does not answer.
pub fn unreachable_message(url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "PostgreSQL is not reachable at {url}: {error}\n\
         These tests run against a real PostgreSQL server. Start one:\n  \
         pg_ctlcluster --skip-systemctl-redirect \"$(ls /etc/postgresql)\" main start   (Debian)\n  \
         docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16\n\
         or point {POSTGRES_URL_VARIABLE} at a server where the user may create databases."
    )
}

/// A database that lives as long as the test.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// Where it is, for a store or a `stagewatch` process.
    pub url: String,
    backend: Backend,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl ScratchDatabase {
    /// A scratch database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Self::sqlite(),
        }
    }

    /// An SQLite file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("stagewatch.db").display()
        );
        Self {
            url,
            backend: Backend::Sqlite,
            postgres_name: None,
            _dir: Some(dir),
        }
    }

    /// A fresh database with a random name on the test server.
    pub async fn postgres() -> Self {
        let admin = postgres_admin_url();
        let server = Database::connect(&admin)
            .await
            .unwrap_or_else(|error| panic!("{}", unreachable_message(&admin, &error)));
        let name = format!("stagewatch_test_{}", uuid::Uuid::new_v4().simple());
        server
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the scratch database");
        server.close().await.ok();
        let base = admin.rsplit_once('/').expect("a URL with a database").0;
        Self {
            url: format!("{base}/{name}"),
            backend: Backend::Postgres,
            postgres_name: Some(name),
            _dir: None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A migrated store on this database; each call opens its own pool, as a replica would.
    pub async fn store(&self) -> Store {
        Store::connect(&self.url).await.expect("connect the store")
    }

    /// A store that has not run the migrations.
    pub async fn unmigrated_store(&self) -> Store {
        Store::connect_with(StoreOptions {
            url: self.url.clone(),
            max_connections: 5,
            migrate: false,
        })
        .await
        .expect("connect the store")
    }

    /// Drops the database now (it is dropped when this goes out of scope anyway).
    pub async fn drop_database(mut self) {
        if let Some(name) = self.postgres_name.take() {
            drop_postgres(name).await;
        }
    }
}

async fn drop_postgres(name: String) {
    if let Ok(server) = Database::connect(&postgres_admin_url()).await {
        // `WITH (FORCE)`: a store a test forgot to close must not keep the database.
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = server
            .execute_raw(Statement::from_string(server.get_database_backend(), sql))
            .await;
        let _ = server.close().await;
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs outside async; a helper thread owns a small runtime for the clean-up.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(drop_postgres(name));
        })
        .join();
    }
}
