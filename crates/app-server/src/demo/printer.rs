use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use adapters_postgres::Store;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use domain::event::{Direction, EventKind};
use domain::ports::{EventReader, FeedQuery};
use domain::{FeedEvent, StageRef};
use tokio_util::sync::CancellationToken;

use crate::commands::out;

/// Follows the event feed and prints each event as one line.
pub(super) struct Printer {
    store: Store,
}

/// Events printed, by integration and type.
#[derive(Debug, Default)]
pub(super) struct Tally {
    counts: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Tally {
    pub(super) fn table(&self) -> Table {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        table.set_header(["integration", "event type", "events"]);
        for (integration, kinds) in &self.counts {
            for (kind, count) in kinds {
                table.add_row([integration.clone(), kind.clone(), count.to_string()]);
            }
        }
        table
    }
}

impl Printer {
    pub(super) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Prints until `shutdown`, then drains what is already stored and returns the tally.
    pub(super) async fn follow(&self, shutdown: CancellationToken) -> anyhow::Result<Tally> {
        let mut tally = Tally::default();
        let mut after = 0;
        loop {
            let page = self
                .store
                .read_events(&FeedQuery {
                    after: Some(after),
                    limit: 500,
                    types: Vec::new(),
                    integration: None,
                })
                .await?;
            for event in &page {
                out(&describe(event));
                let integration = event
                    .event
                    .integration
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |i| i.id.to_string());
                *tally
                    .counts
                    .entry(integration)
                    .or_default()
                    .entry(event.event.kind.name().to_owned())
                    .or_default() += 1;
                after = event.sequence;
            }
            if !page.is_empty() {
                continue;
            }
            if shutdown.is_cancelled() {
                return Ok(tally);
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                result = self.store.wait_for_events(after, Duration::from_secs(1)) => result?,
            }
        }
    }
}

/// `12:00:03  acme-greenhouse  Jane Doe  Backend Engineer  Phone screen → Onsite (+1 stage)`
pub(super) fn describe(feed: &FeedEvent) -> String {
    let event = &feed.event;
    let time = event.detected_at.format("%H:%M:%S");
    let integration = event
        .integration
        .as_ref()
        .map_or_else(|| "-".to_owned(), |i| i.id.to_string());
    let who = event
        .application
        .as_ref()
        .and_then(|a| a.candidate_name.clone())
        .unwrap_or_default();
    let job = event
        .job
        .as_ref()
        .and_then(|j| j.name.clone())
        .unwrap_or_default();
    let what = match &event.kind {
        EventKind::ApplicationCreated(b) => format!("created in {}", stage_name(b.stage.as_ref())),
        EventKind::ApplicationDiscovered(b) => {
            format!("now tracked, in {}", stage_name(b.stage.as_ref()))
        }
        EventKind::StageChanged(change) => {
            let steps = match (
                change.from.as_ref().and_then(|s| s.index),
                change.to.index,
                change.direction,
            ) {
                (Some(from), Some(to), Direction::Forward | Direction::Backward) => {
                    let n = to - from;
                    format!(" ({n:+} stage{})", if n.abs() == 1 { "" } else { "s" })
                }
                _ => String::new(),
            };
            format!(
                "{} → {}{steps}",
                stage_name(change.from.as_ref()),
                stage_name(Some(&change.to))
            )
        }
        EventKind::Hired(_) => "HIRED".to_owned(),
        EventKind::Declined(d) => match &d.rejection_reason {
            Some(reason) => format!("declined ({reason})"),
            None => "declined".to_owned(),
        },
        EventKind::OutcomeChanged(o) | EventKind::Reopened(o) => format!(
            "outcome {} → {}",
            o.from.as_ref().map_or("unknown", |f| f.as_str()),
            o.to.as_str()
        ),
        EventKind::JobChanged(j) => format!(
            "moved to job {}",
            j.to.name.clone().unwrap_or_else(|| j.to.id.to_string())
        ),
        EventKind::Deleted(_) => "deleted in the ATS".to_owned(),
        EventKind::Restored(_) => "restored in the ATS".to_owned(),
        EventKind::CapabilityChanged(c) => format!(
            "capabilities: applications {:?}, outcome {:?}, stage {:?}",
            c.to.applications, c.to.outcome, c.to.current_stage
        )
        .to_lowercase(),
        EventKind::StatusChanged(s) => format!("status → {:?}", s.to).to_lowercase(),
        EventKind::SyncFailed(f) => format!("sync failing: {}", f.error.message),
        EventKind::Recovered(r) => format!("sync recovered after {}s", r.failed_for_seconds),
        EventKind::DeletionsHeld(h) => format!(
            "{} deletions held for confirmation (stagewatch integrations confirm-deletions)",
            h.held
        ),
        EventKind::EndpointDisabled(e) => format!("webhook endpoint {} disabled", e.url),
    };
    let mut line = format!("{time}  {integration:<28}");
    if !who.is_empty() || !job.is_empty() {
        let _ = write!(line, "  {who:<16}  {job:<22}");
    }
    line.push_str("  ");
    line.push_str(&what);
    line
}

fn stage_name(stage: Option<&StageRef>) -> String {
    stage.map_or_else(
        || "no stage".to_owned(),
        |s| s.name.clone().unwrap_or_else(|| s.stage_id.to_string()),
    )
}
