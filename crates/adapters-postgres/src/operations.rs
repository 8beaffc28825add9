//! Small reads for operators and the API: feed positions by time, and the outbox's lag.

use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::{event, webhook_delivery};
use crate::error::OrStoreError;
use crate::store::Store;

impl Store {
    /// The first and last feed sequences of events detected in `from..=to`; `None` when there
    /// are none. Turns a time range into the sequence range `replay_range` takes.
    pub async fn sequences_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let in_range = || {
            event::Entity::find()
                .filter(event::Column::DetectedAt.gte(from))
                .filter(event::Column::DetectedAt.lte(to))
        };
        let first = in_range()
            .order_by_asc(event::Column::Sequence)
            .one(&self.db)
            .await
            .or_store_error()?;
        let last = in_range()
            .order_by_desc(event::Column::Sequence)
            .one(&self.db)
            .await
            .or_store_error()?;
        Ok(first.zip(last).map(|(f, l)| (f.sequence, l.sequence)))
    }

    /// How long the oldest due, undelivered webhook delivery has been waiting; zero when none
    /// is due.
    pub async fn outbox_lag(&self, now: DateTime<Utc>) -> Result<std::time::Duration, StoreError> {
        let oldest = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq("pending"))
            .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .one(&self.db)
            .await
            .or_store_error()?;
        Ok(oldest
            .and_then(|d| d.next_attempt_at)
            .and_then(|due| (now - due).to_std().ok())
            .unwrap_or_default())
    }
}
