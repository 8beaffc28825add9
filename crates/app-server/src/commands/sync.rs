use std::sync::Arc;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use domain::IntegrationId;
use domain::sync::PassMode;
use indicatif::{ProgressBar, ProgressStyle};

use super::out;
use crate::config::Settings;
use crate::worker::PassProgress;
use crate::{shutdown, wiring};

/// `stagewatch sync --integration ID [--full]`: one pass in the foreground.
pub(super) async fn run(settings: &Settings, args: &crate::cli::SyncArgs) -> anyhow::Result<()> {
    let id = IntegrationId::parse(args.integration.clone())?;
    let store = wiring::store(settings, settings.database.migrate_on_start).await?;
    if store.integration(&id).await?.is_none() {
        anyhow::bail!("{id} is not registered; run `stagewatch integrations add {id}` first");
    }
    let kombo = Arc::new(wiring::kombo(settings, true)?);
    let sync = wiring::sync_service(settings, kombo, &store);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("syncing {id}"));
    let observer = PassProgress {
        bar: bar.clone(),
        shutdown: shutdown::on_signal(),
    };
    let mode = if args.full {
        PassMode::Full
    } else {
        PassMode::Incremental
    };
    let result = sync.run_pass(&id, mode, &observer).await;
    bar.finish_and_clear();
    let report = result?;
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["event type", "detected"]);
    for (kind, count) in &report.events_by_kind {
        table.add_row([kind.clone(), count.to_string()]);
    }
    out(&format!(
        "{id}: {:?} pass {:?}: {} pages, {} applications, {} new events",
        report.mode, report.outcome, report.pages, report.applications_seen, report.events_appended
    ));
    if !report.events_by_kind.is_empty() {
        out(&table.to_string());
    }
    for warning in &report.warnings {
        out(&format!("warning: {warning}"));
    }
    Ok(())
}
