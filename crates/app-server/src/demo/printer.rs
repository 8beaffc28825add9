use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use adapters_postgres::Store;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use domain::event::{Direction, EventKind, JobRef};
use domain::ports::{EventReader, FeedQuery};
use domain::{ApplicationId, ChangeEvent, FeedEvent, StageRef};
use tokio_util::sync::CancellationToken;

use crate::commands::out;

/// Columns, in characters.
const INTEGRATION_WIDTH: usize = 28;
const WHO_WIDTH: usize = 16;
const JOB_WIDTH: usize = 22;
/// Events read at a time.
const PAGE: u32 = 500;
/// One observation gives at most six events (rule 8 of docs/change-detection.md); the cap keeps
/// a run that somehow looks like one observation from holding its line back without end.
const MAX_GROUP: usize = 8;

/// Follows the event feed and prints one line per observed change.
pub(super) struct Printer {
    store: Store,
}

/// Events read, by integration and type: each one, also those that share a line.
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

    fn count(&mut self, feed: &FeedEvent) {
        *self
            .counts
            .entry(integration_id(&feed.event))
            .or_default()
            .entry(feed.event.kind.name().to_owned())
            .or_default() += 1;
    }
}

impl Printer {
    pub(super) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Prints until `shutdown`, then drains what is already stored and returns the tally.
    pub(super) async fn follow(&self, shutdown: CancellationToken) -> anyhow::Result<Tally> {
        let mut lines = Lines::default();
        let read = self.read_until(&mut lines, &shutdown).await;
        // Whatever was read is printed, even when a read failed after it.
        if let Some(line) = lines.flush() {
            out(&line);
        }
        read.map(|()| lines.tally)
    }

    async fn read_until(
        &self,
        lines: &mut Lines,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut after = 0;
        loop {
            let page = self
                .store
                .read_events(&FeedQuery {
                    after: Some(after),
                    limit: PAGE,
                    types: Vec::new(),
                    integration: None,
                })
                .await?;
            // Appends commit an observation's events together, so a page that came back short
            // ended at the feed's head and cannot have cut one in two; a full page may have.
            let caught_up = page.len() < PAGE as usize;
            if let Some(last) = page.last() {
                after = last.sequence;
            }
            for line in lines.page(page, caught_up) {
                out(&line);
            }
            if !caught_up {
                continue;
            }
            if shutdown.is_cancelled() {
                return Ok(());
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                result = self.store.wait_for_events(after, Duration::from_secs(1)) => result?,
            }
        }
    }
}

/// Turns the feed, read page by page, into one line per observed change.
#[derive(Debug, Default)]
struct Lines {
    /// The latest observation's events, which the next event may still belong to.
    held: Vec<FeedEvent>,
    tally: Tally,
}

impl Lines {
    /// Takes the next page of the feed and returns the lines it completes. `caught_up`: the page
    /// ended at the feed's head, so nothing that follows can join what it ends with.
    fn page(&mut self, page: Vec<FeedEvent>, caught_up: bool) -> Vec<String> {
        let mut lines = Vec::new();
        for event in page {
            self.tally.count(&event);
            let joins = self.held.len() < MAX_GROUP
                && self
                    .held
                    .last()
                    .is_some_and(|last| same_observation(last, &event));
            if !joins {
                lines.extend(self.flush());
            }
            self.held.push(event);
        }
        if caught_up {
            lines.extend(self.flush());
        }
        lines
    }

    /// The line for what is held, if anything.
    fn flush(&mut self) -> Option<String> {
        (!self.held.is_empty()).then(|| describe(&std::mem::take(&mut self.held)))
    }
}

