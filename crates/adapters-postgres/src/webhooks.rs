//! Outbound webhook endpoints: where the product wants events pushed, which types, and the
//! secrets their signatures use. The store keeps the secrets it is given; their format belongs
//! to the signing code (app-server's `delivery::sign`).

use std::fmt;

use chrono::{DateTime, Utc};
use domain::ChangeEvent;
use domain::ports::StoreError;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

use crate::entity::webhook_endpoint;
use crate::error::OrStoreError;
use crate::rows::{from_json, to_json};
use crate::store::Store;

/// An endpoint to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    /// Event types to deliver; every type when empty.
    pub event_types: Vec<String>,
    /// The signing secret.
    pub secret: String,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    /// Re-enabling clears the reason it was disabled.
    pub enabled: Option<bool>,
}

/// An endpoint as stored. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    /// `whsec_` followed by base64, as Standard Webhooks signs with.
    pub secret: String,
    /// The secret before the last rotation and until when deliveries are still signed with
    /// it too, so that consumers can switch over.
    pub previous_secret: Option<(String, DateTime<Utc>)>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRecord {
    /// Whether the endpoint wants events of this type.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }

    /// The secrets deliveries are signed with at `now`: the current one, then the previous one
    /// while its overlap lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, until)) = &self.previous_secret
            && now < *until
        {
            secrets.push(previous);
        }
        secrets
    }
}

impl fmt::Debug for NewEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEndpoint")
            .field("url", &self.url)
            .field("description", &self.description)
            .field("event_types", &self.event_types)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for EndpointRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("description", &self.description)
            .field("event_types", &self.event_types)
            .field("secret", &"<redacted>")
            .field(
                "previous_secret_until",
                &self.previous_secret.as_ref().map(|(_, until)| until),
            )
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

pub(crate) fn endpoint_from_row(
    row: webhook_endpoint::Model,
) -> Result<EndpointRecord, StoreError> {
    Ok(EndpointRecord {
        event_types: from_json("endpoint event types", &row.event_types)?,
        id: row.id,
        url: row.url,
        description: row.description,
        secret: row.secret,
        previous_secret: row.previous_secret.zip(row.previous_secret_expires_at),
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

impl Store {
    /// Creates an endpoint, enabled, with an id of the form `ep_<uuid>`.
    pub async fn create_endpoint(
        &self,
        new: &NewEndpoint,
        now: DateTime<Utc>,
    ) -> Result<EndpointRecord, StoreError> {
        let row = webhook_endpoint::Model {
            id: format!("ep_{}", uuid::Uuid::new_v4().simple()),
            url: new.url.clone(),
            description: new.description.clone(),
            event_types: to_json(&new.event_types),
            secret: new.secret.clone(),
            previous_secret: None,
            previous_secret_expires_at: None,
            enabled: true,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        webhook_endpoint::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&self.db)
            .await
            .or_store_error()?;
        tracing::info!(endpoint = %row.id, url = %row.url, "webhook endpoint created");
        endpoint_from_row(row)
    }

    /// Every endpoint, oldest first.
    pub async fn list_endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        webhook_endpoint::Entity::find()
            .order_by_asc(webhook_endpoint::Column::CreatedAt)
            .order_by_asc(webhook_endpoint::Column::Id)
            .all(&self.db)
            .await
            .or_store_error()?
            .into_iter()
            .map(endpoint_from_row)
            .collect()
    }

    /// One endpoint.
    pub async fn endpoint(&self, id: &str) -> Result<Option<EndpointRecord>, StoreError> {
        webhook_endpoint::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .or_store_error()?
            .map(endpoint_from_row)
            .transpose()
    }

    /// Applies `update`; `None` when the endpoint does not exist.
    pub async fn update_endpoint(
        &self,
        id: &str,
        update: &EndpointUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let mut active = webhook_endpoint::ActiveModel {
            id: Set(id.to_owned()),
            updated_at: Set(now),
            ..Default::default()
        };
        if let Some(url) = &update.url {
            active.url = Set(url.clone());
        }
        if let Some(description) = &update.description {
            active.description = Set(description.clone());
        }
        if let Some(types) = &update.event_types {
            active.event_types = Set(to_json(types));
        }
        if let Some(enabled) = update.enabled {
            active.enabled = Set(enabled);
            if enabled {
                active.disabled_reason = Set(None);
            }
        }
        self.save_endpoint(id, active).await
    }

    /// Stops deliveries to an enabled endpoint, recording why, and appends `announcement` (an
    /// `endpoint.disabled` event) in the same transaction; false, and nothing written, when the
    /// endpoint does not exist or is disabled already.
    pub async fn disable_endpoint(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
        announcement: Option<ChangeEvent>,
    ) -> Result<bool, StoreError> {
        let tx = self.begin_write().await?;
        let disabled = webhook_endpoint::Entity::update_many()
            .set(webhook_endpoint::ActiveModel {
                enabled: Set(false),
                disabled_reason: Set(Some(reason.to_owned())),
                updated_at: Set(now),
                ..Default::default()
            })
            .filter(webhook_endpoint::Column::Id.eq(id))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .exec(&tx)
            .await
            .or_store_error()?
            .rows_affected
            > 0;
        let mut head = None;
        if disabled && let Some(event) = announcement {
            head = self.append_in(&tx, &[event]).await?.head;
        }
        tx.commit().await.or_store_error()?;
        self.announce(head);
        if disabled {
            tracing::warn!(endpoint = %id, reason, "webhook endpoint disabled");
        }
        Ok(disabled)
    }

    /// Deletes the endpoint with its deliveries and attempts; false when it does not exist.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = webhook_endpoint::Entity::delete_by_id(id)
            .exec(&self.db)
            .await
            .or_store_error()?
            .rows_affected;
        Ok(deleted > 0)
    }

    /// Replaces the signing secret with `secret`; the one it replaces is kept, and signed with
    /// too, until `previous_until` (not at all when that is `now` or earlier). Returns the
    /// endpoint with its new secret.
    pub async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let tx = self.begin_write().await?;
        let Some(current) = webhook_endpoint::Entity::find_by_id(id)
            .one(&tx)
            .await
            .or_store_error()?
        else {
            return Ok(None);
        };
        let replaced = current.secret.clone();
        let keep_previous = previous_until > now;
        let active = webhook_endpoint::ActiveModel {
            id: Set(id.to_owned()),
            secret: Set(secret.to_owned()),
            previous_secret: Set(keep_previous.then_some(current.secret)),
            previous_secret_expires_at: Set(keep_previous.then_some(previous_until)),
            updated_at: Set(now),
            ..Default::default()
        };
        // Compare-and-set on the secret read, so two concurrent rotations cannot both keep it.
        let touched = webhook_endpoint::Entity::update_many()
            .set(active)
            .filter(webhook_endpoint::Column::Id.eq(id))
            .filter(webhook_endpoint::Column::Secret.eq(replaced))
            .exec(&tx)
            .await
            .or_store_error()?
            .rows_affected;
        tx.commit().await.or_store_error()?;
        if touched == 0 {
            return Err(StoreError::Unavailable(format!(
                "the secret of webhook endpoint {id} changed during the rotation; retry"
            )));
        }
        self.endpoint(id).await
    }

    async fn save_endpoint(
        &self,
        id: &str,
        active: webhook_endpoint::ActiveModel,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let touched = webhook_endpoint::Entity::update_many()
            .set(active)
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .or_store_error()?
            .rows_affected;
        if touched == 0 {
            return Ok(None);
        }
        self.endpoint(id).await
    }
}
