//! The scenarios. Each builds its own [`Rig`], does its harm while the sandbox changes data
//! under Kombo's faults, and ends with [`Rig::finish`]'s checks.

use std::time::{Duration, Instant};

use kombo_sandbox::{Endpoint, Fault, FaultRule, Trigger};
use rand::Rng;

use crate::receiver::{Mode, Receiver};
use crate::rig::{Activity, Options, Outcome, Rig, Setup};

/// Every scenario by name, in the order of a run.
pub(crate) const ALL: [&str; 6] = [
    "sigkill",
    "replicas",
    "frozen-replica",
    "postgres-restart",
    "kombo-faults",
    "webhook-receiver",
];

pub(crate) async fn run(options: &Options, name: &str) -> anyhow::Result<Outcome> {
    match name {
        "sigkill" => sigkill(options).await,
        "replicas" => replicas(options).await,
        "frozen-replica" => frozen_replica(options).await,
        "postgres-restart" => postgres_restart(options).await,
        "kombo-faults" => kombo_faults(options).await,
        "webhook-receiver" => webhook_receiver(options).await,
        other => anyhow::bail!("no scenario {other}; known: {}", ALL.join(", ")),
    }
}

const TICK: Duration = Duration::from_millis(300);

fn activity(rig: &Rig) -> Activity {
    Activity::start(rig.control.clone(), TICK, 2)
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// SIGKILL of `serve` at seeded random moments, restarted at once each time.
async fn sigkill(options: &Options) -> anyhow::Result<Outcome> {
    let mut rig = Rig::new(options, "sigkill", &Setup::replicas(1)).await?;
    let activity = activity(&rig);
    let kills = options.pick(22, 8);
    for _ in 0..kills {
        let uptime = rig.rng.random_range(300..2500);
        sleep_ms(uptime).await;
        rig.kill(0).await;
        rig.start(0).await?;
    }
    sleep_ms(3000).await;
    let changes = activity.stop().await;
    rig.chaos.push(format!(
        "{kills} SIGKILLs of serve, {changes} sandbox changes"
    ));
    rig.finish(None).await
}

/// Two, then three replicas on one database, one of them killed again and again, and
/// `stagewatch sync --full` run beside them (it takes no lease unless the product makes it).
async fn replicas(options: &Options) -> anyhow::Result<Outcome> {
    let mut setup = Setup::replicas(3);
    setup.start = vec![0, 1];
    let mut rig = Rig::new(options, "replicas", &setup).await?;
    let activity = activity(&rig);
    let phase = Duration::from_secs(options.pick(20, 8));
    let mut kills = 0;
    let mut syncs = Vec::new();
    for (count, victim) in [(2, 1), (3, 2)] {
        if count == 3 {
            rig.start(2).await?;
        }
        let integrations = rig.integrations.clone();
        for (index, integration) in integrations.iter().enumerate() {
            syncs.push(rig.spawn_full_sync(integration, &format!("{count}-{index}")));
        }
        let end = Instant::now() + phase;
        // Bounded by the phase's length; each round takes at least a second.
        while Instant::now() < end {
            let uptime = rig.rng.random_range(1000..3000);
            sleep_ms(uptime).await;
            rig.kill(victim).await;
            kills += 1;
            sleep_ms(300).await;
            rig.start(victim).await?;
        }
        // Another full sync while a replica dies.
        let first = rig.integrations[0].clone();
        syncs.push(rig.spawn_full_sync(&first, &format!("{count}-late")));
    }
    let mut failed_syncs = 0;
    let total_syncs = syncs.len();
    for sync in syncs {
        if !sync.await.unwrap_or(false) {
            failed_syncs += 1;
        }
    }
    let changes = activity.stop().await;
    rig.chaos.push(format!(
        "2 then 3 replicas, {kills} SIGKILLs, {total_syncs} `sync --full` beside them \
         ({failed_syncs} failed), {changes} sandbox changes"
    ));
    rig.finish(None).await
}

/// A fingerprint of everything stored for one integration, table by table: its row, its
/// applications, its events and its held changes.
fn fingerprint(rig: &Rig, integration: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut parts = Vec::new();
    for (table, column) in [
        ("integrations", "id"),
        ("applications", "integration_id"),
        ("events", "integration_id"),
        ("held_changes", "integration_id"),
    ] {
        let digest = rig.database.query(&format!(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) \
             FROM {table} t WHERE {column} = '{integration}'"
        ))?;
        parts.push((table, digest));
    }
    Ok(parts)
}