/// Whether `next` comes from the same look at the same application as `previous`. One detection
/// gives all its events the application, Kombo's `changed_at` and the detection time, and the
/// store appends them in one run; another look at the application differs in at least one of
/// these (a later pass, a newer snapshot) or is separated by the events appended in between.
fn same_observation(previous: &FeedEvent, next: &FeedEvent) -> bool {
    fn application(e: &ChangeEvent) -> Option<&ApplicationId> {
        e.application.as_ref().map(|app| &app.id)
    }
    let (a, b) = (&previous.event, &next.event);
    next.sequence == previous.sequence + 1
        && application(a).is_some()
        && application(a) == application(b)
        && a.integration == b.integration
        && a.occurred_at == b.occurred_at
        && a.detected_at == b.detected_at
        && a.origin == b.origin
}

/// `12:00:03  acme-greenhouse  Jane Doe  Backend Engineer  Onsite → Offer (+1 stage), declined`
///
/// `group`: the events of one observation, in feed order, at least one.
fn describe(group: &[FeedEvent]) -> String {
    let event = &group[0].event;
    let time = event.detected_at.format("%H:%M:%S");
    let integration = fit(&integration_id(event), INTEGRATION_WIDTH);
    let who = event
        .application
        .as_ref()
        .and_then(|a| a.candidate_name.as_deref())
        .unwrap_or_default();
    let job = event
        .job
        .as_ref()
        .and_then(|j| j.name.as_deref())
        .unwrap_or_default();
    // The sharp event says what the outcome change says, in the words a person would use.
    let sharp = group.iter().any(|feed| {
        matches!(
            feed.event.kind,
            EventKind::Hired(_) | EventKind::Declined(_) | EventKind::Reopened(_)
        )
    });
    let what = group
        .iter()
        .filter(|feed| !(sharp && matches!(feed.event.kind, EventKind::OutcomeChanged(_))))
        .map(|feed| change(&feed.event.kind))
        .collect::<Vec<_>>()
        .join(", ");
    let mut line = format!("{time}  {integration:<INTEGRATION_WIDTH$}");
    if !who.is_empty() || !job.is_empty() {
        let (who, job) = (fit(who, WHO_WIDTH), fit(job, JOB_WIDTH));
        let _ = write!(line, "  {who:<WHO_WIDTH$}  {job:<JOB_WIDTH$}");
    }
    line.push_str("  ");
    line.push_str(&what);
    line
}

