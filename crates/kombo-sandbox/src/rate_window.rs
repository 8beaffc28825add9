//! Kombo's rate limit as the sandbox enforces it: a fixed window of `limit` requests per API
//! key, reported on every answer as `ratelimit-limit`, `ratelimit-remaining` and
//! `ratelimit-reset` (seconds until the window ends), and answered 429 once used up. Real time,
//! not the simulation's clock: a rate is about when requests arrive.

use std::time::Duration;

use tokio::time::Instant;

/// How many requests Kombo accepts per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub window: Duration,
}

impl Default for RateLimit {
    /// Generous enough for tests and the demo (1 000 requests per second); a realistic limit
    /// (Kombo documents 300 per minute as its example) is set with `with_rate_limit`.
    fn default() -> Self {
        Self {
            limit: 10_000,
            window: Duration::from_secs(10),
        }
    }
}

/// What the window says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    pub(crate) allowed: bool,
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    /// Whole seconds until the window ends, rounded up.
    pub(crate) reset_secs: u64,
}

#[derive(Debug)]
pub(crate) struct RateWindow {
    rate: RateLimit,
    started: Instant,
    used: u64,
}

impl RateWindow {
    pub(crate) fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            started: Instant::now(),
            used: 0,
        }
    }

    /// Counts a request arriving at `now` when the window has room for it.
    pub(crate) fn admit(&mut self, now: Instant) -> Admission {
        if now.duration_since(self.started) >= self.rate.window {
            self.started = now;
            self.used = 0;
        }
        let allowed = self.used < self.rate.limit;
        if allowed {
            self.used += 1;
        }
        let left = self
            .rate
            .window
            .saturating_sub(now.duration_since(self.started));
        Admission {
            allowed,
            limit: self.rate.limit,
            remaining: self.rate.limit - self.used,
            reset_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_then_refuses_until_it_ends() {
        let mut window = RateWindow::new(RateLimit {
            limit: 2,
            window: Duration::from_secs(60),
        });
        let now = Instant::now();
        assert_eq!(
            window.admit(now),
            Admission {
                allowed: true,
                limit: 2,
                remaining: 1,
                reset_secs: 60
            }
        );
        assert!(window.admit(now).allowed);
        let refused = window.admit(now + Duration::from_millis(59_500));
        assert!(!refused.allowed);
        assert_eq!((refused.remaining, refused.reset_secs), (0, 1));
        let next = window.admit(now + Duration::from_secs(60));
        assert_eq!(
            (next.allowed, next.remaining, next.reset_secs),
            (true, 1, 60)
        );
    }
}
