use std::sync::Arc;

use adapters_postgres::{IntegrationRecord, NewIntegration, Registered};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use domain::IntegrationId;

use super::out;
use crate::cli::{AddIntegrationArgs, IntegrationsCommand};
use crate::config::Settings;
use crate::wiring;

pub(super) async fn run(settings: &Settings, command: IntegrationsCommand) -> anyhow::Result<()> {
    let store = wiring::store(settings, settings.database.migrate_on_start).await?;
    match command {
        IntegrationsCommand::Add(args) => add(&store, args).await,
        IntegrationsCommand::List => {
            let integrations = store.list_integrations().await?;
            out(&integrations_table(&integrations).to_string());
            Ok(())
        }
        IntegrationsCommand::ConfirmDeletions { id } => {
            let id = IntegrationId::parse(id)?;
            let kombo = Arc::new(wiring::kombo(settings, false)?);
            let sync = wiring::sync_service(settings, kombo, &store);
            let released = sync.confirm_deletions(&id).await?;
            out(&format!(
                "released {released} held deletions of {id} into the event feed"
            ));
            Ok(())
        }
    }
}

async fn add(store: &adapters_postgres::Store, args: AddIntegrationArgs) -> anyhow::Result<()> {
    let id = IntegrationId::parse(args.id)?;
    let tool = args.tool.or_else(|| id.tool().map(str::to_owned));
    let new = NewIntegration {
        id: id.clone(),
        tool,
        label: args.label,
        poll_interval: args.poll_interval,
    };
    match store.register_integration(&new, chrono::Utc::now()).await? {
        Registered::Created(_) => out(&format!(
            "registered {id}; its first (full) pass runs as soon as `stagewatch serve` is up"
        )),
        Registered::AlreadyRegistered(_) => out(&format!("{id} was already registered")),
    }
    Ok(())
}

/// The table of `integrations list` (and of the demo's summary).
pub(crate) fn integrations_table(integrations: &[IntegrationRecord]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header([
        "integration",
        "status",
        "applications",
        "outcome",
        "stage",
        "last pass",
        "next pass",
        "health",
    ]);
    for record in integrations {
        let capabilities = record.capabilities.as_ref();
        let support = |value: Option<domain::Support>| {
            value.map_or_else(|| "?".to_owned(), |s| format!("{s:?}").to_lowercase())
        };
        let health = match (&record.last_error, record.deletions_held, record.paused) {
            (_, _, true) => "paused".to_owned(),
            (_, true, _) => "deletions held".to_owned(),
            (Some(error), _, _) if record.failing_since.is_some() => {
                format!("failing: {}", error.kind)
            }
            _ => "ok".to_owned(),
        };
        table.add_row([
            record.id.to_string(),
            record
                .status
                .map_or_else(|| "?".to_owned(), |s| format!("{s:?}").to_lowercase()),
            support(capabilities.map(|c| c.applications)),
            support(capabilities.map(|c| c.outcome)),
            support(capabilities.map(|c| c.current_stage)),
            record
                .last_pass_finished_at
                .map_or_else(|| "never".to_owned(), |t| t.format("%F %T").to_string()),
            record.next_sync_at.format("%F %T").to_string(),
            health,
        ]);
    }
    table
}
