//! Figure 3: from a change in the sandbox (which posts a signed `data-changed` webhook) to its
//! event in the feed, through the API's webhook receiver, the scheduler and an incremental pass.

use std::time::{Duration, Instant};

use domain::ports::{EventReader, FeedQuery};

use crate::report::{Figure, format_value, progress};
use crate::server::LiveServer;
use crate::stats::Latencies;

/// A change not in the feed after this long counts as this late.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);
/// Pause between changes, so that each one's pass is measured on its own.
const BETWEEN_CHANGES: Duration = Duration::from_millis(100);

/// Makes `changes` transitions of the live integration one at a time and times each until its
/// event is in the feed; `during` names what else runs meanwhile, for the figures' labels.
pub(crate) async fn run(
    server: &LiveServer,
    changes: usize,
    during: &str,
) -> anyhow::Result<Vec<Figure>> {
    let sandbox = server.sandbox.handle();
    let mut cursor = server.store.feed_head().await?;
    let mut samples = Vec::with_capacity(changes);
    let mut missed = 0;
    progress(&format!(
        "latency: {changes} changes, one at a time{during}"
    ));
    while samples.len() < changes {
        let started = Instant::now();
        let entries = sandbox.advance_in(server.integration.as_str(), 1);
        let Some(change) = entries.iter().find(|entry| entry.change.is_transition()) else {
            // A change with no event of its own (a candidate edit, an interview): let its pass
            // run, then try again.
            tokio::time::sleep(BETWEEN_CHANGES).await;
            continue;
        };
        let detected =
            wait_for_application(server, &mut cursor, &change.application_id, started).await?;
        if let Some(latency) = detected {
            samples.push(latency);
        } else {
            progress(&format!(
                "latency: no event within {} s for {:?} of {}",
                GIVE_UP_AFTER.as_secs(),
                change.change,
                change.application_id
            ));
            missed += 1;
            samples.push(GIVE_UP_AFTER);
        }
        if samples.len() % 25 == 0 {
            progress(&format!("latency: {} of {changes} changes", samples.len()));
        }
        tokio::time::sleep(BETWEEN_CHANGES).await;
    }
    let latencies = Latencies::new(samples);
    let p50 = latencies.percentile_ms(50.0);
    let p99 = latencies.percentile_ms(99.0);
    progress(&format!(
        "latency: p50 {} ms, p99 {} ms, {missed} not detected within {} s",
        format_value(p50),
        format_value(p99),
        GIVE_UP_AFTER.as_secs()
    ));
    Ok(vec![
        Figure::reported(
            "3 detection",
            format!(
                "webhook to feed{during}, p50 of {} changes",
                latencies.len()
            ),
            p50,
            "ms",
        ),
        Figure::reported(
            "3 detection",
            format!(
                "webhook to feed{during}, p99 of {} changes",
                latencies.len()
            ),
            p99,
            "ms",
        )
        .judged("< 1000 ms", p99 < 1000.0),
    ])
}

/// Reads the feed from `cursor` until an event of `application` appears; its delay since
/// `started`, or `None` after [`GIVE_UP_AFTER`].
async fn wait_for_application(
    server: &LiveServer,
    cursor: &mut i64,
    application: &str,
    started: Instant,
) -> anyhow::Result<Option<Duration>> {
    while started.elapsed() < GIVE_UP_AFTER {
        let events = server
            .store
            .read_events(&FeedQuery {
                after: Some(*cursor),
                limit: 1000,
                types: Vec::new(),
                integration: None,
            })
            .await?;
        for event in &events {
            *cursor = event.sequence;
            let about = event.event.application.as_ref().map(|app| app.id.as_str());
            if about == Some(application) {
                return Ok(Some(started.elapsed()));
            }
        }
        if events.is_empty() {
            server
                .store
                .wait_for_events(*cursor, Duration::from_millis(500))
                .await?;
        }
    }
    Ok(None)
}