fn change(kind: &EventKind) -> String {
    match kind {
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
        EventKind::Reopened(o) => match &o.from {
            Some(from) => format!("reopened (was {})", from.as_str()),
            None => "reopened".to_owned(),
        },
        EventKind::OutcomeChanged(o) => format!(
            "outcome {} → {}",
            o.from.as_ref().map_or("unknown", |f| f.as_str()),
            o.to.as_str()
        ),
        EventKind::JobChanged(j) => format!(
            "job {} → {}",
            j.from.as_ref().map_or_else(|| "none".to_owned(), job_name),
            job_name(&j.to)
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
    }
}

fn integration_id(event: &ChangeEvent) -> String {
    event
        .integration
        .as_ref()
        .map_or_else(|| "-".to_owned(), |i| i.id.to_string())
}

/// A job as a change names it: as wide as the job column, so that a move reads like the rows.
fn job_name(job: &JobRef) -> String {
    fit(job.name.as_deref().unwrap_or(job.id.as_str()), JOB_WIDTH)
}

/// `text` cut to at most `width` characters, the cut marked with `…`. Characters, not bytes:
/// padding counts characters too, and a byte cut could fall inside one.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

fn stage_name(stage: Option<&StageRef>) -> String {
    stage.map_or_else(
        || "no stage".to_owned(),
        |s| s.name.clone().unwrap_or_else(|| s.stage_id.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use domain::fixtures::{at, job, pipeline, snapshot};
    use domain::{ApplicationSnapshot, DetectContext, Outcome, detect};

    use super::*;

    /// The events one sync pass at `minute` records for `app`, going from `before` to `after`,
    /// numbered from `first`.
    fn observed(
        before: &ApplicationSnapshot,
        after: &ApplicationSnapshot,
        minute: i64,
        first: i64,
    ) -> Vec<FeedEvent> {
        let held = detect(None, before, Some(&pipeline()), &DetectContext::sync(at(0))).next_state;
        let events = detect(
            Some(&held),
            after,
            Some(&pipeline()),
            &DetectContext::sync(at(minute)),
        )
        .events;
        events
            .into_iter()
            .zip(first..)
            .map(|(event, sequence)| FeedEvent { sequence, event })
            .collect()
    }

    fn declined(app: &str, stage: &str, minute: i64) -> ApplicationSnapshot {
        let mut snapshot = snapshot(app, stage, minute);
        snapshot.outcome = Some(Outcome::Declined);
        snapshot.rejection_reason_name = Some("Not a fit".into());
        snapshot
    }

    /// The lines for the feed read in one page that ends at the head.
    fn lines(feed: Vec<FeedEvent>) -> Vec<String> {
        let mut lines = Lines::default();
        let mut printed = lines.page(feed, true);
        printed.extend(lines.flush());
        printed
    }

    /// The text after the columns.
    fn what(line: &str) -> &str {
        line.rsplit("  ").next().unwrap()
    }

    #[test]
    fn an_outcome_change_and_its_sharp_event_are_one_line() {
        let feed = observed(
            &snapshot("a1", "onsite", 1),
            &declined("a1", "onsite", 2),
            3,
            1,
        );
        assert_eq!(feed.len(), 2, "outcome_changed and declined");
        let printed = lines(feed);
        assert_eq!(printed.len(), 1, "{printed:#?}");
        assert_eq!(what(&printed[0]), "declined (Not a fit)");
    }

    #[test]
    fn a_move_and_a_decline_seen_together_are_one_line() {
        let feed = observed(
            &snapshot("a1", "onsite", 1),
            &declined("a1", "offer", 2),
            3,
            1,
        );
        let printed = lines(feed);
        assert_eq!(
            printed.iter().map(|l| what(l)).collect::<Vec<_>>(),
            ["Onsite → Offer (+1 stage), declined (Not a fit)"]
        );
    }

    #[test]
    fn a_hire_reads_as_a_hire() {
        let mut hired = snapshot("a1", "offer", 2);
        hired.outcome = Some(Outcome::Hired);
        let printed = lines(observed(&snapshot("a1", "offer", 1), &hired, 3, 1));
        assert_eq!(printed.len(), 1);
        assert_eq!(what(&printed[0]), "HIRED");
    }

    #[test]
    fn other_applications_and_other_passes_get_their_own_lines() {
        let mut feed = observed(
            &snapshot("a1", "onsite", 1),
            &declined("a1", "onsite", 2),
            3,
            1,
        );
        // Same pass, another application.
        feed.extend(observed(
            &snapshot("a2", "applied", 1),
            &snapshot("a2", "phone_screen", 2),
            3,
            3,
        ));
        // Same application, a later pass.
        feed.extend(observed(
            &declined("a1", "onsite", 2),
            &snapshot("a1", "onsite", 4),
            5,
            4,
        ));
        let printed = lines(feed);
        assert_eq!(
            printed.iter().map(|l| what(l)).collect::<Vec<_>>(),
            [
                "declined (Not a fit)",
                "Applied → Phone screen (+1 stage)",
                "reopened (was DECLINED)"
            ]
        );
    }

    #[test]
    fn every_event_is_tallied_though_lines_merge() {
        let mut lines = Lines::default();
        let feed = observed(
            &snapshot("a1", "onsite", 1),
            &declined("a1", "offer", 2),
            3,
            1,
        );
        let _ = lines.page(feed, true);
        let counts = &lines.tally.counts["greenhouse:acme"];
        assert_eq!(counts["application.stage_changed"], 1);
        assert_eq!(counts["application.outcome_changed"], 1);
        assert_eq!(counts["application.declined"], 1);
    }

    #[test]
    fn a_group_cut_by_a_full_page_is_held_and_printed_once() {
        let mut feed = observed(
            &snapshot("a1", "onsite", 1),
            &declined("a1", "offer", 2),
            3,
            1,
        );
        feed.extend(observed(
            &snapshot("a2", "applied", 1),
            &snapshot("a2", "phone_screen", 2),
            3,
            4,
        ));
        let whole = lines(feed.clone());
        for cut in 0..=feed.len() {
            let mut lines = Lines::default();
            let (first, second) = feed.split_at(cut);
            let mut printed = lines.page(first.to_vec(), false);
            printed.extend(lines.page(second.to_vec(), true));
            assert_eq!(printed, whole, "cut after {cut} events");
            assert_eq!(lines.flush(), None, "nothing left held once caught up");
        }
    }

    #[test]
    fn what_is_held_at_the_end_is_flushed_once() {
        let feed = observed(
            &snapshot("a1", "onsite", 1),
            &declined("a1", "onsite", 2),
            3,
            1,
        );
        let mut lines = Lines::default();
        assert!(lines.page(feed, false).is_empty(), "the group may go on");
        let last = lines.flush().expect("the held line");
        assert_eq!(what(&last), "declined (Not a fit)");
        assert_eq!(lines.flush(), None);
    }

    #[test]
    fn a_job_move_names_both_jobs() {
        let mut other = snapshot("a1", "onsite", 2);
        other.job_id = Some(job("frontend"));
        other.job_name = Some("Frontend Engineer".into());
        let printed = lines(observed(&snapshot("a1", "onsite", 1), &other, 3, 1));
        assert_eq!(printed.len(), 1, "{printed:#?}");
        assert_eq!(
            what(&printed[0]),
            "job Backend Engineer → Frontend Engineer"
        );
    }

    #[test]
    fn long_names_keep_the_columns() {
        let short = lines(observed(
            &snapshot("a1", "onsite", 1),
            &snapshot("a1", "offer", 2),
            3,
            1,
        ));
        let mut long = snapshot("a1", "offer", 2);
        long.job_name = Some("Senior Staff Platform Engineer, Developer Experience & Tools".into());
        assert_eq!(long.job_name.as_ref().unwrap().chars().count(), 60);
        long.candidate_name = Some("Maximilian Alexander von Habsburg-Lothringen".into());
        let long = lines(observed(&snapshot("a1", "onsite", 1), &long, 3, 1));
        let column = |line: &str| line.chars().position(|c| c == '→').unwrap();
        assert_eq!(column(&long[0]), column(&short[0]), "{long:#?}");
        assert!(long[0].contains("Senior Staff Platform…"), "{long:#?}");
        assert!(long[0].contains("Maximilian Alex…"), "{long:#?}");
    }

    #[test]
    fn non_ascii_names_are_cut_by_characters() {
        let mut named = snapshot("a1", "offer", 2);
        named.candidate_name = Some("Zoë Æbelø-Šťastná Øvergård".into());
        named.job_name = Some("Ingénieure logicielle — équipe données".into());
        let printed = lines(observed(&snapshot("a1", "onsite", 1), &named, 3, 1));
        let line = &printed[0];
        assert!(line.contains("Zoë Æbelø-Šťast…"), "{line}");
        assert!(line.contains("Ingénieure logicielle…"), "{line}");
        let plain = lines(observed(
            &snapshot("a1", "onsite", 1),
            &snapshot("a1", "offer", 2),
            3,
            1,
        ));
        let column = |line: &str| line.chars().position(|c| c == '→').unwrap();
        assert_eq!(column(line), column(&plain[0]));
    }

    #[test]
    fn fit_counts_characters() {
        assert_eq!(fit("Backend", 22), "Backend");
        assert_eq!(fit("ééééé", 5), "ééééé");
        assert_eq!(fit("éééééé", 5), "éééé…");
        assert_eq!(fit("ab cd", 4), "ab…");
        assert_eq!(fit("日本語の職種名です", 4).chars().count(), 4);
    }
}
