//! The webhook outbox, all of its SQL: one delivery row per (event, endpoint) queued in the
//! transaction that appends the event ([`queue`]), claimed by delivery workers with a lease,
//! finished by recording each attempt, listed, replayed, and measured ([`Store::outbox_lag`]).
//!
//! A claim counts the attempt it makes, and an attempt is recorded only by the claim that made
//! it: a worker whose lease ran out (and whose delivery another worker claimed since) cannot
//! overwrite the newer claim's outcome.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::FeedEvent;
use domain::ports::StoreError;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entity::{event, webhook_attempt, webhook_delivery, webhook_endpoint};
use crate::error::OrStoreError;
use crate::feed::CHUNK;
use crate::rows::{after, from_json};
use crate::store::{Backend, Store, execute};
use crate::webhooks::{EndpointRecord, endpoint_from_row};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Given up after too many failed attempts.
    Failed,
}

impl DeliveryStatus {
    /// The stored (and listed) name: `pending`, `delivered` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!(
                "unknown delivery status {other:?}"
            ))),
        }
    }
}

/// A delivery claimed by a worker, with everything needed to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub delivery_id: i64,
    /// 1 for the first attempt; counted by the claim, and the claim's token when recording.
    pub attempt: u32,
    pub endpoint: EndpointRecord,
    pub event: FeedEvent,
}

/// A delivery as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub endpoint_id: String,
    pub event_sequence: i64,
    pub event_id: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What one attempt to deliver observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status, when it answered.
    pub status_code: Option<u16>,
    pub latency: Duration,
    /// A bounded excerpt of the response body.
    pub response_excerpt: Option<String>,
    /// Why no answer came (timeout, refused connection), when none did.
    pub error: Option<String>,
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: i64,
    pub delivery_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency: Duration,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

fn delivery_from_row(row: webhook_delivery::Model) -> Result<DeliveryRecord, StoreError> {
    Ok(DeliveryRecord {
        id: row.id,
        status: DeliveryStatus::parse(&row.status)?,
        attempts: u32::try_from(row.attempts).unwrap_or_default(),
        last_status_code: row.last_status_code.and_then(|c| u16::try_from(c).ok()),
        endpoint_id: row.endpoint_id,
        event_sequence: row.event_sequence,
        event_id: row.event_id,
        next_attempt_at: row.next_attempt_at,
        last_error: row.last_error,
        created_at: row.created_at,
        finished_at: row.finished_at,
    })
}

