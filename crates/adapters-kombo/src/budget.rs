//! Pacing to what Kombo says of its rate limit. Every answer carries `ratelimit-limit`,
//! `ratelimit-remaining` and `ratelimit-reset` (seconds until the window ends); the budget spreads
//! the requests left evenly over the time left, so a busy scheduler uses Kombo's allowance
//! without running into 429s, and several replicas sharing one key slow down together (each sees
//! the same `remaining`). The configured rates stay a ceiling on top of it. Reads leave a small
//! reserve that writes may use, so creates, moves and rejects are not starved by polling.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// What one answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    pub(crate) reset: Duration,
}

impl Reported {
    /// The three headers, when all of them are there and are numbers.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        Some(Self {
            limit: number("ratelimit-limit")?,
            remaining: number("ratelimit-remaining")?,
            reset: Duration::from_secs(number("ratelimit-reset")?),
        })
    }
}

#[derive(Debug)]
struct Window {
    limit: u64,
    /// What Kombo said was left, minus what was sent since.
    left: u64,
    ends_at: Instant,
    /// The earliest moment the next read may go.
    next_slot: Instant,
}

/// When a request may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// After this wait (often none): a slot of the window is taken.
    After(Duration),
    /// The window is used up: wait this long, then ask again.
    WindowUsedUp(Duration),
}

/// Kombo's rate limit as its answers report it.
#[derive(Debug, Default)]
pub(crate) struct RateBudget {
    window: Mutex<Option<Window>>,
}

impl RateBudget {
    /// Takes in what an answer (received at `now`) said; a 429 means nothing is left.
    pub(crate) fn observe(&self, reported: Reported, rate_limited: bool, now: Instant) {
        let mut window = self.lock();
        let next_slot = window.as_ref().map_or(now, |w| w.next_slot);
        *window = Some(Window {
            limit: reported.limit,
            left: if rate_limited { 0 } else { reported.remaining },
            // Kombo rounds to whole seconds: a window never ends sooner than a second away.
            ends_at: now + reported.reset.max(Duration::from_secs(1)),
            next_slot,
        });
    }

    /// When a request about to be sent at `now` may go.
    pub(crate) fn reserve(&self, is_write: bool, now: Instant) -> Turn {
        let mut guard = self.lock();
        let Some(window) = guard.as_mut() else {
            return Turn::After(Duration::ZERO);
        };
        if now >= window.ends_at {
            // A new window: unknown until the next answer says.
            *guard = None;
            return Turn::After(Duration::ZERO);
        }
        let reserve = if is_write {
            0
        } else {
            (window.limit / 20).max(1)
        };
        let usable = window.left.saturating_sub(reserve);
        if usable == 0 {
            return Turn::WindowUsedUp(window.ends_at - now);
        }
        window.left -= 1;
        if is_write {
            return Turn::After(Duration::ZERO);
        }
        let spacing = (window.ends_at - now) / u32::try_from(usable).unwrap_or(u32::MAX);
        let slot = window.next_slot.max(now);
        window.next_slot = slot + spacing;
        Turn::After(slot - now)
    }

    /// Whether an answer told the current window (it has not ended since).
    pub(crate) fn is_known(&self, now: Instant) -> bool {
        self.lock().as_ref().is_some_and(|w| now < w.ends_at)
    }

    /// What is left of the window, for a gauge.
    pub(crate) fn left(&self) -> Option<u64> {
        self.lock().as_ref().map(|w| w.left)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Window>> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(limit: u64, remaining: u64, reset_secs: u64) -> Reported {
        Reported {
            limit,
            remaining,
            reset: Duration::from_secs(reset_secs),
        }
    }

    #[test]
    fn nothing_reported_means_no_wait() {
        let budget = RateBudget::default();
        assert_eq!(
            budget.reserve(false, Instant::now()),
            Turn::After(Duration::ZERO)
        );
    }

    #[test]
    fn reads_are_spread_over_what_is_left_of_the_window() {
        let budget = RateBudget::default();
        let now = Instant::now();
        // 105 left, a reserve of 5 for writes: 100 reads over 10 s, one every 100 ms.
        budget.observe(reported(100, 105, 10), false, now);
        let waits: Vec<Duration> = (0..3)
            .map(|_| match budget.reserve(false, now) {
                Turn::After(wait) => wait,
                used_up @ Turn::WindowUsedUp(_) => panic!("{used_up:?}"),
            })
            .collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert!(waits[1] >= Duration::from_millis(99) && waits[1] <= Duration::from_millis(101));
        assert!(waits[2] >= Duration::from_millis(199) && waits[2] <= Duration::from_millis(203));
    }

    #[test]
    fn a_used_up_window_waits_for_its_end_but_writes_use_the_reserve() {
        let budget = RateBudget::default();
        let now = Instant::now();
        budget.observe(reported(300, 10, 30), false, now);
        assert_eq!(
            budget.reserve(false, now),
            Turn::WindowUsedUp(Duration::from_secs(30))
        );
        assert_eq!(budget.reserve(true, now), Turn::After(Duration::ZERO));
        // After the window ends, nothing is known until the next answer.
        assert_eq!(
            budget.reserve(false, now + Duration::from_secs(31)),
            Turn::After(Duration::ZERO)
        );
    }

    #[test]
    fn a_window_is_known_until_it_ends() {
        let budget = RateBudget::default();
        let now = Instant::now();
        assert!(!budget.is_known(now));
        budget.observe(reported(300, 200, 7), false, now);
        assert!(budget.is_known(now + Duration::from_secs(6)));
        assert!(!budget.is_known(now + Duration::from_secs(7)));
    }

    #[test]
    fn a_429_leaves_nothing_until_the_reset() {
        let budget = RateBudget::default();
        let now = Instant::now();
        budget.observe(reported(300, 200, 7), true, now);
        assert_eq!(
            budget.reserve(true, now),
            Turn::WindowUsedUp(Duration::from_secs(7))
        );
        assert_eq!(budget.left(), Some(0));
    }

    #[test]
    fn headers_are_read_only_when_all_three_are_numbers() {
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-limit", "300".parse().unwrap());
        headers.insert("ratelimit-remaining", "298".parse().unwrap());
        assert_eq!(Reported::from_headers(&headers), None);
        headers.insert("ratelimit-reset", " 57".parse().unwrap());
        assert_eq!(
            Reported::from_headers(&headers),
            Some(reported(300, 298, 57))
        );
        headers.insert("ratelimit-reset", "soon".parse().unwrap());
        assert_eq!(Reported::from_headers(&headers), None);
    }
}
