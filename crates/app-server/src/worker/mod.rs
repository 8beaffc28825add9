//! The sync workers: a scheduler that claims due integrations through the store's leases and
//! runs the domain's sync pass for each, with bounded concurrency and graceful shutdown; and
//! the janitor that purges old bookkeeping.

mod janitor;
mod observer;
mod schedule;
mod scheduler;

pub use janitor::{Janitor, Purged};
pub use observer::{PassProgress, ShutdownObserver};
pub use schedule::{MIN_BACKOFF, ScheduleSettings, next_due, wants_full_pass};
pub use scheduler::{Scheduler, SchedulerSettings, count_fenced_write, keep_lease};