/// Queues one delivery per (event, enabled endpoint that wants its type), in the caller's
/// transaction: the append's, so an event and its deliveries commit together.
pub(crate) async fn queue<C: ConnectionTrait>(
    tx: &C,
    events: &[event::Model],
) -> Result<(), StoreError> {
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .all(tx)
        .await
        .or_store_error()?
        .into_iter()
        .map(endpoint_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let deliveries: Vec<webhook_delivery::ActiveModel> = events
        .iter()
        .flat_map(|event| {
            endpoints
                .iter()
                .filter(|endpoint| endpoint.wants(&event.event_type))
                .map(|endpoint| {
                    new_delivery(
                        &endpoint.id,
                        event.sequence,
                        &event.event_id,
                        event.detected_at,
                    )
                })
        })
        .collect();
    insert_deliveries(tx, deliveries).await
}

/// A pending delivery of one event to one endpoint, due at once.
fn new_delivery(
    endpoint: &str,
    sequence: i64,
    event_id: &str,
    now: DateTime<Utc>,
) -> webhook_delivery::ActiveModel {
    webhook_delivery::ActiveModel {
        id: NotSet,
        endpoint_id: Set(endpoint.to_owned()),
        event_sequence: Set(sequence),
        event_id: Set(event_id.to_owned()),
        status: Set(DeliveryStatus::Pending.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        lease_expires_at: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
    }
}

async fn insert_deliveries<C: ConnectionTrait>(
    tx: &C,
    deliveries: Vec<webhook_delivery::ActiveModel>,
) -> Result<(), StoreError> {
    let mut deliveries = deliveries.into_iter().peekable();
    while deliveries.peek().is_some() {
        let chunk: Vec<_> = deliveries.by_ref().take(CHUNK).collect();
        webhook_delivery::Entity::insert_many(chunk)
            .exec_without_returning(tx)
            .await
            .or_store_error()?;
    }
    Ok(())
}

impl Store {
    /// Claims up to `limit` pending deliveries due at `now` to enabled endpoints, oldest event
    /// first, leased until `now + lease` so that a crashed worker's deliveries are retried.
    /// The claim counts the attempt (so an attempt that never gets recorded, by a worker that
    /// crashed or hung, still counts towards giving up). On PostgreSQL concurrent workers skip
    /// each other's rows (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_expires_at = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM webhook_deliveries \
               WHERE status = '{pending}' AND next_attempt_at <= $2 \
                 AND (lease_expires_at IS NULL OR lease_expires_at <= $2) \
                 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled = $3) \
               ORDER BY event_sequence, id LIMIT {limit} {lock}) \
             RETURNING {columns}",
            // Literals, not parameters: only then can a generic plan use the partial index of
            // pending deliveries in claim order, and know that it updates a few rows (with
            // `LIMIT $n` it planned a scan of the whole table for the outer update).
            pending = DeliveryStatus::Pending.as_str(),
            columns = Store::returning::<webhook_delivery::Entity>()
        );
        let statement =
            self.statement(sql, vec![after(now, lease).into(), now.into(), true.into()]);
        let mut rows = webhook_delivery::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await
            .or_store_error()?;
        rows.sort_by_key(|row| (row.event_sequence, row.id));
        if rows.is_empty() {
            return Ok(Vec::new());
        }

        let endpoint_ids: Vec<&str> = rows.iter().map(|r| r.endpoint_id.as_str()).collect();
        let endpoints: HashMap<String, EndpointRecord> = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Id.is_in(endpoint_ids))
            .all(&self.db)
            .await
            .or_store_error()?
            .into_iter()
            .map(|row| endpoint_from_row(row).map(|e| (e.id.clone(), e)))
            .collect::<Result<_, _>>()?;
        let sequences: Vec<i64> = rows.iter().map(|r| r.event_sequence).collect();
        let mut events: HashMap<i64, FeedEvent> = HashMap::new();
        for chunk in sequences.chunks(CHUNK) {
            for row in event::Entity::find()
                .filter(event::Column::Sequence.is_in(chunk.to_vec()))
                .all(&self.db)
                .await
                .or_store_error()?
            {
                let feed_event = FeedEvent {
                    sequence: row.sequence,
                    event: from_json("event payload", &row.payload)?,
                };
                events.insert(row.sequence, feed_event);
            }
        }
        rows.into_iter()
            .map(|row| {
                let endpoint = endpoints.get(&row.endpoint_id).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("delivery {} has no endpoint", row.id))
                })?;
                let event = events.get(&row.event_sequence).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("delivery {} has no event", row.id))
                })?;
                Ok(DueDelivery {
                    delivery_id: row.id,
                    attempt: u32::try_from(row.attempts).unwrap_or_default(),
                    endpoint,
                    event,
                })
            })
            .collect()
    }

    /// Records attempt number `claimed_attempt` and what follows it, and frees the delivery's
    /// lease, only while that claim is the delivery's latest: false (and nothing written) when
    /// the lease ran out and another claim was made since, or the delivery is no longer pending.
    /// So a worker that outlived its lease cannot turn a delivered event back to pending or
    /// failed.
    pub async fn record_attempt(
        &self,
        delivery_id: i64,
        claimed_attempt: u32,
        attempt: &DeliveryAttempt,
        next: AttemptOutcome,
    ) -> Result<bool, StoreError> {
        let (status, next_attempt_at, finished_at) = match next {
            AttemptOutcome::Delivered => (DeliveryStatus::Delivered, None, Some(attempt.at)),
            AttemptOutcome::RetryAt(at) => (DeliveryStatus::Pending, Some(at), None),
            AttemptOutcome::GiveUp => (DeliveryStatus::Failed, None, Some(attempt.at)),
        };
        let tx = self.begin_write().await?;
        let fenced = webhook_delivery::Entity::update_many()
            .set(webhook_delivery::ActiveModel {
                status: Set(status.as_str().to_owned()),
                next_attempt_at: Set(next_attempt_at),
                lease_expires_at: Set(None),
                last_status_code: Set(attempt.status_code.map(i32::from)),
                last_error: Set(attempt.error.clone()),
                finished_at: Set(finished_at),
                ..Default::default()
            })
            .filter(webhook_delivery::Column::Id.eq(delivery_id))
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(
                webhook_delivery::Column::Attempts
                    .eq(i32::try_from(claimed_attempt).unwrap_or(i32::MAX)),
            )
            .exec(&tx)
            .await
            .or_store_error()?
            .rows_affected;
        if fenced == 0 {
            return Ok(false);
        }
        let endpoint_id: String = webhook_delivery::Entity::find_by_id(delivery_id)
            .select_only()
            .column(webhook_delivery::Column::EndpointId)
            .into_tuple()
            .one(&tx)
            .await
            .or_store_error()?
            .ok_or_else(|| StoreError::Corrupt(format!("no delivery {delivery_id}")))?;
        webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
            id: NotSet,
            delivery_id: Set(delivery_id),
            endpoint_id: Set(endpoint_id),
            attempted_at: Set(attempt.at),
            status_code: Set(attempt.status_code.map(i32::from)),
            latency_ms: Set(i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX)),
            response_excerpt: Set(attempt.response_excerpt.clone()),
            error: Set(attempt.error.clone()),
        })
        .exec_without_returning(&tx)
        .await
        .or_store_error()?;
        tx.commit().await.or_store_error()?;
        Ok(true)
    }

    /// When the endpoint last had a delivery succeed; `None` when never.
    pub async fn last_delivered_at(
        &self,
        endpoint_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let last: Option<Option<DateTime<Utc>>> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::FinishedAt)
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Delivered.as_str()))
            .order_by_desc(webhook_delivery::Column::FinishedAt)
            .into_tuple()
            .one(&self.db)
            .await
            .or_store_error()?;
        Ok(last.flatten())
    }

    /// How long the oldest due, undelivered webhook delivery has been waiting; zero when none
    /// is due.
    pub async fn outbox_lag(&self, now: DateTime<Utc>) -> Result<Duration, StoreError> {
        let oldest = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
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

    /// An endpoint's deliveries, newest first, before the delivery id `before`.
    pub async fn list_deliveries(
        &self,
        endpoint_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut query = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id));
        if let Some(before) = before {
            query = query.filter(webhook_delivery::Column::Id.lt(before));
        }
        query
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(u64::from(limit.clamp(1, 1000)))
            .all(&self.db)
            .await
            .or_store_error()?
            .into_iter()
            .map(delivery_from_row)
            .collect()
    }

    /// One delivery.
    pub async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        webhook_delivery::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .or_store_error()?
            .map(delivery_from_row)
            .transpose()
    }

    /// A delivery's attempts, oldest first.
    pub async fn list_attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.eq(delivery_id))
            .order_by_asc(webhook_attempt::Column::Id)
            .all(&self.db)
            .await
            .or_store_error()?;
        Ok(rows
            .into_iter()
            .map(|row| AttemptRecord {
                id: row.id,
                delivery_id: row.delivery_id,
                attempted_at: row.attempted_at,
                status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
                latency: Duration::from_millis(u64::try_from(row.latency_ms).unwrap_or_default()),
                response_excerpt: row.response_excerpt,
                error: row.error,
            })
            .collect())
    }

    /// Queues one event again for an endpoint, whatever its type; `None` when the endpoint or
    /// the event does not exist.
    pub async fn replay_event(
        &self,
        endpoint_id: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        if self.endpoint(endpoint_id).await?.is_none() {
            return Ok(None);
        }
        let Some(stored) = event::Entity::find()
            .filter(event::Column::EventId.eq(event_id))
            .one(&self.db)
            .await
            .or_store_error()?
        else {
            return Ok(None);
        };
        let inserted = webhook_delivery::Entity::insert(new_delivery(
            endpoint_id,
            stored.sequence,
            &stored.event_id,
            now,
        ))
        .exec(&self.db)
        .await
        .or_store_error()?;
        Ok(Some(inserted.last_insert_id))
    }

    /// Queues again every event with a sequence in `from..=to` that the endpoint wants (by its
    /// type filter), in one statement; returns how many were queued.
    pub async fn replay_range(
        &self,
        endpoint_id: &str,
        from: i64,
        to: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let Some(endpoint) = self.endpoint(endpoint_id).await? else {
            return Ok(0);
        };
        let mut values = vec![
            endpoint_id.into(),
            DeliveryStatus::Pending.as_str().into(),
            now.into(),
            from.into(),
            to.into(),
        ];
        let mut type_filter = String::new();
        if !endpoint.event_types.is_empty() {
            let placeholders: Vec<String> = endpoint
                .event_types
                .iter()
                .enumerate()
                .map(|(n, _)| format!("${}", n + 6))
                .collect();
            type_filter = format!(" AND event_type IN ({})", placeholders.join(", "));
            values.extend(endpoint.event_types.iter().map(|t| t.as_str().into()));
        }
        let sql = format!(
            "INSERT INTO webhook_deliveries \
               (endpoint_id, event_sequence, event_id, status, attempts, next_attempt_at, created_at) \
             SELECT $1, sequence, event_id, $2, 0, $3, $3 FROM events \
             WHERE sequence >= $4 AND sequence <= $5{type_filter} ORDER BY sequence"
        );
        execute(&self.db, self.statement(sql, values))
            .await
            .or_store_error()
    }
}

impl Store {
    /// Deletes attempts made before `cutoff` of deliveries that are over (delivered or
    /// failed), keeping each delivery's last attempt; returns how many.
    pub async fn purge_delivery_attempts(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        execute(
            &self.db,
            self.statement(
                "DELETE FROM webhook_attempts \
                 WHERE attempted_at < $1 \
                   AND delivery_id IN (SELECT id FROM webhook_deliveries WHERE status <> $2) \
                   AND id < (SELECT MAX(latest.id) FROM webhook_attempts latest \
                             WHERE latest.delivery_id = webhook_attempts.delivery_id)",
                vec![cutoff.into(), DeliveryStatus::Pending.as_str().into()],
            ),
        )
        .await
        .or_store_error()
    }
}
