//! The retry schedule of outbound webhooks: exponential, about a day in total.

use std::time::Duration;

/// Waits after each failed attempt: the first attempt is immediate, then 5 s, 5 min, 30 min,
/// 2 h, 5 h, 8 h and 8 h — eight attempts over 23 h 35 min 5 s. After the last failure the
/// delivery is given up.
pub const RETRY_WAITS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(8 * 3600),
    Duration::from_secs(8 * 3600),
];

/// Attempts in all, the first included.
#[allow(clippy::cast_possible_truncation)] // seven waits
pub const MAX_ATTEMPTS: u32 = RETRY_WAITS.len() as u32 + 1;

/// An endpoint with no successful delivery for this long, whose deliveries keep being given up,
/// is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before the next attempt after `attempts` failed ones, or `None` to give up.
pub fn wait_after(attempts: u32) -> Option<Duration> {
    let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
    RETRY_WAITS.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_and_stop_after_about_a_day() {
        assert_eq!(wait_after(1), Some(Duration::from_secs(5)));
        assert_eq!(wait_after(2), Some(Duration::from_secs(300)));
        assert_eq!(
            wait_after(MAX_ATTEMPTS - 1),
            Some(Duration::from_secs(8 * 3600))
        );
        assert_eq!(wait_after(MAX_ATTEMPTS), None);
        assert_eq!(wait_after(0), None);
        let total: Duration = RETRY_WAITS.iter().sum();
        assert!(total > Duration::from_secs(20 * 3600) && total < Duration::from_secs(28 * 3600));
        assert!(RETRY_WAITS.windows(2).all(|w| w[0] <= w[1]));
    }
}
