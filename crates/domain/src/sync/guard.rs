use crate::ports::HoldStats;

/// The mass-deletion guard: when a pass would delete a large share of an integration's
/// applications (a scope or filter change on the customer's side, not real deletions), the
/// deletions are held for an operator instead of flooding consumers with `deleted` events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeletionGuard {
    /// Fewer held deletions than this never trip the guard.
    pub min_count: u64,
    /// Share of tracked applications (0–1) at or above which deletions are held.
    pub max_share: f64,
}

impl Default for DeletionGuard {
    fn default() -> Self {
        Self {
            min_count: 10,
            max_share: 0.2,
        }
    }
}

impl DeletionGuard {
    /// Whether these deletions must wait for an operator. When Kombo says the integration's data
    /// expired (`data_expired_at`), any batch of `min_count` or more is suspect, whatever its
    /// share.
    pub fn trips(&self, stats: HoldStats, data_expired: bool) -> bool {
        if stats.held < self.min_count {
            return false;
        }
        if data_expired {
            return true;
        }
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let share = stats.held as f64 / stats.tracked.max(1) as f64;
        share >= self.max_share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(held: u64, tracked: u64) -> HoldStats {
        HoldStats { held, tracked }
    }

    #[test]
    fn small_batches_pass() {
        let guard = DeletionGuard::default();
        assert!(!guard.trips(stats(9, 10), false));
        assert!(!guard.trips(stats(9, 10), true));
    }

    #[test]
    fn large_share_trips() {
        let guard = DeletionGuard::default();
        assert!(guard.trips(stats(20, 100), false));
        assert!(!guard.trips(stats(19, 100), false));
    }

    #[test]
    fn expired_data_trips_at_min_count() {
        let guard = DeletionGuard::default();
        assert!(guard.trips(stats(10, 10_000), true));
        assert!(!guard.trips(stats(10, 10_000), false));
    }
}
