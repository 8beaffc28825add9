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
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr, Statement, Value,
};
use tokio::sync::watch;

use crate::entity::{event, feed_counter};
use crate::error::{OrStoreError, db_error};
use crate::outbox;
use crate::rows::{from_json, to_json};
use crate::store::{Backend, Store, placeholders};

/// The PostgreSQL channel appends notify, with the new feed head as payload.
pub(crate) const NOTIFY_CHANNEL: &str = "stagewatch_events";
/// How often an SQLite waiter looks for appends made by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Rows per bulk insert, well below either backend's limit on bound parameters.
pub(crate) const CHUNK: usize = 500;
/// The savepoint a PostgreSQL append can be undone to when some of its events are stored.
const APPEND_SAVEPOINT: &str = "stagewatch_append";

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
    pub(crate) async fn append_in(
        &self,
        tx: &DatabaseTransaction,
        events: &[ChangeEvent],
    ) -> Result<Appended, StoreError> {
        // Repeats within the batch: the first copy is the one appended.
        let mut seen: HashSet<&str> = HashSet::new();
        let events: Vec<&ChangeEvent> = events
            .iter()
            .filter(|e| seen.insert(e.id.as_str()))
            .collect();
        if events.is_empty() {
            return Ok(Appended::default());
        }
        match self.backend {
            Backend::Postgres => self.append_on_postgres(tx, &events).await,
            Backend::Sqlite => self.append_on_sqlite(tx, &events).await,
        }
    }

    /// Every append holds the feed counter's row lock from its first statement to its commit,
    /// and every other append waits for it, so as little as possible happens under it: the
    /// statements are built (the payloads serialized) before the lock, and each is one round
    /// trip that takes the lock (or holds it already), numbers its events after the counter,
    /// inserts them and queues their deliveries. Built the other way (seven statements, each
    /// built between two round trips) the lock was held for most of a first pass, half of that
    /// time waiting on the client.
    ///
    /// Events already stored (a page applied again) would make the insert fail on the unique
    /// `event_id`; the append is then undone to a savepoint taken before the lock and made
    /// again the careful way ([`Store::append_after_lookup`]). That is rare, so the usual append
    /// does not look up stored ids under the lock.
    async fn append_on_postgres(
        &self,
        tx: &DatabaseTransaction,
        events: &[&ChangeEvent],
    ) -> Result<Appended, StoreError> {
        let statements = append_statements(events);
        tx.execute_unprepared(&format!("SAVEPOINT {APPEND_SAVEPOINT}"))
            .await
            .or_store_error()?;
        match run_appends(tx, statements, None).await {
            Err(AppendFailure::StoredAlready(message)) => {
                tracing::debug!(
                    %message,
                    "an event of the append is stored already; appending the others"
                );
                tx.execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {APPEND_SAVEPOINT}"))
                    .await
                    .or_store_error()?;
                self.append_after_lookup(tx, events).await
            }
            Err(AppendFailure::Store(error)) => Err(error),
            Ok(appended) => Ok(appended),
        }
    }

    /// An append of events some of which may be stored already: the counter is locked first,
    /// then the ids already stored are looked up and left out. The lookup has to see every
    /// earlier append (concurrent appends of the same event must leave one copy), which a
    /// statement's snapshot does only if it starts after the lock is granted.
    async fn append_after_lookup(
        &self,
        tx: &DatabaseTransaction,
        events: &[&ChangeEvent],
    ) -> Result<Appended, StoreError> {
        let head: i64 = tx
            .query_one_raw(self.statement(
                "SELECT last_sequence FROM feed_counter WHERE id = 1 FOR UPDATE",
                vec![],
            ))
            .await
            .or_store_error()?
            .ok_or_else(|| StoreError::Corrupt("feed_counter has no row".to_owned()))?
            .try_get("", "last_sequence")
            .or_store_error()?;
        let fresh = not_stored(tx, events).await?;
        match run_appends(tx, append_statements(&fresh), Some(head)).await {
            Ok(appended) => Ok(appended),
            Err(AppendFailure::Store(error)) => Err(error),
            Err(AppendFailure::StoredAlready(message)) => Err(StoreError::Corrupt(format!(
                "an append under the feed lock broke a unique key: {message}"
            ))),
        }
    }

    /// On SQLite the transaction already holds the database's write lock, so the steps are
    /// separate statements.
    async fn append_on_sqlite<C: ConnectionTrait>(
        &self,
        tx: &C,
        events: &[&ChangeEvent],
    ) -> Result<Appended, StoreError> {
        let fresh = not_stored(tx, events).await?;
        if fresh.is_empty() {
            return Ok(Appended::default());
        }

        let count = i64::try_from(fresh.len()).expect("a batch of events fits in i64");
        let new_head: i64 = tx
            .query_one_raw(self.statement(
                "UPDATE feed_counter SET last_sequence = last_sequence + $1 WHERE id = 1 \
                 RETURNING last_sequence",
                vec![count.into()],
            ))
            .await
            .or_store_error()?
            .ok_or_else(|| StoreError::Corrupt("feed_counter has no row".to_owned()))?
            .try_get("", "last_sequence")
            .or_store_error()?;
        let head = new_head - count;

        let rows: Vec<event::Model> = fresh
            .iter()
            .zip(head + 1..)
            .map(|(e, sequence)| event_row(e, sequence))
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

fn event_row(event: &ChangeEvent, sequence: i64) -> event::Model {
    event::Model {
        sequence,
        event_id: event.id.as_str().to_owned(),
        event_type: event.type_name().to_owned(),
        integration_id: event.integration.as_ref().map(|i| i.id.as_str().to_owned()),
        application_id: event.application.as_ref().map(|a| a.id.as_str().to_owned()),
        occurred_at: event.occurred_at,
        detected_at: event.detected_at,
        payload: to_json(event),
    }
}

/// The ones among `events` that the feed does not hold yet, in their order.
async fn not_stored<'e, C: ConnectionTrait>(
    tx: &C,
    events: &[&'e ChangeEvent],
) -> Result<Vec<&'e ChangeEvent>, StoreError> {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let mut stored: HashSet<String> = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<String> = event::Entity::find()
            .select_only()
            .column(event::Column::EventId)
            .filter(event::Column::EventId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(tx)
            .await
            .or_store_error()?;
        stored.extend(found);
    }
    Ok(events
        .iter()
        .copied()
        .filter(|e| !stored.contains(e.id.as_str()))
        .collect())
}

