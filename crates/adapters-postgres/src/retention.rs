//! Retention: the feed's optional age-based pruning. Each purge is one statement (or one
//! transaction), safe to run from several replicas at once. The other purges live with what
//! they purge: delivery attempts in `outbox`, Kombo webhook ids in `reads`, idempotency keys
//! in `idempotency`.

use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::entity::feed_counter;
use crate::error::OrStoreError;
use crate::outbox::DeliveryStatus;
use crate::store::{Backend, Store, execute};

impl Store {
    /// The last sequence removed by the feed's retention; 0 when nothing was.
    pub async fn pruned_through(&self) -> Result<i64, StoreError> {
        feed_counter::Entity::find_by_id(1)
            .one(&self.db)
            .await
            .or_store_error()?
            .map(|row| row.pruned_through)
            .ok_or_else(|| StoreError::Corrupt("feed_counter has no row".to_owned()))
    }

    /// Removes the feed's events detected before `cutoff`, as a prefix of the sequence: up to
    /// the newest such event, but never an event that a delivery still waits to send. Their
    /// finished deliveries (and attempts) go with them. Records the last sequence removed, so
    /// that a reader behind it is told (`StoreError::FeedPruned`) instead of skipping events.
    /// Returns how many events were removed.
    pub async fn prune_feed(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let tx = self.begin_write().await?;
        // The counter's lock orders this with appends; the mark only moves forward.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let counter = tx
            .query_one_raw(self.statement(
                format!("SELECT pruned_through FROM feed_counter WHERE id = 1{lock}"),
                Vec::new(),
            ))
            .await
            .or_store_error()?
            .ok_or_else(|| StoreError::Corrupt("feed_counter has no row".to_owned()))?;
        let pruned_through: i64 = counter.try_get("", "pruned_through").or_store_error()?;
        let boundary = tx
            .query_one_raw(self.statement(
                "SELECT MAX(sequence) AS boundary FROM events \
                 WHERE detected_at < $1 \
                   AND sequence < COALESCE((SELECT MIN(event_sequence) FROM webhook_deliveries \
                                            WHERE status = $2), $3)",
                vec![
                    cutoff.into(),
                    DeliveryStatus::Pending.as_str().into(),
                    i64::MAX.into(),
                ],
            ))
            .await
            .or_store_error()?
            .and_then(|row| row.try_get::<Option<i64>>("", "boundary").ok().flatten())
            .unwrap_or(0);
        if boundary <= pruned_through {
            tx.rollback().await.or_store_error()?;
            return Ok(0);
        }
        execute(
            &tx,
            self.statement(
                "DELETE FROM webhook_deliveries WHERE event_sequence <= $1",
                vec![boundary.into()],
            ),
        )
        .await
        .or_store_error()?;
        let removed = execute(
            &tx,
            self.statement(
                "DELETE FROM events WHERE sequence <= $1",
                vec![boundary.into()],
            ),
        )
        .await
        .or_store_error()?;
        execute(
            &tx,
            self.statement(
                "UPDATE feed_counter SET pruned_through = $1 WHERE id = 1",
                vec![boundary.into()],
            ),
        )
        .await
        .or_store_error()?;
        tx.commit().await.or_store_error()?;
        tracing::info!(
            removed,
            pruned_through = boundary,
            "old events removed from the feed"
        );
        Ok(removed)
    }
}
