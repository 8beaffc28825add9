//! When to try a failed delivery again, and when to give up on an endpoint: the retry schedule
//! (exponential, about a day in total) and the disabling rule, both pure.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// An endpoint with no successful delivery for this long, whose deliveries keep being given up,
/// is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The waits after each failed attempt; after the last one the delivery is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    waits: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// The first attempt is immediate, then 5 s, 5 min, 30 min, 2 h, 5 h, 8 h and 8 h: eight
    /// attempts over 23 h 35 min 5 s.
    fn default() -> Self {
        Self::new(vec![
            Duration::from_secs(5),
            Duration::from_secs(5 * 60),
            Duration::from_secs(30 * 60),
            Duration::from_secs(2 * 3600),
            Duration::from_secs(5 * 3600),
            Duration::from_secs(8 * 3600),
            Duration::from_secs(8 * 3600),
        ])
    }
}

impl RetrySchedule {
    /// A schedule of these waits (tests use short ones).
    pub fn new(waits: Vec<Duration>) -> Self {
        Self { waits }
    }

    /// The wait before the next attempt after `attempts` made ones (the failed one included),
    /// or `None` to give up.
    pub fn wait_after(&self, attempts: u32) -> Option<Duration> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        self.waits.get(index).copied()
    }

    /// The waits, in order.
    pub fn waits(&self) -> &[Duration] {
        &self.waits
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.waits.len()).map_or(u32::MAX, |waits| waits.saturating_add(1))
    }

    /// From the first attempt to the last one.
    pub fn total(&self) -> Duration {
        self.waits.iter().sum()
    }
}

/// Whether an endpoint whose delivery was just given up should be disabled: it has existed for
/// [`DISABLE_AFTER`] and no delivery succeeded within that time.
pub fn should_disable(
    created_at: DateTime<Utc>,
    last_delivered_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let since =
        now - chrono::Duration::from_std(DISABLE_AFTER).unwrap_or(chrono::Duration::days(1));
    created_at <= since && last_delivered_at.is_none_or(|at| at < since)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn retries_grow_and_stop_after_about_a_day() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.wait_after(1), Some(Duration::from_secs(5)));
        assert_eq!(schedule.wait_after(2), Some(Duration::from_secs(300)));
        assert_eq!(schedule.max_attempts(), 8);
        assert_eq!(
            schedule.wait_after(schedule.max_attempts() - 1),
            Some(Duration::from_secs(8 * 3600))
        );
        assert_eq!(schedule.wait_after(schedule.max_attempts()), None);
        assert_eq!(schedule.wait_after(schedule.max_attempts() + 3), None);
        assert_eq!(schedule.wait_after(0), None);
        let total = schedule.total();
        assert!(total > Duration::from_secs(20 * 3600) && total < Duration::from_secs(28 * 3600));
        assert!(schedule.waits.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn only_an_endpoint_a_day_old_without_a_success_for_a_day_is_disabled() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let hours = chrono::Duration::hours;
        assert!(should_disable(now - hours(30), None, now));
        assert!(should_disable(now - hours(30), Some(now - hours(25)), now));
        assert!(!should_disable(now - hours(30), Some(now - hours(2)), now));
        assert!(!should_disable(now - hours(3), None, now));
    }
}
