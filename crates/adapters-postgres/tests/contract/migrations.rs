use adapters_postgres::{Backend, Store, StoreError};
use sea_orm::{ConnectionTrait, Statement};

use crate::contract;
use crate::support::{TestDb, admin_url, unreachable_message};

contract!(migrations_run_from_empty_and_rerun_as_no_ops);

async fn migrations_run_from_empty_and_rerun_as_no_ops(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.unmigrated_store().await;
    assert_eq!(store.backend(), backend);
    let pending = store.pending_migrations().await.unwrap();
    assert!(
        !pending.is_empty(),
        "an empty database has every migration pending"
    );

    let applied = store.migrate().await.unwrap();
    assert_eq!(applied, pending);
    assert!(store.pending_migrations().await.unwrap().is_empty());
    assert_eq!(store.feed_head().await.unwrap(), 0);

    // Re-running (as a second replica starting would) changes nothing.
    assert!(store.migrate().await.unwrap().is_empty());
    let again = db.store().await;
    assert_eq!(again.feed_head().await.unwrap(), 0);
    store.ping().await.unwrap();

    if backend == Backend::Sqlite {
        let mode = store
            .connection()
            .query_one_raw(Statement::from_string(
                store.connection().get_database_backend(),
                "PRAGMA journal_mode",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<String>(0)
            .unwrap();
        assert_eq!(
            mode, "wal",
            "SQLite runs in WAL mode so readers never block the writer"
        );
    }
}

/// Fails the suite, with the fix in the message, when the PostgreSQL server is down.
#[tokio::test]
async fn postgres_is_reachable() {
    let url = admin_url();
    let server = sea_orm::Database::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{}", unreachable_message(&url, &e)));
    let answer = server
        .query_one_raw(Statement::from_string(
            server.get_database_backend(),
            "SELECT 1 AS one",
        ))
        .await
        .unwrap_or_else(|e| panic!("{}", unreachable_message(&url, &e)));
    assert!(answer.is_some());
}

#[tokio::test]
async fn an_unreachable_server_is_reported_as_unavailable() {
    // Port 9 (discard) has nothing listening for PostgreSQL.
    let error = Store::connect("postgres://postgres@127.0.0.1:9/none")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn an_unknown_url_scheme_is_refused() {
    let error = Store::connect("mysql://localhost/db").await.unwrap_err();
    assert!(error.to_string().contains("postgres://"), "{error}");
}
