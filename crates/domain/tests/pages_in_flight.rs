//! A pass stores a page while it reads and detects the next: never two pages that share an
//! application, never more than `PAGES_IN_FLIGHT` at once, with a pause every few pages, and never a
//! completion or a failure record while a page is still being stored.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use domain::fixtures::{at, fully_supported, integration, integration_info, pipeline, snapshot};
use domain::ports::{
    AppliedPage, HoldStats, LeaseEpoch, MockAtsGateway, MockClock, Page, PageChanges, PageCursor,
    PassCompletion, PassFailure, StoreError, SyncState, TrackerStore,
};
use domain::sync::{
    PAGES_BETWEEN_PAUSES, PAGES_IN_FLIGHT, PassMode, PassOutcome, SyncService, SyncSettings,
};
use domain::{
    ApplicationId, ApplicationSnapshot, IntegrationId, JobId, Pipeline, TrackedApplication,
};

const LEASE: LeaseEpoch = LeaseEpoch(3);

/// Ready after being polled `0` more times: a write that waits on its database.
struct Waiting(u32);

impl Future for Waiting {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What the store saw.
#[derive(Default)]
struct Seen {
    /// The applications of each page being stored now.
    storing: Vec<BTreeSet<String>>,
    /// Pages stored, in the order they finished.
    stored: Vec<BTreeSet<String>>,
    /// How many pages were being stored when each page started.
    storing_at_start: Vec<usize>,
    /// What went wrong, in words.
    violations: Vec<String>,
    completions: usize,
    failures: usize,
    /// Kombo's pages asked for (`fetch <index>`) and stored states read (`load <first id>`),
    /// in order.
    reads: Vec<String>,
}

/// A store that knows nothing yet and takes a while to store each page; an application whose
/// id starts with `slow` makes its page slower, `fail` makes it fail.
#[derive(Default)]
struct SlowStore {
    seen: Mutex<Seen>,
}

impl SlowStore {
    fn nothing_storing(&self, what: &str) {
        let mut seen = self.seen.lock().unwrap();
        if !seen.storing.is_empty() {
            let storing = seen.storing.len();
            seen.violations
                .push(format!("{what} while {storing} pages were being stored"));
        }
    }
}

#[async_trait]
impl TrackerStore for SlowStore {
    async fn sync_state(&self, _: &IntegrationId) -> Result<SyncState, StoreError> {
        Ok(SyncState::default())
    }
    async fn update_integration(
        &self,
        _: domain::ports::IntegrationUpdate,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn load_applications(
        &self,
        _: &IntegrationId,
        ids: &[ApplicationId],
    ) -> Result<Vec<TrackedApplication>, StoreError> {
        let first = ids.first().map_or("", ApplicationId::as_str);
        self.seen
            .lock()
            .unwrap()
            .reads
            .push(format!("load {first}"));
        Ok(Vec::new())
    }
    async fn load_pipelines(
        &self,
        _: &IntegrationId,
        _: &[JobId],
    ) -> Result<Vec<Pipeline>, StoreError> {
        Ok(vec![pipeline()])
    }
    async fn save_pipelines(&self, _: &IntegrationId, _: &[Pipeline]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn apply_page(&self, changes: PageChanges) -> Result<AppliedPage, StoreError> {
        let applications: BTreeSet<String> = changes
            .applications
            .iter()
            .map(|a| a.id.as_str().to_owned())
            .collect();
        {
            let mut seen = self.seen.lock().unwrap();
            if let Some(shared) = seen
                .storing
                .iter()
                .find(|other| !other.is_disjoint(&applications))
            {
                let message = format!("{applications:?} stored beside {shared:?}");
                seen.violations.push(message);
            }
            let storing = seen.storing.len();
            seen.storing_at_start.push(storing);
            seen.storing.push(applications.clone());
        }
        let slow = applications.iter().any(|id| id.starts_with("slow"));
        Waiting(if slow { 60 } else { 12 }).await;
        let mut seen = self.seen.lock().unwrap();
        seen.storing.retain(|other| *other != applications);
        if applications.iter().any(|id| id.starts_with("fail")) {
            return Err(StoreError::Unavailable("the page's commit failed".into()));
        }
        seen.stored.push(applications);
        Ok(AppliedPage {
            events_appended: changes.events.len() as u64,
        })
    }
    async fn apply_first_sighting(&self, _: PageChanges) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn hold_stats(&self, _: &IntegrationId) -> Result<HoldStats, StoreError> {
        Ok(HoldStats::default())
    }
    async fn count_held(&self, _: &IntegrationId) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn release_held(
        &self,
        _: &IntegrationId,
        _: Option<LeaseEpoch>,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn complete_pass(&self, _: PassCompletion) -> Result<(), StoreError> {
        self.nothing_storing("the pass completed");
        self.seen.lock().unwrap().completions += 1;
        Ok(())
    }
    async fn record_failure(&self, _: PassFailure) -> Result<(), StoreError> {
        self.nothing_storing("the failure was recorded");
        self.seen.lock().unwrap().failures += 1;
        Ok(())
    }
}

/// A Kombo that serves one page per entry of `pages`, each holding those applications.
fn kombo(pages: &[&[&str]], store: Arc<SlowStore>) -> MockAtsGateway {
    let pages: Vec<Vec<ApplicationSnapshot>> = pages
        .iter()
        .map(|ids| ids.iter().map(|id| snapshot(id, "applied", -5)).collect())
        .collect();
    let mut ats = MockAtsGateway::new();
    ats.expect_integration_info()
        .returning(|_| Ok(integration_info(fully_supported())));
    ats.expect_fetch_jobs()
        .returning(|_, _, _| Ok(Page::last(vec![pipeline()])));
    ats.expect_fetch_applications()
        .returning(move |_, _, cursor| {
            let index: usize = cursor.map_or(0, |c| c.0.parse().unwrap());
            store
                .seen
                .lock()
                .unwrap()
                .reads
                .push(format!("fetch {index}"));
            Ok(Page {
                items: pages[index].clone(),
                next: (index + 1 < pages.len()).then(|| PageCursor((index + 1).to_string())),
                skipped: Vec::new(),
            })
        });
    ats
}

fn run(pages: &[&[&str]]) -> (Result<PassOutcome, String>, Arc<SlowStore>) {
    let store = Arc::new(SlowStore::default());
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(0));
    let service = SyncService::new(
        Arc::new(kombo(pages, store.clone())),
        store.clone(),
        Arc::new(clock),
        SyncSettings::default(),
    );
    let result = pollster::block_on(service.run_pass(&integration(), LEASE, PassMode::Full, &()))
        .map(|report| report.outcome)
        .map_err(|error| error.to_string());
    (result, store)
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}{n}")).collect()
}

#[test]
fn pages_of_different_applications_are_stored_a_few_at_a_time_with_pauses() {
    // Enough pages for two pauses after the first page.
    let total = PAGES_BETWEEN_PAUSES * 2 + 4;
    let ids = names("a", total);
    let owned: Vec<Vec<&str>> = ids.iter().map(|id| vec![id.as_str()]).collect();
    let pages: Vec<&[&str]> = owned.iter().map(Vec::as_slice).collect();
    let (outcome, store) = run(&pages);

    assert_eq!(outcome, Ok(PassOutcome::Completed));
    let seen = store.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    assert_eq!(seen.stored.len(), total, "every page is stored once");
    assert_eq!(seen.completions, 1);
    assert_eq!(
        seen.storing_at_start.iter().max(),
        Some(&(PAGES_IN_FLIGHT - 1)),
        "a page starts beside {} others at most: {:?}",
        PAGES_IN_FLIGHT - 1,
        seen.storing_at_start
    );
    let overlapped = seen.storing_at_start.iter().filter(|n| **n > 0).count();
    assert!(
        overlapped >= total / 2,
        "most pages are stored beside another: {:?}",
        seen.storing_at_start
    );
    // After a pause, no page starts before every page before it is stored.
    let pauses = seen.storing_at_start.iter().filter(|n| **n == 0).count();
    assert!(
        pauses > total / PAGES_BETWEEN_PAUSES,
        "the pass pauses every {PAGES_BETWEEN_PAUSES} pages: {:?}",
        seen.storing_at_start
    );
}

#[test]
fn the_next_page_is_asked_for_before_the_current_one_is_detected() {
    let pages: Vec<&[&str]> = vec![&["a0"], &["a1"], &["a2"]];
    let (outcome, store) = run(&pages);

    assert_eq!(outcome, Ok(PassOutcome::Completed));
    let seen = store.seen.lock().unwrap();
    let position = |read: &str| seen.reads.iter().position(|r| r == read);
    for page in 1..pages.len() {
        let fetched = position(&format!("fetch {page}")).expect("every page is read");
        let detected = position(&format!("load a{}", page - 1)).expect("every page is detected");
        assert!(
            fetched < detected,
            "page {page} is asked for before page {} is detected: {:?}",
            page - 1,
            seen.reads
        );
    }
    let fetches = seen.reads.iter().filter(|r| r.starts_with("fetch")).count();
    assert_eq!(
        fetches,
        pages.len(),
        "no page past the last: {:?}",
        seen.reads
    );
}

#[test]
fn a_page_sharing_an_application_with_one_being_stored_waits_for_it() {
    // `slow0` takes long to store; the pages after it hold it again or not.
    let pages: Vec<&[&str]> = vec![
        &["slow0", "a1"],
        &["a2"],
        &["slow0", "a3"],
        &["a4"],
        &["a1", "a5"],
    ];
    let (outcome, store) = run(&pages);

    assert_eq!(outcome, Ok(PassOutcome::Completed));
    let seen = store.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    assert_eq!(seen.stored.len(), 5);
    let first_slow = seen
        .stored
        .iter()
        .position(|page| page.contains("a1") && page.contains("slow0"))
        .unwrap();
    let second_slow = seen
        .stored
        .iter()
        .position(|page| page.contains("a3"))
        .unwrap();
    assert!(
        first_slow < second_slow,
        "stored in order: {:?}",
        seen.stored
    );
}

#[test]
fn a_failed_page_fails_the_pass_once_the_others_have_settled() {
    let pages: Vec<&[&str]> = vec![&["a0"], &["fail1"], &["slow2"], &["a3"], &["a4"]];
    let (outcome, store) = run(&pages);

    let error = outcome.unwrap_err();
    assert!(error.contains("the page's commit failed"), "{error}");
    let seen = store.seen.lock().unwrap();
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    assert_eq!(seen.completions, 0, "the watermark does not move");
    assert_eq!(seen.failures, 1);
    assert!(
        !seen.stored.iter().any(|page| page.contains("a4")),
        "no page starts after the failure is known: {:?}",
        seen.stored
    );
}
