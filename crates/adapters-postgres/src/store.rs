//! Connecting, migrating, and the handle every other module hangs its methods on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::ports::StoreError;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait, Value,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::{OnceCell, watch};

use crate::error::OrStoreError;
use crate::feed::{ListenerTask, advance};
use crate::funnel_totals::TOTAL_SLOTS;
use crate::migration::Migrator;
use crate::statistics::WriteCounter;

/// How long an SQLite writer waits for the write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the database. `Debug` hides the URL's password.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// `postgres://user@host/db` or `sqlite://path/to/file.db?mode=rwc`.
    pub url: String,
    pub max_connections: u32,
    /// Apply pending migrations while connecting.
    pub migrate: bool,
}

impl StoreOptions {
    /// Defaults for a URL: ten connections, migrations on.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            migrate: true,
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("url", &redacted_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("migrate", &self.migrate)
            .finish()
    }
}

/// The URL with any password replaced, for logs and `Debug`.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

/// The database product behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// sea-orm's name of this database product.
    pub(crate) fn database_backend(self) -> DatabaseBackend {
        match self {
            Backend::Postgres => DatabaseBackend::Postgres,
            Backend::Sqlite => DatabaseBackend::Sqlite,
        }
    }

    /// The product behind a sea-orm connection (the migrations' only way to know it).
    pub(crate) fn of(backend: DatabaseBackend) -> Self {
        match backend {
            DatabaseBackend::Sqlite => Backend::Sqlite,
            _ => Backend::Postgres,
        }
    }
}

/// The store: a cheap, cloneable handle on a connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) backend: Backend,
    /// The feed head after this process's last append, so that waiters in the same process wake
    /// at once instead of at their next poll.
    pub(crate) appended: Arc<watch::Sender<i64>>,
    /// PostgreSQL's LISTEN connection for waiters, started by the first wait.
    pub(crate) listener: Arc<OnceCell<ListenerTask>>,
    /// Application rows written by this process, to refresh planner statistics as they grow.
    pub(crate) written: Arc<WriteCounter>,
    /// Writes to the funnel totals so far, which picks each one's slot.
    pub(crate) totals_writes: Arc<AtomicU64>,
}

impl Store {
    /// Connects with default options and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::connect_with(StoreOptions::new(url)).await
    }

    /// Connects as `options` say.
    pub async fn connect_with(options: StoreOptions) -> Result<Store, StoreError> {
        let backend =
            if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://") {
                Backend::Postgres
            } else if options.url.starts_with("sqlite:") {
                Backend::Sqlite
            } else {
                return Err(StoreError::Unavailable(
                    "the database URL must start with postgres:// or sqlite://".to_owned(),
                ));
            };
        let mut connect = ConnectOptions::new(options.url.clone());
        connect
            .max_connections(options.max_connections.max(1))
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
        let db = Database::connect(connect).await.or_store_error()?;
        let store = Store {
            db,
            backend,
            appended: Arc::new(watch::Sender::new(0)),
            listener: Arc::new(OnceCell::new()),
            written: Arc::new(WriteCounter::default()),
            totals_writes: Arc::new(AtomicU64::new(0)),
        };
        if options.migrate {
            store.migrate().await?;
        }
        tracing::info!(backend = ?backend, "store connected");
        Ok(store)
    }

    /// Applies pending migrations and returns their names.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let pending = self.pending_migrations().await?;
        Migrator::up(&self.db, None).await.or_store_error()?;
        if !pending.is_empty() {
            tracing::info!(applied = ?pending, "migrations applied");
        }
        Ok(pending)
    }

    /// The names of migrations not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let pending = Migrator::get_pending_migrations(&self.db)
            .await
            .or_store_error()?;
        Ok(pending.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.or_store_error()
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The sea-orm connection, for callers that need a query this crate does not offer.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later can fail
    /// with "database is locked" instead of waiting its turn.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        self.db
            .begin_with_options(TransactionOptions {
                isolation_level: None,
                access_mode: None,
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            })
            .await
            .or_store_error()
    }

    /// A raw statement for this backend. Placeholders are written `$1`, `$2`, …, which both
    /// PostgreSQL and SQLite understand.
    pub(crate) fn statement(&self, sql: impl Into<String>, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.db_backend(), sql, values)
    }

    /// `"a", "b", …`: every column of `E`, for a `RETURNING` clause. Never `RETURNING *`: on
    /// SQLite a connection that compiled it before another connection migrated the schema
    /// re-compiles it at its first step with more columns than sqlx described, and sqlx
    /// indexes past its column list (a panic in the driver).
    pub(crate) fn returning<E: sea_orm::EntityTrait>() -> String {
        use sea_orm::{IdenStatic, Iterable};
        E::Column::iter()
            .map(|column| format!("\"{}\"", column.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn db_backend(&self) -> DatabaseBackend {
        self.backend.database_backend()
    }

    /// The slot of the funnel totals the next write adds to: each in turn on PostgreSQL, so that
    /// the pages a pass stores at once add to different rows; SQLite writes one at a time.
    pub(crate) fn next_totals_slot(&self) -> i16 {
        match self.backend {
            Backend::Postgres => {
                let turn = self.totals_writes.fetch_add(1, Ordering::Relaxed);
                i16::try_from(turn % TOTAL_SLOTS).expect("a slot is below TOTAL_SLOTS")
            }
            Backend::Sqlite => 0,
        }
    }

    /// Tells this process's waiters that the feed grew.
    pub(crate) fn announce(&self, head: Option<i64>) {
        if let Some(head) = head {
            advance(&self.appended, head);
        }
    }
}

/// `FROM … CROSS JOIN LATERAL (SELECT {columns} FROM applications …) AS a`: each id of `$2` (a
/// JSON array, see [`json_ids`]) looked up in integration `$1`, one primary-key probe per id.
/// The primary key is the only index of `applications` that begins with `integration_id`, so
/// that the probe stays on it whatever the statistics say of the integration (see the
/// migration `m20261204_000100_job_index_led_by_job`).
pub(crate) fn application_probe(columns: &str) -> String {
    format!(
        "FROM jsonb_array_elements_text($2::jsonb) AS wanted(id) \
         CROSS JOIN LATERAL (SELECT {columns} FROM applications \
         WHERE integration_id = $1 AND application_id = wanted.id LIMIT 1) AS a"
    )
}

/// Ids bound as one JSON array: one parameter whatever their number, so that a statement's text
/// is the same for every page, and PostgreSQL probes an index once per id
/// (`jsonb_array_elements_text($n::jsonb) … CROSS JOIN LATERAL (… LIMIT 1)`) whatever its
/// statistics say. Without statistics (a first pass into fresh tables, autovacuum off) an
/// `IN (…)` list is planned as a scan of every row of the integration.
pub(crate) fn json_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Value {
    serde_json::Value::from(ids.into_iter().collect::<Vec<_>>()).into()
}

/// `$first, $first+1, …`: `count` numbered parameters, for a row of a multi-row `VALUES`.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Executes a statement and returns the number of rows it touched.
pub(crate) async fn execute<C: ConnectionTrait>(
    conn: &C,
    statement: Statement,
) -> Result<u64, DbErr> {
    Ok(conn.execute_raw(statement).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let options = StoreOptions::new("postgres://app:s3cret@db.internal:5432/stagewatch");
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db.internal:5432/stagewatch"),
            "{shown}"
        );
        assert_eq!(
            redacted_url("sqlite://data/sw.db?mode=rwc"),
            "sqlite://data/sw.db?mode=rwc"
        );
        assert_eq!(redacted_url("postgres://app@db/sw"), "postgres://app@db/sw");
    }
}