/// Why a PostgreSQL append's statements failed.
enum AppendFailure {
    /// A unique key was broken: an event of the batch is in the feed already (or, if it
    /// happens under the lock too, a sequence is taken and the feed is corrupt).
    StoredAlready(String),
    Store(StoreError),
}

/// Runs an append's statements in order and checks that each numbered its events right after
/// the one before (after `head`, when the caller holds the lock and knows it).
async fn run_appends<C: ConnectionTrait>(
    tx: &C,
    statements: Vec<AppendStatement>,
    head: Option<i64>,
) -> Result<Appended, AppendFailure> {
    let mut first = head;
    let mut last = head;
    for statement in statements {
        let row = match tx.query_one_raw(statement.statement).await {
            Ok(row) => row,
            Err(error) => {
                return Err(match error.sql_err() {
                    Some(SqlErr::UniqueConstraintViolation(message)) => {
                        AppendFailure::StoredAlready(message)
                    }
                    _ => AppendFailure::Store(db_error(error)),
                });
            }
        };
        let row = row.ok_or_else(|| {
            AppendFailure::Store(StoreError::Corrupt("the append returned no row".to_owned()))
        })?;
        let numbered_after: i64 = row
            .try_get("", "numbered_after")
            .map_err(|error| AppendFailure::Store(db_error(error)))?;
        if last.is_some_and(|last| last != numbered_after) {
            return Err(AppendFailure::Store(StoreError::Corrupt(format!(
                "an append numbered its events after {numbered_after}, not after {}, under \
                 the feed lock",
                last.unwrap_or_default()
            ))));
        }
        first.get_or_insert(numbered_after);
        last = Some(numbered_after + statement.count);
    }
    let count = last.unwrap_or_default() - first.unwrap_or_default();
    Ok(Appended {
        count: u64::try_from(count).unwrap_or_default(),
        head: (count > 0).then_some(last.unwrap_or_default()),
    })
}

