use std::sync::Arc;

use crate::config::Settings;
use crate::http::ApiParts;
use crate::worker::{Janitor, Scheduler};
use crate::{delivery, http, shutdown, telemetry, wiring};

/// `stagewatch serve`: the HTTP API and the workers until SIGINT or SIGTERM.
pub(super) async fn run(settings: Settings) -> anyhow::Result<()> {
    let metrics = telemetry::init_metrics();
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
    let scheduler = Arc::new(Scheduler::new(
        store.clone(),
        wiring::sync_service(&settings, kombo.clone(), &store),
        wiring::clock(),
        wiring::scheduler_settings(&settings),
    ));
    let janitor = Janitor::new(
        store.clone(),
        Some(kombo.clone()),
        wiring::clock(),
        settings.retention.clone(),
    );
    let parts = ApiParts {
        store: store.clone(),
        ats: kombo,
        clock: wiring::clock(),
        sync_waker: scheduler.waker(),
        metrics: Some(metrics),
    };
    let (_, api) = http::start(&settings, parts, None, shutdown.clone()).await?;
    if settings.sync.workers {
        tasks.spawn(scheduler.run(shutdown.clone()));
    }
    if settings.webhooks.workers {
        let deliverer = delivery::Deliverer::new(store.clone(), wiring::clock(), &settings)?;
        tasks.spawn(deliverer.run(shutdown.clone()));
    }
    tasks.spawn(janitor.run(shutdown.clone()));
    shutdown.cancelled().await;
    while tasks.join_next().await.is_some() {}
    if let Err(error) = api.await? {
        tracing::warn!(%error, "the HTTP API stopped with an error");
    }
    tracing::info!("stopped");
    Ok(())
}
