//! The append-only event feed: appending with a gap-free sequence, the outbox rows that follow
//! each event, reading by cursor, and waiting for new events.
//!
//! Every append takes the single row of `feed_counter` (its `UPDATE` locks the row on
//! PostgreSQL; on SQLite the transaction already holds the database's write lock) before it
//! numbers its events, so appends are serialized:
//! a transaction that gets sequences 6..8 cannot commit before the one that got 1..5, and a
//! reader never sees a sequence before every lower one is visible.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{EventReader, FeedQuery, MAX_FEED_LIMIT, StoreError};
use domain::{ChangeEvent, FeedEvent};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::watch;

use crate::entity::{event, feed_counter};
use crate::error::OrStoreError;
use crate::outbox;
use crate::rows::{from_json, to_json};
use crate::store::{Backend, Store};

/// The PostgreSQL channel appends notify, with the new feed head as payload.
pub(crate) const NOTIFY_CHANNEL: &str = "stagewatch_events";
/// How often an SQLite waiter looks for appends made by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Rows per bulk insert, well below either backend's limit on bound parameters.
pub(crate) const CHUNK: usize = 500;

/// What an append inside a transaction did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Appended {
    pub(crate) count: u64,
    /// The new feed head, when anything was appended.
    pub(crate) head: Option<i64>,
}

impl Store {
    /// The highest sequence in the feed; 0 when it is empty.
    pub async fn feed_head(&self) -> Result<i64, StoreError> {
        let counter = feed_counter::Entity::find_by_id(1)
            .one(&self.db)
            .await
            .or_store_error()?;
        counter
            .map(|row| row.last_sequence)
            .ok_or_else(|| StoreError::Corrupt("feed_counter has no row".to_owned()))
    }

    /// Appends events outside a sync pass (an application created through the API, an
    /// endpoint disabled), with their outbox rows. Returns how many were new.
    pub async fn append_events(&self, events: Vec<ChangeEvent>) -> Result<u64, StoreError> {
        let tx = self.begin_write().await?;
        let appended = self.append_in(&tx, &events).await?;
        tx.commit().await.or_store_error()?;
        self.announce(appended.head);
        Ok(appended.count)
    }

    /// Appends events within the caller's transaction: skips ids already stored (or repeated
    /// in `events`), numbers the rest after the feed head, and queues a delivery for each
    /// enabled webhook endpoint that wants the event's type.
    pub(crate) async fn append_in<C: ConnectionTrait>(
        &self,
        tx: &C,
        events: &[ChangeEvent],
    ) -> Result<Appended, StoreError> {
        if events.is_empty() {
            return Ok(Appended::default());
        }
        // The feed counter is taken first: concurrent appends of the same event must leave one
        // copy, so the lookup of ids already stored has to see every earlier append. On SQLite
        // the transaction already holds the database's write lock.
        if self.backend == Backend::Postgres {
            tx.query_one_raw(self.statement(
                "SELECT last_sequence FROM feed_counter WHERE id = 1 FOR UPDATE",
                vec![],
            ))
            .await
            .or_store_error()?
            .ok_or_else(|| StoreError::Corrupt("feed_counter has no row".to_owned()))?;
        }
        let mut stored: HashSet<String> = HashSet::new();
        for chunk in events.chunks(CHUNK) {
            let ids = chunk.iter().map(|e| e.id.as_str().to_owned());
            let found: Vec<String> = event::Entity::find()
                .select_only()
                .column(event::Column::EventId)
                .filter(event::Column::EventId.is_in(ids))
                .into_tuple()
                .all(tx)
                .await
                .or_store_error()?;
            stored.extend(found);
        }
        let fresh: Vec<&ChangeEvent> = events
            .iter()
            .filter(|e| stored.insert(e.id.as_str().to_owned()))
            .collect();
        if fresh.is_empty() {
            return Ok(Appended::default());
        }

        let count = i64::try_from(fresh.len()).expect("a batch of events fits in i64");
        // One statement reserves the sequences and (on PostgreSQL) queues the notification,
        // delivered on commit and only if the transaction commits.
        let reserve = match self.backend {
            Backend::Postgres => {
                "UPDATE feed_counter SET last_sequence = last_sequence + $1 WHERE id = 1 \
                 RETURNING last_sequence, pg_notify($2, last_sequence::text)::text AS notified"
            }
            Backend::Sqlite => {
                "UPDATE feed_counter SET last_sequence = last_sequence + $1 WHERE id = 1 \
                 RETURNING last_sequence"
            }
        };
        let mut values: Vec<sea_orm::Value> = vec![count.into()];
        if self.backend == Backend::Postgres {
            values.push(NOTIFY_CHANNEL.into());
        }
        let new_head: i64 = tx
            .query_one_raw(self.statement(reserve, values))
            .await
            .or_store_error()?
            .ok_or_else(|| StoreError::Corrupt("feed_counter has no row".to_owned()))?
            .try_get("", "last_sequence")
            .or_store_error()?;
        let head = new_head - count;

        let rows: Vec<event::Model> = fresh
            .iter()
            .zip(head + 1..)
            .map(|(e, sequence)| event::Model {
                sequence,
                event_id: e.id.as_str().to_owned(),
                event_type: e.type_name().to_owned(),
                integration_id: e.integration.as_ref().map(|i| i.id.as_str().to_owned()),
                application_id: e.application.as_ref().map(|a| a.id.as_str().to_owned()),
                occurred_at: e.occurred_at,
                detected_at: e.detected_at,
                payload: to_json(*e),
            })
            .collect();
        for chunk in rows.chunks(CHUNK) {
            event::Entity::insert_many(chunk.iter().cloned().map(Into::<event::ActiveModel>::into))
                .exec_without_returning(tx)
                .await
                .or_store_error()?;
        }
        outbox::queue(tx, &rows).await?;

        Ok(Appended {
            count: u64::try_from(count).unwrap_or_default(),
            head: Some(new_head),
        })
    }
}

