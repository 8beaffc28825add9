//! Builds the domain's services over the adapters, from the configuration.

use std::sync::Arc;

use adapters_kombo::{KomboClient, KomboConfig};
use adapters_postgres::{Store, StoreOptions};
use anyhow::Context;
use domain::ports::{Clock, SystemClock};
use domain::sync::{DeletionGuard, SyncService};

use crate::config::Settings;
use crate::worker::{ScheduleSettings, SchedulerSettings};

/// Opens the store; applies migrations when `migrate` is set.
pub async fn store(settings: &Settings, migrate: bool) -> anyhow::Result<Store> {
    Store::connect_with(StoreOptions {
        url: settings.database.url.expose().to_owned(),
        max_connections: settings.database.max_connections,
        migrate,
    })
    .await
    .context("could not open the database (database.url)")
}

/// The Kombo client. `require_key` refuses an empty `kombo.api_key`.
pub fn kombo(settings: &Settings, require_key: bool) -> anyhow::Result<KomboClient> {
    if require_key && settings.kombo.api_key.is_empty() {
        anyhow::bail!(
            "kombo.api_key is not set: put your Kombo API key in stagewatch.toml or in \
             STAGEWATCH_KOMBO__API_KEY"
        );
    }
    let base_url = url::Url::parse(&settings.kombo.base_url).context("kombo.base_url")?;
    let mut config = KomboConfig::new(
        base_url,
        secrecy::SecretString::from(settings.kombo.api_key.expose().to_owned()),
    );
    config.timeout = settings.kombo.timeout;
    config.max_retries = settings.kombo.max_retries;
    config.max_concurrency = settings.kombo.max_concurrency;
    config.requests_per_second = settings.kombo.requests_per_second;
    config.requests_per_second_per_integration = settings.kombo.requests_per_second_per_integration;
    KomboClient::new(config).context("could not build the Kombo client")
}

/// The sync use case over the Kombo client and the store.
pub fn sync_service(settings: &Settings, kombo: Arc<KomboClient>, store: &Store) -> SyncService {
    SyncService::new(
        kombo,
        Arc::new(store.clone()),
        clock(),
        domain::sync::SyncSettings {
            page_size: settings.sync.page_size,
            watermark_margin: chrono::Duration::from_std(settings.sync.watermark_margin)
                .unwrap_or(chrono::Duration::minutes(2)),
            deletion_guard: DeletionGuard {
                min_count: settings.sync.deletion_guard_min_count,
                max_share: settings.sync.deletion_guard_share,
            },
        },
    )
}

pub fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The scheduler's settings from the configuration.
pub fn scheduler_settings(settings: &Settings) -> SchedulerSettings {
    let sync = &settings.sync;
    SchedulerSettings {
        schedule: ScheduleSettings {
            poll_interval: sync.poll_interval,
            jitter: sync.jitter,
            full_pass_every: sync.full_pass_every,
            max_backoff: sync.max_backoff,
            not_ready_retry: sync.not_ready_retry,
        },
        concurrency: sync.concurrency,
        lease: sync.lease,
        claim_every: sync.claim_every,
        owner: if sync.worker_id.is_empty() {
            default_worker_id()
        } else {
            sync.worker_id.clone()
        },
    }
}

/// `host-pid-random`: unique per process, readable in the integrations table.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "stagewatch".to_owned());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}
