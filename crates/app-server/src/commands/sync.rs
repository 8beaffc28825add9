use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::{Claim, IntegrationRecord, Store};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use domain::IntegrationId;
use domain::sync::{PassMode, PassOutcome, PassReport};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::out;
use crate::config::Settings;
use crate::worker::{PassProgress, count_fenced_write, keep_lease};
use crate::{shutdown, wiring};

/// `stagewatch sync --integration ID [--full]`: one pass in the foreground, under the same
/// lease as the workers' passes, so it never runs beside another pass of the integration.
pub(super) async fn run(settings: &Settings, args: &crate::cli::SyncArgs) -> anyhow::Result<()> {
    let id = IntegrationId::parse(args.integration.clone())?;
    let store = wiring::store(settings, settings.database.migrate_on_start).await?;
    let owner = format!("sync-cli:{}", wiring::default_worker_id());
    let lease = settings.sync.lease;
    let claimed = match store
        .claim_integration(&id, &owner, lease, chrono::Utc::now())
        .await?
    {
        Claim::Claimed(record) => record,
        Claim::Unknown => {
            anyhow::bail!("{id} is not registered; run `stagewatch integrations add {id}` first")
        }
        Claim::HeldBy { owner, expires_at } => anyhow::bail!(
            "{id} is being synced by {owner} (its lease expires at {}); try again once that \
             pass is over",
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    };
    let lease_lost = CancellationToken::new();
    let keeper = tokio::spawn(keep_lease(
        store.clone(),
        wiring::clock(),
        claimed.clone(),
        lease,
        lease_lost.clone(),
    ));
    let result = pass(settings, args, &store, &claimed, &lease_lost).await;
    keeper.abort();
    if !lease_lost.is_cancelled() {
        // Leave the schedule as the workers set it (or earlier, if made due meanwhile); a
        // completed full pass counts as the periodic one.
        let full_done = result
            .as_ref()
            .ok()
            .filter(|r| r.mode == PassMode::Full && r.outcome == PassOutcome::Completed)
            .map(|r| r.started_at);
        if let Err(error) = store
            .release_lease(&claimed, claimed.next_sync_at, full_done)
            .await
        {
            tracing::warn!(integration = %id, %error, "could not release the lease; it expires by itself");
        }
    }
    let report = result?;
    print_report(&id, &report);
    Ok(())
}

async fn pass(
    settings: &Settings,
    args: &crate::cli::SyncArgs,
    store: &Store,
    claimed: &IntegrationRecord,
    lease_lost: &CancellationToken,
) -> anyhow::Result<PassReport> {
    let id = &claimed.id;
    let kombo = Arc::new(wiring::kombo(settings, true)?);
    let sync = wiring::sync_service(settings, kombo, store);
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
    let result = tokio::select! {
        result = sync.run_pass(id, claimed.lease_epoch, mode, &observer) => result,
        () = lease_lost.cancelled() => {
            bar.finish_and_clear();
            anyhow::bail!("the lease of {id} was lost during the pass (renewals failed or another process claimed it); the pass stopped");
        }
    };
    bar.finish_and_clear();
    if let Err(error) = &result {
        count_fenced_write(error);
    }
    Ok(result?)
}

fn print_report(id: &IntegrationId, report: &PassReport) {
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
}
