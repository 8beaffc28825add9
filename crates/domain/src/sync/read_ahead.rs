//! The next page of a pass, read from Kombo while the current one is detected.
//!
//! A page's cursor is known as soon as the page arrives, so the next request need not wait for
//! the page's detection (a stored-state lookup, the detection itself) or for room among the
//! pages being stored. Only one page is read ahead: enough to keep Kombo's answer off the
//! pass's path, and a bounded amount held in memory.

use std::future::Future;
use std::pin::{Pin, pin};

use futures::future::{BoxFuture, FutureExt, MaybeDone, maybe_done};

/// A read started ahead of its use; it makes progress whenever the pass awaits other work
/// through [`ReadAhead::alongside`].
pub(super) struct ReadAhead<'a, T> {
    reading: MaybeDone<BoxFuture<'a, T>>,
}

impl<'a, T> ReadAhead<'a, T> {
    pub(super) fn start(read: impl Future<Output = T> + Send + 'a) -> Self {
        Self {
            reading: maybe_done(read.boxed()),
        }
    }

    /// Runs `work` to completion while the read goes on.
    pub(super) async fn alongside<W: Future>(&mut self, work: W) -> W::Output {
        let mut work = pin!(work);
        futures::future::poll_fn(|cx| {
            // A finished read keeps its result until `finish` takes it.
            let _ = Pin::new(&mut self.reading).poll(cx);
            work.as_mut().poll(cx)
        })
        .await
    }

    /// What the read returned, waiting for it if it is still going on.
    pub(super) async fn finish(mut self) -> T {
        (&mut self.reading).await;
        Pin::new(&mut self.reading)
            .take_output()
            .expect("a finished read holds its output until taken, and it is taken once")
    }
}

/// Runs `work` alongside `ahead`, if there is a read ahead.
pub(super) async fn alongside<T, W: Future>(
    ahead: &mut Option<ReadAhead<'_, T>>,
    work: W,
) -> W::Output {
    match ahead {
        Some(ahead) => ahead.alongside(work).await,
        None => work.await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::executor::block_on;

    use super::*;

    #[test]
    fn a_read_progresses_while_other_work_is_awaited_and_keeps_its_result() {
        block_on(async {
            let read_done = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&read_done);
            let mut ahead = ReadAhead::start(async move {
                flag.store(true, Ordering::SeqCst);
                7
            });
            let observed = ahead
                .alongside(async { read_done.load(Ordering::SeqCst) })
                .await;
            assert!(observed, "the read ran while the other work was awaited");
            assert_eq!(ahead.finish().await, 7);
        });
    }

    #[test]
    fn a_read_not_yet_polled_runs_when_finished() {
        block_on(async {
            let ahead = ReadAhead::start(async { "page" });
            assert_eq!(ahead.finish().await, "page");
        });
    }
}
