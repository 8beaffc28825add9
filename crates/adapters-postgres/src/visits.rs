//! Stage history: one row per stay of an application in a stage, for timelines.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use domain::IntegrationId;
use domain::detect::StageEntry;
use domain::ports::StoreError;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Value};

use crate::entity::stage_visit;
use crate::error::OrStoreError;
use crate::feed::CHUNK;
use crate::store::{Store, execute};

impl Store {
    /// Closes each application's open stage visit and opens the new one: one UPDATE for all
    /// the applications of the page, one bulk INSERT.
    pub(crate) async fn record_visits<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        entries: &[StageEntry],
    ) -> Result<(), StoreError> {
        let entries = self.new_visits(tx, integration, entries).await?;
        if entries.is_empty() {
            return Ok(());
        }
        let entries = entries.as_slice();
        // An application entering two stages in one batch: the earlier visit is closed by the
        // later one here, and only its first entry closes the visit already stored.
        let mut first: HashMap<&str, &StageEntry> = HashMap::new();
        let mut next_of: Vec<Option<&StageEntry>> = vec![None; entries.len()];
        let mut last_index: HashMap<&str, usize> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let app = entry.application_id.as_str();
            first.entry(app).or_insert(entry);
            if let Some(previous) = last_index.insert(app, index) {
                next_of[previous] = Some(entry);
            }
        }
        let firsts: Vec<&StageEntry> = entries
            .iter()
            .filter(|e| std::ptr::eq(first[e.application_id.as_str()], *e))
            .collect();
        for chunk in firsts.chunks(CHUNK / 2) {
            let mut values: Vec<Value> = vec![true.into(), integration.as_str().into()];
            let mut cases = String::new();
            let mut ids = Vec::new();
            for entry in chunk {
                let n = values.len();
                let _ = write!(cases, " WHEN ${} THEN ${}", n + 1, n + 2);
                values.push(entry.application_id.as_str().into());
                values.push(entry.entered_at.into());
                ids.push(format!("${}", n + 1));
            }
            let sql = format!(
                "UPDATE stage_visits SET closed = $1, left_at = CASE application_id{cases} END \
                 WHERE integration_id = $2 AND closed = FALSE AND application_id IN ({})",
                ids.join(", ")
            );
            execute(tx, self.statement(sql, values))
                .await
                .or_store_error()?;
        }
        let rows: Vec<stage_visit::ActiveModel> = entries
            .iter()
            .zip(next_of)
            .map(|(entry, next)| stage_visit::ActiveModel {
                id: sea_orm::ActiveValue::NotSet,
                integration_id: Set(integration.as_str().to_owned()),
                application_id: Set(entry.application_id.as_str().to_owned()),
                stage_id: Set(entry.stage.stage_id.as_str().to_owned()),
                stage_name: Set(entry.stage.name.clone()),
                stage_index: Set(entry.stage.index),
                entered_at: Set(entry.entered_at),
                left_at: Set(next.and_then(|n| n.entered_at)),
                closed: Set(next.is_some()),
            })
            .collect();
        for chunk in rows.chunks(CHUNK) {
            stage_visit::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(tx)
                .await
                .or_store_error()?;
        }
        Ok(())
    }
}

impl Store {
    /// The entries that are not already the application's open visit: a page applied again
    /// after a crash must not repeat its stage history.
    async fn new_visits<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        entries: &[StageEntry],
    ) -> Result<Vec<StageEntry>, StoreError> {
        let mut open: HashMap<String, (String, Option<DateTime<Utc>>)> = HashMap::new();
        for chunk in entries.chunks(CHUNK) {
            let rows = stage_visit::Entity::find()
                .filter(stage_visit::Column::IntegrationId.eq(integration.as_str()))
                .filter(stage_visit::Column::Closed.eq(false))
                .filter(
                    stage_visit::Column::ApplicationId
                        .is_in(chunk.iter().map(|e| e.application_id.as_str())),
                )
                .all(tx)
                .await
                .or_store_error()?;
            for row in rows {
                open.insert(row.application_id, (row.stage_id, row.entered_at));
            }
        }
        Ok(entries
            .iter()
            .filter(|entry| {
                open.get(entry.application_id.as_str())
                    .is_none_or(|(stage, entered_at)| {
                        stage != entry.stage.stage_id.as_str() || *entered_at != entry.entered_at
                    })
            })
            .cloned()
            .collect())
    }
}
