//! The initial schema: every table stagewatch uses, with an index for each query it makes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, integer_null, text, text_null,
    timestamp_with_time_zone as at, timestamp_with_time_zone_null as at_null,
};

#[derive(Debug, DeriveMigrationName)]
pub(super) struct Migration;

// The trait declares `&SchemaManager` with an elided lifetime; naming it breaks the signature.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        // The feed's sequence counter: one row, updated by every append in its transaction.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table("feed_counter")
                    .columns(["id", "last_sequence"])
                    .values_panic([1.into(), 0_i64.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(*table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

const TABLES: [&str; 13] = [
    "integrations",
    "jobs",
    "stages",
    "applications",
    "stage_visits",
    "held_changes",
    "events",
    "feed_counter",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
    "idempotency_keys",
    "kombo_webhooks",
];

fn tables() -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table("integrations")
            .col(text("id").primary_key())
            .col(text_null("tool"))
            .col(text_null("label"))
            .col(text_null("status"))
            .col(text_null("capabilities"))
            .col(at_null("watermark"))
            .col(big_integer_null("poll_interval_seconds"))
            .col(boolean("paused").default(false))
            .col(at("next_sync_at"))
            .col(at_null("last_pass_started_at"))
            .col(at_null("last_pass_finished_at"))
            .col(at_null("last_full_pass_at"))
            .col(at_null("failing_since"))
            .col(text_null("last_error"))
            .col(at_null("last_error_at"))
            .col(boolean("deletions_held").default(false))
            .col(text_null("lease_owner"))
            .col(at_null("lease_expires_at"))
            .col(at("created_at"))
            .to_owned(),
        Table::create()
            .table("jobs")
            .col(text("integration_id"))
            .col(text("job_id"))
            .col(text_null("remote_id"))
            .col(text_null("name"))
            .primary_key(Index::create().col("integration_id").col("job_id"))
            .to_owned(),
        Table::create()
            .table("stages")
            .col(text("integration_id"))
            .col(text("job_id"))
            .col(text("stage_id"))
            .col(integer("position"))
            .col(text_null("remote_id"))
            .col(text_null("name"))
            .col(integer_null("stage_index"))
            .col(text_null("status"))
            .primary_key(
                Index::create()
                    .col("integration_id")
                    .col("job_id")
                    .col("stage_id"),
            )
            .to_owned(),
        Table::create()
            .table("applications")
            .col(text("integration_id"))
            .col(text("application_id"))
            .col(text_null("remote_id"))
            .col(text_null("job_id"))
            .col(text_null("job_name"))
            .col(text_null("candidate_id"))
            .col(text_null("candidate_name"))
            .col(text_null("current_stage_id"))
            .col(text_null("current_stage_name"))
            .col(integer_null("current_stage_index"))
            .col(at_null("stage_unknown_since"))
            .col(text_null("outcome"))
            .col(at_null("outcome_unknown_since"))
            .col(text_null("rejection_reason_name"))
            .col(at_null("rejected_at"))
            .col(at("changed_at"))
            .col(at_null("deleted_at"))
            .col(at_null("remote_created_at"))
            .col(text("origin"))
            .col(at("first_seen_at"))
            .col(at("last_seen_at"))
            .col(at_null("entered_current_stage_at"))
            .primary_key(Index::create().col("integration_id").col("application_id"))
            .to_owned(),
        Table::create()
            .table("stage_visits")
            .col(big_pk_auto("id"))
            .col(text("integration_id"))
            .col(text("application_id"))
            .col(text("stage_id"))
            .col(text_null("stage_name"))
            .col(integer_null("stage_index"))
            .col(at_null("entered_at"))
            .col(at_null("left_at"))
            .col(boolean("closed").default(false))
            .to_owned(),
        Table::create()
            .table("held_changes")
            .col(text("integration_id"))
            .col(text("application_id"))
            .col(text("application"))
            .col(text("events"))
            .col(text_null("stage"))
            .col(at_null("stage_entered_at"))
            .col(at("held_at"))
            .primary_key(Index::create().col("integration_id").col("application_id"))
            .to_owned(),
        Table::create()
            .table("events")
            .col(big_integer("sequence").primary_key())
            .col(text("event_id").unique_key())
            .col(text("event_type"))
            .col(text_null("integration_id"))
            .col(text_null("application_id"))
            .col(at("occurred_at"))
            .col(at("detected_at"))
            .col(text("payload"))
            .to_owned(),
        Table::create()
            .table("feed_counter")
            .col(integer("id").primary_key())
            .col(big_integer("last_sequence"))
            .to_owned(),
        Table::create()
            .table("webhook_endpoints")
            .col(text("id").primary_key())
            .col(text("url"))
            .col(text_null("description"))
            .col(text("event_types"))
            .col(text("secret"))
            .col(boolean("enabled").default(true))
            .col(text_null("disabled_reason"))
            .col(at("created_at"))
            .col(at("updated_at"))
            .to_owned(),
        Table::create()
            .table("webhook_deliveries")
            .col(big_pk_auto("id"))
            .col(text("endpoint_id"))
            .col(big_integer("event_sequence"))
            .col(text("event_id"))
            .col(text("status"))
            .col(integer("attempts").default(0))
            .col(at_null("next_attempt_at"))
            .col(at_null("lease_expires_at"))
            .col(integer_null("last_status_code"))
            .col(text_null("last_error"))
            .col(at("created_at"))
            .col(at_null("finished_at"))
            .foreign_key(
                ForeignKey::create()
                    .from("webhook_deliveries", "endpoint_id")
                    .to("webhook_endpoints", "id")
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned(),
        Table::create()
            .table("webhook_attempts")
            .col(big_pk_auto("id"))
            .col(big_integer("delivery_id"))
            .col(text("endpoint_id"))
            .col(at("attempted_at"))
            .col(integer_null("status_code"))
            .col(big_integer("latency_ms"))
            .col(text_null("response_excerpt"))
            .col(text_null("error"))
            .foreign_key(
                ForeignKey::create()
                    .from("webhook_attempts", "delivery_id")
                    .to("webhook_deliveries", "id")
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned(),
        Table::create()
            .table("idempotency_keys")
            .col(text("scope"))
            .col(text("key"))
            .col(text("request_hash"))
            .col(text("state"))
            .col(integer_null("response_status"))
            .col(text_null("response_body"))
            .col(at("created_at"))
            .col(at_null("completed_at"))
            .primary_key(Index::create().col("scope").col("key"))
            .to_owned(),
        Table::create()
            .table("kombo_webhooks")
            .col(text("webhook_id").primary_key())
            .col(at("received_at"))
            .to_owned(),
    ]
}

fn index(
    name: &'static str,
    table: &'static str,
    columns: &[&'static str],
) -> IndexCreateStatement {
    let mut index = Index::create().name(name).table(table).to_owned();
    for column in columns {
        index.col(*column);
    }
    index
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        // claim_due: unpaused integrations by next sync time.
        index(
            "idx_integrations_due",
            "integrations",
            &["paused", "next_sync_at"],
        ),
        // The API's application list: newest change first, per integration, job or stage.
        index(
            "idx_applications_changed",
            "applications",
            &["changed_at", "integration_id", "application_id"],
        ),
        index(
            "idx_applications_job",
            "applications",
            &["integration_id", "job_id", "current_stage_id"],
        ),
        // Timelines and closing the open visit.
        index(
            "idx_stage_visits_application",
            "stage_visits",
            &["integration_id", "application_id", "id"],
        ),
        // Feed filters by type and by integration, read in sequence order.
        index("idx_events_type", "events", &["event_type", "sequence"]),
        index(
            "idx_events_integration",
            "events",
            &["integration_id", "sequence"],
        ),
        // The outbox worker: due deliveries; the API: deliveries per endpoint.
        index(
            "idx_deliveries_due",
            "webhook_deliveries",
            &["status", "next_attempt_at"],
        ),
        index(
            "idx_deliveries_endpoint",
            "webhook_deliveries",
            &["endpoint_id", "id"],
        ),
        index(
            "idx_attempts_delivery",
            "webhook_attempts",
            &["delivery_id", "id"],
        ),
        index(
            "idx_kombo_webhooks_received",
            "kombo_webhooks",
            &["received_at"],
        ),
    ]
}