#[async_trait]
impl EventReader for Store {
    async fn read_events(&self, query: &FeedQuery) -> Result<Vec<FeedEvent>, StoreError> {
        let mut select = event::Entity::find()
            .filter(event::Column::Sequence.gt(query.after.unwrap_or(0)))
            .order_by_asc(event::Column::Sequence)
            .limit(u64::from(query.limit.clamp(1, MAX_FEED_LIMIT)));
        if !query.types.is_empty() {
            select = select.filter(event::Column::EventType.is_in(query.types.iter().cloned()));
        }
        if let Some(integration) = &query.integration {
            select = select.filter(event::Column::IntegrationId.eq(integration.as_str()));
        }
        let rows = select.all(&self.db).await.or_store_error()?;
        // Read after the events: a prune that removed some of them committed its mark with
        // the deletion, so it is seen here.
        if let Some(after) = query.after {
            let pruned_through = self.pruned_through().await?;
            if after < pruned_through {
                return Err(StoreError::FeedPruned {
                    after,
                    pruned_through,
                });
            }
        }
        rows.into_iter()
            .map(|row| {
                Ok(FeedEvent {
                    sequence: row.sequence,
                    event: from_json("event payload", &row.payload)?,
                })
            })
            .collect()
    }

    async fn wait_for_events(&self, after: i64, timeout: Duration) -> Result<(), StoreError> {
        self.wait_for_head(after, timeout).await
    }
}

impl Store {
    /// Waits until the head passes `after` or `timeout` ends. Wake-ups come from this process's
    /// appends and, on PostgreSQL, from the shared LISTEN connection; the periodic look at the
    /// head catches appends by other processes on SQLite, and any notification lost while the
    /// listener reconnects on PostgreSQL.
    async fn wait_for_head(&self, after: i64, timeout: Duration) -> Result<(), StoreError> {
        let poll = match self.backend {
            Backend::Postgres => {
                self.listen().await?;
                LISTENER_SAFETY_POLL
            }
            Backend::Sqlite => POLL_INTERVAL,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut appended = self.appended.subscribe();
        loop {
            if self.feed_head().await? > after {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let nap = poll.min(deadline - now);
            let _ = tokio::time::timeout(nap, appended.changed()).await;
        }
    }

    /// A receiver that changes whenever the feed's head moves: on this process's appends and,
    /// on PostgreSQL, on every other process's (through the store's LISTEN connection, started
    /// here). Workers that act on new events wait on it instead of polling.
    pub async fn watch_appends(&self) -> Result<watch::Receiver<i64>, StoreError> {
        if self.backend == Backend::Postgres {
            self.listen().await?;
        }
        Ok(self.appended.subscribe())
    }

    /// Starts this store's one LISTEN connection, once; it lives as long as the store's last
    /// clone and announces every head it is notified of.
    async fn listen(&self) -> Result<(), StoreError> {
        self.listener
            .get_or_try_init(|| async {
                let unavailable =
                    |error: sea_orm::sqlx::Error| StoreError::Unavailable(error.to_string());
                let pool = self.db.get_postgres_connection_pool();
                let mut listener = PgListener::connect_with(pool).await.map_err(unavailable)?;
                listener.listen(NOTIFY_CHANNEL).await.map_err(unavailable)?;
                let appended = std::sync::Arc::clone(&self.appended);
                let task = tokio::spawn(async move {
                    loop {
                        match listener.recv().await {
                            Ok(notification) => {
                                if let Ok(head) = notification.payload().parse::<i64>() {
                                    advance(&appended, head);
                                }
                            }
                            Err(error) => {
                                // recv reconnects by itself; this only paces a server that is down.
                                tracing::warn!(%error, "feed listener lost its connection");
                                tokio::time::sleep(LISTENER_SAFETY_POLL).await;
                            }
                        }
                    }
                });
                Ok(ListenerTask(task))
            })
            .await
            .map(|_| ())
    }
}

/// How often a PostgreSQL waiter looks at the head in case a notification was lost.
const LISTENER_SAFETY_POLL: Duration = Duration::from_secs(2);

/// The LISTEN task, stopped when the last clone of its store is dropped.
#[derive(Debug)]
pub(crate) struct ListenerTask(tokio::task::JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Raises the known head to `head` and wakes waiters, if it is higher.
pub(crate) fn advance(known: &watch::Sender<i64>, head: i64) {
    known.send_if_modified(|current| {
        let grew = head > *current;
        if grew {
            *current = head;
        }
        grew
    });
}
