//! Translation of database errors into the domain's `StoreError`.

use domain::ports::StoreError;
use sea_orm::DbErr;

/// The domain's view of a database error: values that cannot be read back are corrupt data,
/// everything else is the database failing us and worth retrying.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(db_error)`
pub(crate) fn db_error(error: DbErr) -> StoreError {
    match error {
        DbErr::Type(_) | DbErr::Json(_) | DbErr::TryIntoErr { .. } => {
            StoreError::Corrupt(error.to_string())
        }
        _ => StoreError::Unavailable(error.to_string()),
    }
}

/// A stored JSON value that no longer parses.
pub(crate) fn corrupt(what: &str, error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

/// Shorthand for `map_err(db_error)`.
pub(crate) trait OrStoreError<T> {
    fn or_store_error(self) -> Result<T, StoreError>;
}

impl<T> OrStoreError<T> for Result<T, DbErr> {
    fn or_store_error(self) -> Result<T, StoreError> {
        self.map_err(db_error)
    }
}
