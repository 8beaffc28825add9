//! Small reads for operators and the API: feed positions by time.

use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::event;
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
}
