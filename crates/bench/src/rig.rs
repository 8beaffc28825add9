//! What every benchmark sets up: the sandbox's integrations registered in a store, a Kombo
//! client and sync service over them, and a wait for their passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_kombo::{KomboClient, KomboConfig};
use adapters_postgres::{Claim, NewIntegration, Store};
use anyhow::Context;
use domain::IntegrationId;
use domain::ports::{LeaseEpoch, SystemClock};
use domain::sync::{SyncService, SyncSettings};
use kombo_sandbox::RunningSandbox;
use sea_orm::{FromQueryResult, Statement};

use crate::report::progress;

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

#[derive(Debug, FromQueryResult)]
struct Passes {
    finished: i64,
    failed: i64,
}

/// Waits (at most `within`) until `n` of the integrations whose id is `LIKE` `ids` have
/// finished a pass since `since`, showing progress every 5 s; one of them that failed a pass
/// ends the wait with an error.
pub(crate) async fn wait_for_passes(
    store: &Store,
    ids: &str,
    since: chrono::DateTime<chrono::Utc>,
    n: usize,
    what: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let done = Passes::find_by_statement(Statement::from_sql_and_values(
            store.connection().get_database_backend(),
            "SELECT COUNT(*) FILTER (WHERE last_pass_finished_at >= $1) AS finished, \
             COUNT(last_error) AS failed FROM integrations WHERE id LIKE $2",
            [since.into(), ids.into()],
        ))
        .one(store.connection())
        .await?
        .context("a row")?;
        if done.failed > 0 {
            anyhow::bail!("{} integration(s) failed a pass", done.failed);
        }
        if usize::try_from(done.finished).unwrap_or(0) >= n {
            return Ok(());
        }
        if started.elapsed() > within {
            anyhow::bail!(
                "only {} of {n} {what} finished within {} s",
                done.finished,
                within.as_secs()
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            progress(&format!("{} of {n} {what}", done.finished));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