/// The integration `owner` holds a live lease on, if any.
fn leased_by(rig: &Rig, owner: &str) -> anyhow::Result<Option<String>> {
    let found = rig.database.query(&format!(
        "SELECT id FROM integrations WHERE lease_owner = '{owner}' \
         AND lease_expires_at > now() ORDER BY id LIMIT 1"
    ))?;
    Ok(Some(found.trim().to_owned()).filter(|id| !id.is_empty()))
}

/// A replica frozen with SIGSTOP in the middle of a (slowed) pass, past its lease, while
/// another takes over; then the other dies and the frozen one wakes with SIGCONT. While the
/// dead one's lease still runs nobody holds the integration legitimately, so nothing stored for
/// it may change.
async fn frozen_replica(options: &Options) -> anyhow::Result<Outcome> {
    let mut setup = Setup::replicas(2);
    // r1 is frozen; r0, which takes over, receives Kombo's webhooks (a frozen receiver would
    // stall the sandbox's webhook queue).
    setup.start = vec![1];
    setup.env = vec![("STAGEWATCH_SYNC__PAGE_SIZE", "5".to_owned())];
    setup.faults = vec![
        FaultRule::new(
            Fault::Slow(Duration::from_millis(400)),
            Trigger::Probability(1.0),
        )
        .on(&[Endpoint::Applications]),
    ];
    let mut rig = Rig::new(options, "frozen-replica", &setup).await?;
    let mut activity = Some(activity(&rig));

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut target = None;
    while Instant::now() < deadline && target.is_none() {
        target = leased_by(&rig, "r1")?;
        sleep_ms(100).await;
    }
    let Some(integration) = target else {
        rig.problems
            .push("r1 never took a lease to freeze in".into());
        return rig.finish(None).await;
    };
    // In the middle of its pass (pages come every 400 ms).
    sleep_ms(1200).await;
    rig.replicas[1].signal("STOP")?;
    let frozen_at = Instant::now();
    rig.start(0).await?;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut taken_over = false;
    while Instant::now() < deadline && !taken_over {
        taken_over = leased_by(&rig, "r0")?.is_some_and(|id| id == integration);
        sleep_ms(100).await;
    }
    if !taken_over {
        rig.problems.push(format!(
            "r0 did not take {integration} over from the frozen r1 within 40 s"
        ));
    }
    // The other replica works on while the frozen one sleeps.
    sleep_ms(4000).await;
    let changes = match activity.take() {
        Some(activity) => activity.stop().await,
        None => 0,
    };
    sleep_ms(1500).await;
    rig.kill(0).await;
    let before = fingerprint(&rig, &integration)?;
    let remaining = rig.database.query(&format!(
        "SELECT greatest(0, extract(epoch FROM lease_expires_at - now())) \
         FROM integrations WHERE id = '{integration}' AND lease_owner = 'r0'"
    ))?;
    let remaining = Duration::from_secs_f64(remaining.trim().parse::<f64>().unwrap_or(0.0));
    let frozen_for = frozen_at.elapsed();
    rig.replicas[1].signal("CONT")?;
    let window = remaining
        .saturating_sub(Duration::from_millis(300))
        .min(Duration::from_secs(4));
    tokio::time::sleep(window).await;
    let after = fingerprint(&rig, &integration)?;
    if window < Duration::from_millis(500) {
        rig.problems.push(format!(
            "the woken replica was watched for only {window:?}: the test proves nothing"
        ));
    } else {
        let changed: Vec<&str> = before
            .iter()
            .zip(&after)
            .filter(|(old, new)| old != new)
            .map(|((table, _), _)| *table)
            .collect();
        if !changed.is_empty() {
            rig.problems.push(format!(
                "r1, frozen {:.1} s with a 5 s lease, wrote to {integration} ({}) within {:.1} s \
                 of waking, while r0's lease still held it",
                frozen_for.as_secs_f64(),
                changed.join(", "),
                window.as_secs_f64()
            ));
        }
    }
    rig.scrape_refused_writes(1).await;
    rig.start(0).await?;
    let activity = self::activity(&rig);
    sleep_ms(3000).await;
    let more = activity.stop().await;
    rig.chaos.push(format!(
        "r1 frozen {:.1} s mid-pass (lease 5 s), woken and watched {:.1} s, {} sandbox changes",
        frozen_for.as_secs_f64(),
        window.as_secs_f64(),
        changes + more
    ));
    rig.finish(None).await
}

