//! `stagewatch sync --integration ID`, run as the real binary: it takes the integration's
//! lease like a worker, and refuses to run beside another pass, naming the holder.

mod common;

use std::process::Command;

use sea_orm::ConnectionTrait as _;
use std::time::Duration;

use adapters_postgres::{Claim, NewIntegration};
use common::TestDatabase;
use domain::IntegrationId;
use kombo_sandbox::{AtsProfile, IntegrationConfig, Sandbox, SandboxConfig};

const INTEGRATION: &str = "acme-greenhouse";

fn stagewatch(database_url: &str, kombo_url: &str, api_key: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stagewatch"));
    command
        .env_clear()
        .env("STAGEWATCH_DATABASE__URL", database_url)
        .env("STAGEWATCH_KOMBO__BASE_URL", kombo_url)
        .env("STAGEWATCH_KOMBO__API_KEY", api_key)
        .env("STAGEWATCH_LOG__LEVEL", "warn")
        .current_dir(std::env::temp_dir());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_on_demand_takes_the_lease_and_names_the_holder_when_taken() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let sandbox = Sandbox::start(
        SandboxConfig::new("sandbox-key")
            .with_integration(
                IntegrationConfig::new(INTEGRATION, "greenhouse", AtsProfile::Full).with_jobs(2, 3),
            )
            .with_manual_clock(),
    )
    .await
    .expect("sandbox");
    let id = IntegrationId::parse(INTEGRATION).unwrap();
    store
        .register_integration(
            &NewIntegration {
                id: id.clone(),
                tool: None,
                label: None,
                poll_interval: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();

    // A worker of `serve` holds the lease.
    let Claim::Claimed(held) = store
        .claim_integration(
            &id,
            "replica-7",
            Duration::from_secs(600),
            chrono::Utc::now(),
        )
        .await
        .unwrap()
    else {
        panic!("the lease is free")
    };
    let refused = tokio::task::spawn_blocking({
        let mut command = stagewatch(&database.url, &sandbox.base_url(), sandbox.api_key());
        command.args(["sync", "--integration", INTEGRATION]);
        move || command.output().expect("run stagewatch")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "must not sync beside the holder");
    assert!(stderr.contains("replica-7"), "names the holder: {stderr}");
    assert!(stderr.contains("expires at"), "says when: {stderr}");
    assert_eq!(store.feed_head().await.unwrap(), 0, "nothing was written");

    // Once the worker released it, the command syncs under its own lease and gives it back.
    store
        .release_lease(&held, held.next_sync_at, None)
        .await
        .unwrap();
    let synced = tokio::task::spawn_blocking({
        let mut command = stagewatch(&database.url, &sandbox.base_url(), sandbox.api_key());
        command.args(["sync", "--integration", INTEGRATION, "--full"]);
        move || command.output().expect("run stagewatch")
    })
    .await
    .unwrap();
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    assert!(
        store.feed_head().await.unwrap() > 0,
        "the pass stored its events"
    );
    let record = store.integration(&id).await.unwrap().unwrap();
    assert_eq!(record.lease_owner, None, "the lease is given back");
    assert!(
        record.lease_epoch > held.lease_epoch,
        "the command claimed the lease anew"
    );
    assert!(record.last_full_pass_at.is_some());

    // The pass kept the funnel totals; `migrate --recount-funnel-totals` recounts them the same
    // from the applications and stays.
    let kept = funnel_totals(&store).await;
    assert!(!kept.is_empty(), "the pass kept funnel totals");
    store
        .connection()
        .execute_unprepared("DELETE FROM funnel_totals")
        .await
        .unwrap();
    let recounted = tokio::task::spawn_blocking({
        let mut command = stagewatch(&database.url, &sandbox.base_url(), sandbox.api_key());
        command.args(["migrate", "--recount-funnel-totals"]);
        move || command.output().expect("run stagewatch")
    })
    .await
    .unwrap();
    assert!(
        recounted.status.success(),
        "{}",
        String::from_utf8_lossy(&recounted.stderr)
    );
    assert!(String::from_utf8_lossy(&recounted.stdout).contains("funnel totals recounted"));
    assert_eq!(funnel_totals(&store).await, kept);
    sandbox.shutdown().await;
}

/// Every funnel total that is not zero, its slots summed, in key order.
async fn funnel_totals(
    store: &adapters_postgres::Store,
) -> Vec<(String, String, i64, String, i64)> {
    let rows = store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT integration_id, job_id, created_day, total_key, SUM(n) AS n \
             FROM funnel_totals GROUP BY integration_id, job_id, created_day, total_key \
             HAVING SUM(n) <> 0 ORDER BY integration_id, job_id, created_day, total_key",
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            (
                row.try_get("", "integration_id").unwrap(),
                row.try_get("", "job_id").unwrap(),
                row.try_get("", "created_day").unwrap(),
                row.try_get("", "total_key").unwrap(),
                row.try_get("", "n").unwrap(),
            )
        })
        .collect()
}
