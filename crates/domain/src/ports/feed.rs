use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::event::FeedEvent;
use crate::ids::IntegrationId;

/// Largest page of the event feed.
pub const MAX_FEED_LIMIT: u32 = 1000;

/// A read of the event feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedQuery {
    /// Events with a sequence strictly greater than this; from the start when `None`.
    pub after: Option<i64>,
    pub limit: u32,
    /// Only these event types; all when empty.
    pub types: Vec<String>,
    pub integration: Option<IntegrationId>,
}

/// The event feed: every event in the order it was appended, by gap-free sequence.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait EventReader: Send + Sync {
    /// Up to `query.limit` events after the cursor, oldest first.
    async fn read_events(&self, query: &FeedQuery) -> Result<Vec<FeedEvent>, StoreError>;

    /// Returns once an event with a sequence greater than `after` may exist, or after `timeout`.
    /// Callers read again either way.
    async fn wait_for_events(&self, after: i64, timeout: Duration) -> Result<(), StoreError>;
}
