//! What the web console reads and keeps beyond the API's own reads: its sessions, the feed
//! newest first with an application filter, and events per integration over a recent window.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use domain::{ApplicationId, FeedEvent, IntegrationId};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::{application, console_session, event};
use crate::error::OrStoreError;
use crate::rows::from_json;
use crate::store::Store;

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The hex SHA-256 of the API key that signed in.
    pub key_hash: String,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Which events the console lists, newest first.
#[derive(Debug, Clone, Default)]
pub struct RecentEvents {
    /// Only events with a lower sequence (the next page back).
    pub before: Option<i64>,
    /// Only events with a higher sequence (what arrived since the page was drawn).
    pub after: Option<i64>,
    pub types: Vec<String>,
    pub integration: Option<IntegrationId>,
    /// Only this application's events (with `integration`).
    pub application: Option<ApplicationId>,
    pub limit: u64,
}

impl Store {
    /// Starts a session; also forgets every session that has expired.
    pub async fn create_console_session(
        &self,
        token_hash: &str,
        session: &ConsoleSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        console_session::Entity::delete_many()
            .filter(console_session::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await
            .or_store_error()?;
        console_session::Entity::insert(console_session::ActiveModel {
            token_hash: Set(token_hash.to_owned()),
            key_hash: Set(session.key_hash.clone()),
            csrf_token: Set(session.csrf_token.clone()),
            created_at: Set(now),
            expires_at: Set(session.expires_at),
        })
        .exec_without_returning(&self.db)
        .await
        .or_store_error()?;
        Ok(())
    }

    /// The session with this token hash, unless it has expired.
    pub async fn console_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        Ok(console_session::Entity::find_by_id(token_hash.to_owned())
            .filter(console_session::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await
            .or_store_error()?
            .map(|row| ConsoleSession {
                key_hash: row.key_hash,
                csrf_token: row.csrf_token,
                expires_at: row.expires_at,
            }))
    }

    /// Ends a session (signing out); true when there was one.
    pub async fn end_console_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let deleted = console_session::Entity::delete_by_id(token_hash.to_owned())
            .exec(&self.db)
            .await
            .or_store_error()?;
        Ok(deleted.rows_affected > 0)
    }

    /// Events newest first, as the console lists them.
    pub async fn recent_events(&self, query: &RecentEvents) -> Result<Vec<FeedEvent>, StoreError> {
        use event::Column as C;
        let mut select = event::Entity::find()
            .order_by_desc(C::Sequence)
            .limit(query.limit.clamp(1, 1000));
        if let Some(before) = query.before {
            select = select.filter(C::Sequence.lt(before));
        }
        if let Some(after) = query.after {
            select = select.filter(C::Sequence.gt(after));
        }
        if !query.types.is_empty() {
            select = select.filter(C::EventType.is_in(query.types.iter().cloned()));
        }
        if let Some(integration) = &query.integration {
            select = select.filter(C::IntegrationId.eq(integration.as_str()));
        }
        if let Some(application) = &query.application {
            select = select.filter(C::ApplicationId.eq(application.as_str()));
        }
        select
            .all(&self.db)
            .await
            .or_store_error()?
            .into_iter()
            .map(|row| {
                Ok(FeedEvent {
                    sequence: row.sequence,
                    event: from_json("event payload", &row.payload)?,
                })
            })
            .collect()
    }

    /// Events detected since `since`, per integration id: of one integration, or of all.
    pub async fn events_per_integration_since(
        &self,
        since: DateTime<Utc>,
        only: Option<&IntegrationId>,
    ) -> Result<HashMap<String, u64>, StoreError> {
        use event::Column as C;
        let mut select = event::Entity::find()
            .select_only()
            .column(C::IntegrationId)
            .column_as(C::Sequence.count(), "events")
            .filter(C::DetectedAt.gte(since));
        if let Some(integration) = only {
            select = select.filter(C::IntegrationId.eq(integration.as_str()));
        }
        let counts: Vec<(Option<String>, i64)> = select
            .group_by(C::IntegrationId)
            .into_tuple()
            .all(&self.db)
            .await
            .or_store_error()?;
        Ok(counts
            .into_iter()
            .filter_map(|(id, n)| Some((id?, u64::try_from(n).unwrap_or_default())))
            .collect())
    }

    /// Tracked (not deleted) applications per integration id: of one integration, or of all.
    pub async fn tracked_per_integration(
        &self,
        only: Option<&IntegrationId>,
    ) -> Result<HashMap<String, u64>, StoreError> {
        use application::Column as C;
        let mut select = application::Entity::find()
            .select_only()
            .column(C::IntegrationId)
            .column_as(C::ApplicationId.count(), "tracked")
            .filter(C::DeletedAt.is_null());
        if let Some(integration) = only {
            select = select.filter(C::IntegrationId.eq(integration.as_str()));
        }
        let counts: Vec<(String, i64)> = select
            .group_by(C::IntegrationId)
            .into_tuple()
            .all(&self.db)
            .await
            .or_store_error()?;
        Ok(counts
            .into_iter()
            .map(|(id, n)| (id, u64::try_from(n).unwrap_or_default()))
            .collect())
    }
}
