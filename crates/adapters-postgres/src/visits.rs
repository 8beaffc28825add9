//! Stage history: one row per stay of an application in a stage, for timelines.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use domain::IntegrationId;
use domain::detect::StageEntry;
use domain::ports::StoreError;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, Value,
};

use crate::entity::stage_visit;
use crate::error::OrStoreError;
use crate::feed::CHUNK;
use crate::funnel_totals::Members;
use crate::store::{Backend, Store, execute, json_ids};

impl Store {
    /// Closes each application's open stage visit and opens the new one: one UPDATE of the
    /// visits closed (by primary key), one bulk INSERT. `stored` is what the write read of its
    /// applications before storing them, their stays included, so the open visits are known
    /// without another lookup; only an entry of an application not among them (none, from a
    /// pass) has its open visit looked up.
    pub(crate) async fn record_visits<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        entries: &[StageEntry],
        stored: &Members,
    ) -> Result<(), StoreError> {
        let mut open = open_among(stored);
        let read: HashSet<&str> = stored
            .iter()
            .map(|(member, _)| member.application_id.as_str())
            .collect();
        let unread: Vec<&StageEntry> = entries
            .iter()
            .filter(|entry| !read.contains(entry.application_id.as_str()))
            .collect();
        open.extend(self.open_visits(tx, integration, &unread).await?);
        // A page applied again after a crash must not repeat its stage history: an entry that
        // is already the application's open visit is not new.
        let entries: Vec<&StageEntry> = entries
            .iter()
            .filter(|entry| {
                open.get(entry.application_id.as_str()).is_none_or(|visit| {
                    visit.stage_id != entry.stage.stage_id.as_str()
                        || visit.entered_at != entry.entered_at
                })
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        // An application entering two stages in one batch: the earlier visit is closed by the
        // later one here, and only its first entry closes the visit already stored.
        let mut first: HashMap<&str, &StageEntry> = HashMap::new();
        let mut next_of: Vec<Option<&StageEntry>> = vec![None; entries.len()];
        let mut last_index: HashMap<&str, usize> = HashMap::new();
        for (index, entry) in entries.iter().copied().enumerate() {
            let app = entry.application_id.as_str();
            first.entry(app).or_insert(entry);
            if let Some(previous) = last_index.insert(app, index) {
                next_of[previous] = Some(entry);
            }
        }
        // Only applications with an open visit have one to close: none in a first pass.
        let closing: Vec<(i64, &StageEntry)> = first
            .values()
            .filter_map(|entry| {
                open.get(entry.application_id.as_str())
                    .map(|visit| (visit.id, *entry))
            })
            .collect();
        for chunk in closing.chunks(CHUNK / 2) {
            let mut values: Vec<Value> = vec![true.into()];
            let mut cases = String::new();
            let mut ids = Vec::new();
            for (id, entry) in chunk {
                let n = values.len();
                let _ = write!(cases, " WHEN ${} THEN ${}", n + 1, n + 2);
                values.push((*id).into());
                values.push(entry.entered_at.into());
                ids.push(format!("${}", n + 1));
            }
            let sql = format!(
                "UPDATE stage_visits SET closed = $1, left_at = CASE id{cases} END \
                 WHERE id IN ({})",
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

/// The open visit of each application among `stored` that has one: its latest open stay.
fn open_among(stored: &Members) -> HashMap<String, OpenVisit> {
    let mut open: HashMap<String, OpenVisit> = HashMap::new();
    for (member, stays) in stored {
        let latest = stays
            .iter()
            .filter(|stay| !stay.closed)
            .filter_map(|stay| stay.visit_id.map(|id| (id, stay)))
            .max_by_key(|(id, _)| *id);
        if let Some((id, stay)) = latest {
            open.insert(
                member.application_id.clone(),
                OpenVisit {
                    id,
                    application_id: member.application_id.clone(),
                    stage_id: stay.stage_id.clone(),
                    entered_at: stay.entered_at,
                },
            );
        }
    }
    open
}

/// An application's open stage visit.
#[derive(Debug, sea_orm::FromQueryResult)]
struct OpenVisit {
    id: i64,
    application_id: String,
    stage_id: String,
    entered_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The open visit of each of these entries' applications that has one.
    async fn open_visits<C: ConnectionTrait>(
        &self,
        tx: &C,
        integration: &IntegrationId,
        entries: &[&StageEntry],
    ) -> Result<HashMap<String, OpenVisit>, StoreError> {
        let mut open: HashMap<String, OpenVisit> = HashMap::new();
        if entries.is_empty() {
            return Ok(open);
        }
        if self.backend == Backend::Postgres {
            let ids: BTreeSet<&str> = entries.iter().map(|e| e.application_id.as_str()).collect();
            let visits = OpenVisit::find_by_statement(self.statement(
                "SELECT v.id, v.application_id, v.stage_id, v.entered_at \
                 FROM jsonb_array_elements_text($2::jsonb) AS wanted(id) \
                 CROSS JOIN LATERAL (SELECT id, application_id, stage_id, entered_at \
                 FROM stage_visits WHERE integration_id = $1 AND application_id = wanted.id \
                 AND closed = FALSE ORDER BY id DESC LIMIT 1) AS v",
                vec![integration.as_str().into(), json_ids(ids)],
            ))
            .all(tx)
            .await
            .or_store_error()?;
            for visit in visits {
                open.insert(visit.application_id.clone(), visit);
            }
            return Ok(open);
        }
        for chunk in entries.chunks(CHUNK) {
            let rows = stage_visit::Entity::find()
                .filter(stage_visit::Column::IntegrationId.eq(integration.as_str()))
                .filter(stage_visit::Column::Closed.eq(false))
                .filter(
                    stage_visit::Column::ApplicationId
                        .is_in(chunk.iter().map(|e| e.application_id.as_str())),
                )
                .order_by_asc(stage_visit::Column::Id)
                .all(tx)
                .await
                .or_store_error()?;
            for row in rows {
                open.insert(
                    row.application_id.clone(),
                    OpenVisit {
                        id: row.id,
                        application_id: row.application_id,
                        stage_id: row.stage_id,
                        entered_at: row.entered_at,
                    },
                );
            }
        }
        Ok(open)
    }
}
