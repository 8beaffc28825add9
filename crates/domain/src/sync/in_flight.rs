//! Pages being stored while the pass reads and detects the next ones.
//!
//! A page's transaction spends much of its time waiting on the database; storing the next pages
//! meanwhile uses that time. Pages are stored side by side only when they share no
//! application: each page is detected against stored states, so a page that holds an
//! application still being written by another must wait for it to commit. Pages of disjoint
//! applications can commit in either order without changing any event (events are per
//! application), and the watermark moves only once every page of the pass has committed.

use std::collections::HashSet;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};

use super::{PassObserver, PassReport};
use crate::ids::ApplicationId;
use crate::ports::{AppliedPage, StoreError};

/// Pages of one pass stored at once, at most: each holds a database connection and a
/// transaction. Three kept a 2-core machine's PostgreSQL busy where two left it waiting.
pub const PAGES_IN_FLIGHT: usize = 3;
/// Pages started one after another without a moment when none is being stored. The store may
/// hold a shared lock on the integration while a page is stored; a pause every few pages lets
/// a writer that needs it alone (an operator's confirmation, a lease renewal) in. Each pause
/// empties the pipeline (every eight pages cost a first pass a tenth of its rate); at 32, a
/// writer waits for 32 pages at most, under a second on a 2-core machine, and a pass whose
/// pages arrive slower than they are stored leaves gaps of its own.
pub const PAGES_BETWEEN_PAUSES: usize = 32;

type Storing<'a> =
    Pin<Box<dyn Future<Output = (usize, Result<AppliedPage, StoreError>)> + Send + 'a>>;

/// The pages of one pass being stored, and what the finished ones returned.
pub(super) struct PagesInFlight<'a> {
    storing: FuturesUnordered<Storing<'a>>,
    /// The applications of each page being stored, by the page's slot.
    applications: Vec<Option<HashSet<ApplicationId>>>,
    started_since_pause: usize,
    finished: Vec<Result<AppliedPage, StoreError>>,
}

impl<'a> PagesInFlight<'a> {
    pub(super) fn new() -> Self {
        Self {
            storing: FuturesUnordered::new(),
            applications: Vec::new(),
            started_since_pause: 0,
            finished: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.storing.len()
    }

    /// Waits until a page of `applications` may be stored: no page being stored holds any of
    /// them, fewer than [`PAGES_IN_FLIGHT`] are being stored, and none is after a run of
    /// [`PAGES_BETWEEN_PAUSES`].
    pub(super) async fn make_room_for(&mut self, applications: &HashSet<ApplicationId>) {
        loop {
            let shares = self
                .applications
                .iter()
                .flatten()
                .any(|stored| !stored.is_disjoint(applications));
            let pausing = self.started_since_pause >= PAGES_BETWEEN_PAUSES;
            if self.len() == 0 {
                self.started_since_pause = 0;
                return;
            }
            if !shares && !pausing && self.len() < PAGES_IN_FLIGHT {
                return;
            }
            self.next_finished().await;
        }
    }

    /// Starts storing a page of `applications`.
    pub(super) fn start(
        &mut self,
        applications: HashSet<ApplicationId>,
        storing: impl Future<Output = Result<AppliedPage, StoreError>> + Send + 'a,
    ) {
        let slot = self
            .applications
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| {
                self.applications.push(None);
                self.applications.len() - 1
            });
        self.applications[slot] = Some(applications);
        self.started_since_pause += 1;
        self.storing
            .push(Box::pin(async move { (slot, storing.await) }));
    }

    /// Runs `work` to completion while the pages being stored go on.
    pub(super) async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = pin!(work);
        futures::future::poll_fn(|cx| {
            self.poll_storing(cx);
            work.as_mut().poll(cx)
        })
        .await
    }

    /// Waits until every page being stored has finished.
    pub(super) async fn settle_all(&mut self) {
        while self.len() > 0 {
            self.next_finished().await;
        }
    }

    /// Adds what the finished pages appended to `report`, telling `observer` of each; the first
    /// failure of any, if one failed.
    pub(super) fn account(
        &mut self,
        report: &mut PassReport,
        observer: &dyn PassObserver,
    ) -> Result<(), StoreError> {
        let mut failure = None;
        for finished in self.finished.drain(..) {
            match finished {
                Ok(applied) => {
                    report.events_appended += applied.events_appended;
                    observer.page_applied(report);
                }
                Err(error) => {
                    // The first failure, unless a later one is a lost lease: that explains
                    // every other failure of the pass, and the pass must not write again.
                    let replace = failure.as_ref().is_none_or(|kept: &StoreError| {
                        !kept.is_lease_lost() && error.is_lease_lost()
                    });
                    if replace {
                        failure = Some(error);
                    }
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    async fn next_finished(&mut self) {
        futures::future::poll_fn(|cx| {
            let before = self.len();
            self.poll_storing(cx);
            if self.len() < before || before == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    fn poll_storing(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some((slot, result))) = self.storing.poll_next_unpin(cx) {
            self.applications[slot] = None;
            self.finished.push(result);
        }
    }
}
