use domain::sync::{PassObserver, PassReport};
use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;

/// Stops a pass between pages when the process shuts down or the lease is lost; the page in
/// flight still commits.
#[derive(Debug, Clone)]
pub struct ShutdownObserver {
    pub shutdown: CancellationToken,
    pub lease_lost: CancellationToken,
}

impl PassObserver for ShutdownObserver {
    fn keep_going(&self) -> bool {
        !self.shutdown.is_cancelled() && !self.lease_lost.is_cancelled()
    }
}

/// Shows a pass's progress on a terminal (`stagewatch sync`).
#[derive(Debug)]
pub struct PassProgress {
    pub bar: ProgressBar,
    pub shutdown: CancellationToken,
}

impl PassObserver for PassProgress {
    fn page_applied(&self, report: &PassReport) {
        self.bar.set_message(format!(
            "{} pages, {} applications, {} new events",
            report.pages, report.applications_seen, report.events_appended
        ));
        self.bar.tick();
    }

    fn keep_going(&self) -> bool {
        !self.shutdown.is_cancelled()
    }
}
