//! What every benchmark sets up: the sandbox's integrations registered in a store, and a Kombo
//! client and sync service over them.

use std::sync::Arc;
use std::time::Duration;

use adapters_kombo::{KomboClient, KomboConfig};
use adapters_postgres::{Claim, NewIntegration, Store};
use anyhow::Context;
use domain::IntegrationId;
use domain::ports::{LeaseEpoch, SystemClock};
use domain::sync::{SyncService, SyncSettings};
use kombo_sandbox::RunningSandbox;

/// A Kombo client for the sandbox, with limits high enough that the client is never what a
/// benchmark measures.
pub(crate) fn kombo_client(sandbox: &RunningSandbox) -> anyhow::Result<Arc<KomboClient>> {
    let mut config = KomboConfig::for_local_sandbox(
        url::Url::parse(&sandbox.base_url()).context("the sandbox's URL")?,
        secrecy::SecretString::from(sandbox.api_key().to_owned()),
    );
    // A page of a large integration may take a while on a loaded machine.
    config.timeout = Duration::from_secs(60);
    Ok(Arc::new(KomboClient::new(config)?))
}

/// The sync service over the sandbox and the store, with the default page size. The watermark
/// margin is zero: the sandbox
/// and stagewatch share one clock, and a margin would re-read every change of the last minutes
/// on each pass, which is what the incremental benchmark must not count.
pub(crate) fn sync_service(kombo: Arc<KomboClient>, store: &Store) -> SyncService {
    SyncService::new(
        kombo,
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        SyncSettings {
            page_size: app_server::config::Settings::default().sync.page_size,
            watermark_margin: chrono::Duration::zero(),
            ..SyncSettings::default()
        },
    )
}

/// Registers the sandbox integration `id` in the store.
/// Claims the integration's lease for the bench's passes, as a worker would, and returns its
/// fencing token.
pub(crate) async fn claim(store: &Store, id: &IntegrationId) -> anyhow::Result<LeaseEpoch> {
    match store
        .claim_integration(
            id,
            "bench",
            Duration::from_secs(24 * 3600),
            chrono::Utc::now(),
        )
        .await?
    {
        Claim::Claimed(record) => Ok(record.lease_epoch),
        other => anyhow::bail!("could not claim {id}: {other:?}"),
    }
}

pub(crate) async fn register(store: &Store, id: &str) -> anyhow::Result<IntegrationId> {
    let id = IntegrationId::parse(id)?;
    store
        .register_integration(
            &NewIntegration {
                id: id.clone(),
                tool: id.tool().map(str::to_owned),
                label: None,
                poll_interval: None,
            },
            chrono::Utc::now(),
        )
        .await?;
    Ok(id)
}