/// One statement of a PostgreSQL append, built before the feed counter is locked.
struct AppendStatement {
    statement: Statement,
    count: i64,
}

/// Statements appending `events` in their order, [`CHUNK`] at a time. Each locks the counter
/// (or holds it already) and moves it by its count, notifying the new head on commit; inserts
/// its events numbered after the counter's old value, in their order; and queues one delivery
/// per event and enabled endpoint that wants its type (an empty list wants every type), in
/// the order of sequence then endpoint, as `outbox::queue` orders them on SQLite. It returns
/// the counter's old value.
fn append_statements(events: &[&ChangeEvent]) -> Vec<AppendStatement> {
    events
        .chunks(CHUNK)
        .map(|chunk| {
            let count = i64::try_from(chunk.len()).expect("a chunk fits in i64");
            let mut values: Vec<Value> = vec![count.into(), NOTIFY_CHANNEL.into()];
            let mut tuples = Vec::with_capacity(chunk.len());
            for (offset, event) in (1..).zip(chunk) {
                tuples.push(format!("({offset}, {})", placeholders(values.len() + 1, 7)));
                values.push(event.id.as_str().into());
                values.push(event.type_name().into());
                values.push(event.integration.as_ref().map(|i| i.id.as_str()).into());
                values.push(event.application.as_ref().map(|a| a.id.as_str()).into());
                values.push(event.occurred_at.into());
                values.push(event.detected_at.into());
                values.push(to_json(*event).into());
            }
            let sql = format!(
                "WITH counter AS ( \
                   UPDATE feed_counter SET last_sequence = last_sequence + $1 WHERE id = 1 \
                   RETURNING last_sequence - $1 AS numbered_after, \
                     pg_notify($2, last_sequence::text)::text AS notified \
                 ), appended AS ( \
                   INSERT INTO events (sequence, event_id, event_type, integration_id, \
                     application_id, occurred_at, detected_at, payload) \
                   SELECT c.numbered_after + v.position, v.event_id, v.event_type, \
                     v.integration_id, v.application_id, v.occurred_at, v.detected_at, v.payload \
                   FROM counter c CROSS JOIN (VALUES {}) AS v(position, event_id, event_type, \
                     integration_id, application_id, occurred_at, detected_at, payload) \
                   RETURNING sequence, event_id, event_type, detected_at \
                 ), queued AS ( \
                   INSERT INTO webhook_deliveries (endpoint_id, event_sequence, event_id, status, \
                     attempts, next_attempt_at, created_at) \
                   SELECT ep.id, a.sequence, a.event_id, 'pending', 0, a.detected_at, \
                     a.detected_at \
                   FROM appended a JOIN webhook_endpoints ep ON ep.enabled AND ( \
                     ep.event_types::jsonb = '[]'::jsonb OR EXISTS ( \
                       SELECT 1 FROM jsonb_array_elements_text(ep.event_types::jsonb) \
                         AS wanted(name) WHERE wanted.name = a.event_type)) \
                   ORDER BY a.sequence, ep.id \
                   RETURNING 1 \
                 ) \
                 SELECT numbered_after FROM counter",
                tuples.join(", ")
            );
            AppendStatement {
                statement: Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values),
                count,
            }
        })
        .collect()
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
