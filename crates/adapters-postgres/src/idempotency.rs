//! Idempotency keys for the API's unsafe requests: the first request with a key runs, a
//! concurrent repeat is told it is in flight, a later repeat gets the stored response, and the
//! same key with a different request is refused. A request whose effect in the ATS is unknown
//! (Kombo's answer was lost, or the process died while it ran) keeps its key as "outcome
//! unknown": repeating it could do the same thing twice.

use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};

use crate::entity::idempotency_key;
use crate::error::OrStoreError;
use crate::store::Store;

const IN_FLIGHT: &str = "in_flight";
const COMPLETED: &str = "completed";
const OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// A request still in flight after this long was cut off (its process died): longer than any
/// request may run, the API's request timeout included.
pub(crate) const IN_FLIGHT_ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// What `begin_idempotent` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new: run the request, then complete or abandon it.
    Started,
    /// Another request with this key is running.
    InFlight,
    /// The request ran before; answer with what it answered.
    Completed { status: u16, body: String },
    /// The key was used for a different request.
    Mismatch,
    /// The request ran, but whether it took effect is unknown; `detail` says why.
    OutcomeUnknown { detail: String },
}

impl Store {
    /// Claims `key` within `scope` (e.g. the API route) for a request whose content hashes to
    /// `request_hash`.
    pub async fn begin_idempotent(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        let row = idempotency_key::Model {
            scope: scope.to_owned(),
            key: key.to_owned(),
            request_hash: request_hash.to_owned(),
            state: IN_FLIGHT.to_owned(),
            response_status: None,
            response_body: None,
            created_at: now,
            completed_at: None,
        };
        let inserted = idempotency_key::Entity::insert(row.into_active_model())
            .on_conflict(
                OnConflict::columns([idempotency_key::Column::Scope, idempotency_key::Column::Key])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .or_store_error()?;
        if inserted == 1 {
            return Ok(IdempotencyClaim::Started);
        }
        let Some(stored) = idempotency_key::Entity::find_by_id((scope.to_owned(), key.to_owned()))
            .one(&self.db)
            .await
            .or_store_error()?
        else {
            // Abandoned between the insert and the read: the caller may try again.
            return Ok(IdempotencyClaim::InFlight);
        };
        if stored.request_hash != request_hash {
            return Ok(IdempotencyClaim::Mismatch);
        }
        match (
            stored.state.as_str(),
            stored.response_status,
            stored.response_body,
        ) {
            (COMPLETED, Some(status), Some(body)) => Ok(IdempotencyClaim::Completed {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt(format!("stored response status {status}")))?,
                body,
            }),
            (OUTCOME_UNKNOWN, _, detail) => Ok(IdempotencyClaim::OutcomeUnknown {
                detail: detail.unwrap_or_default(),
            }),
            (IN_FLIGHT, _, _) if stored.created_at < now - IN_FLIGHT_ABANDONED_AFTER => {
                let detail = format!(
                    "the request that used this key at {} never finished (its process stopped)",
                    stored.created_at.to_rfc3339()
                );
                self.mark_outcome_unknown(scope, key, &detail).await?;
                Ok(IdempotencyClaim::OutcomeUnknown { detail })
            }
            _ => Ok(IdempotencyClaim::InFlight),
        }
    }

    /// Keeps a started request's key as "outcome unknown": its effect may have happened, so a
    /// repeat must not run it again.
    pub async fn mark_outcome_unknown(
        &self,
        scope: &str,
        key: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        idempotency_key::Entity::update_many()
            .set(idempotency_key::ActiveModel {
                state: Set(OUTCOME_UNKNOWN.to_owned()),
                response_body: Set(Some(detail.to_owned())),
                ..Default::default()
            })
            .filter(idempotency_key::Column::Scope.eq(scope))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(idempotency_key::Column::State.eq(IN_FLIGHT))
            .exec(&self.db)
            .await
            .or_store_error()?;
        Ok(())
    }

    /// Stores the response of a started request, for its repeats.
    pub async fn complete_idempotent(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        idempotency_key::Entity::update_many()
            .set(idempotency_key::ActiveModel {
                state: Set(COMPLETED.to_owned()),
                response_status: Set(Some(i32::from(status))),
                response_body: Set(Some(body.to_owned())),
                completed_at: Set(Some(now)),
                ..Default::default()
            })
            .filter(idempotency_key::Column::Scope.eq(scope))
            .filter(idempotency_key::Column::Key.eq(key))
            .exec(&self.db)
            .await
            .or_store_error()?;
        Ok(())
    }

    /// Forgets a started request that failed in a way that proves it had no effect, so that the
    /// key can be used again.
    pub async fn abandon_idempotent(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::Scope.eq(scope))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(idempotency_key::Column::State.eq(IN_FLIGHT))
            .exec(&self.db)
            .await
            .or_store_error()?;
        Ok(())
    }

    /// Deletes keys created before `cutoff`; returns how many.
    pub async fn purge_idempotency_keys(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreatedAt.lt(cutoff))
            .exec(&self.db)
            .await
            .or_store_error()?
            .rows_affected)
    }
}