/// PostgreSQL goes away mid-run: the whole cluster restarted (in CI or with
/// `--restart-postgres`), or else this database cut off (connections refused and terminated)
/// for three seconds. The replicas must recover by themselves.
async fn postgres_restart(options: &Options) -> anyhow::Result<Outcome> {
    let mut rig = Rig::new(options, "postgres-restart", &Setup::replicas(2)).await?;
    let activity = activity(&rig);
    let api = rig.api(0);
    let watch = tokio::spawn(async move {
        // Readiness, every 100 ms, for at most 45 s or until it has gone down and up again.
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(45);
        while Instant::now() < end {
            let ready = api.ready().await;
            if seen.last() != Some(&ready) {
                seen.push(ready);
            }
            if seen.len() >= 3 && seen.ends_with(&[false, true]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    });
    sleep_ms(options.pick(6000, 3000)).await;
    let how = if options.restart_postgres {
        // Blocking on purpose: nothing else of the rig should run while the cluster is down.
        tokio::task::block_in_place(|| crate::db::restart_cluster(Duration::from_secs(2)))?;
        "PostgreSQL cluster stopped 2 s and started (pg_ctlcluster)".to_owned()
    } else {
        let terminated = rig.database.cut_off()?;
        // Sessions that slipped in before the cut-off are ended again.
        for _ in 0..6 {
            sleep_ms(500).await;
            rig.database.terminate_backends()?;
        }
        rig.database.reconnect()?;
        format!("database cut off 3 s, {terminated} sessions terminated")
    };
    let readiness = watch.await.unwrap_or_default();
    if !readiness.ends_with(&[false, true]) {
        rig.problems.push(format!(
            "/readyz of r0 did not go false then true (saw {readiness:?})"
        ));
    }
    // Every replica ready again, and the feed growing again without anybody's help.
    let before = rig.api(0).feed().await.map_or(0, |events| events.len());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut grew = false;
    while Instant::now() < deadline && !grew {
        sleep_ms(500).await;
        grew = rig
            .api(1)
            .feed()
            .await
            .is_ok_and(|events| events.len() > before);
    }
    if !grew {
        rig.problems
            .push("no event appended within 30 s after the database came back".into());
    }
    for index in 0..rig.replicas.len() {
        if !rig.api(index).ready().await {
            rig.problems.push(format!(
                "r{index} is not ready after the database came back"
            ));
        }
    }
    sleep_ms(2000).await;
    let changes = activity.stop().await;
    rig.chaos.push(format!(
        "{how}, readiness {readiness:?}, {changes} sandbox changes"
    ));
    rig.finish(None).await
}

/// Nothing but Kombo's faults (present in every scenario): two replicas, no process harm.
async fn kombo_faults(options: &Options) -> anyhow::Result<Outcome> {
    let mut rig = Rig::new(options, "kombo-faults", &Setup::replicas(2)).await?;
    let activity = activity(&rig);
    sleep_ms(options.pick(20_000, 8000)).await;
    let changes = activity.stop().await;
    rig.chaos
        .push(format!("2 replicas, {changes} sandbox changes"));
    rig.finish(None).await
}

/// The product's webhook receiver is down, then slow, then flapping, then up: every event must
/// be acknowledged at least once, every delivery correctly signed.
async fn webhook_receiver(options: &Options) -> anyhow::Result<Outcome> {
    let mut receiver = Receiver::start().await?;
    receiver.set_mode(Mode::Down).await?;
    let mut setup = Setup::replicas(1);
    setup.receiver_url = Some(receiver.url());
    let mut rig = Rig::new(options, "webhook-receiver", &setup).await?;
    receiver.set_secret(rig.endpoint_secret.clone().unwrap_or_default());
    let activity = activity(&rig);
    let phase = options.pick(6000, 3000);
    sleep_ms(phase).await;
    receiver
        .set_mode(Mode::Slow(Duration::from_millis(1600)))
        .await?;
    sleep_ms(phase).await;
    receiver
        .set_mode(Mode::Flapping(Duration::from_millis(700)))
        .await?;
    sleep_ms(phase + 2000).await;
    receiver.set_mode(Mode::Up).await?;
    let changes = activity.stop().await;
    rig.chaos.push(format!(
        "receiver down {}s, slow {}s (up to 1.6 s, timeout 1 s), flapping {}s, then up; \
         {changes} sandbox changes",
        phase / 1000,
        phase / 1000,
        (phase + 2000) / 1000
    ));
    rig.finish(Some(&receiver)).await
}
