use std::sync::Arc;

use crate::config::Settings;
use crate::worker::Scheduler;
use crate::{shutdown, telemetry, wiring};

/// `stagewatch serve`: the workers (and the HTTP API) until SIGINT or SIGTERM.
pub(super) async fn run(settings: Settings) -> anyhow::Result<()> {
    let _metrics = telemetry::init_metrics();
    let store = wiring::store(&settings, settings.database.migrate_on_start).await?;
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database schema is behind ({} pending migrations); run `stagewatch migrate`",
            pending.len()
        );
    }
    let kombo = Arc::new(wiring::kombo(&settings, settings.sync.workers)?);
    let shutdown = shutdown::on_signal();
    let mut tasks = tokio::task::JoinSet::new();
    if settings.sync.workers {
        let sync = wiring::sync_service(&settings, Arc::clone(&kombo), &store);
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            sync,
            wiring::clock(),
            wiring::scheduler_settings(&settings),
        ));
        tasks.spawn(scheduler.run(shutdown.clone()));
    }
    shutdown.cancelled().await;
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}
