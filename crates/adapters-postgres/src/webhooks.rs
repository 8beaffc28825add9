//! Outbound webhook endpoints: where the product wants events pushed, which types, and the
//! secret their signatures use.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use domain::ports::StoreError;
use rand::RngCore as _;
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
    /// The signing secret; a fresh one is generated when `None`.
    pub secret: Option<String>,
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
}

impl fmt::Debug for NewEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEndpoint")
            .field("url", &self.url)
            .field("description", &self.description)
            .field("event_types", &self.event_types)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
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
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A new signing secret: 24 random bytes, in Standard Webhooks' `whsec_<base64>` form.
pub fn generate_secret() -> String {
    let mut bytes = [0_u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
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
            secret: new.secret.clone().unwrap_or_else(generate_secret),
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

    /// Stops deliveries to the endpoint, recording why; false when it does not exist.
    pub async fn disable_endpoint(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let active = webhook_endpoint::ActiveModel {
            id: Set(id.to_owned()),
            enabled: Set(false),
            disabled_reason: Set(Some(reason.to_owned())),
            updated_at: Set(now),
            ..Default::default()
        };
        let disabled = self.save_endpoint(id, active).await?.is_some();
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

    /// Replaces the signing secret with a fresh one and returns the endpoint with it.
    pub async fn rotate_secret(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let active = webhook_endpoint::ActiveModel {
            id: Set(id.to_owned()),
            secret: Set(generate_secret()),
            updated_at: Set(now),
            ..Default::default()
        };
        self.save_endpoint(id, active).await
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
