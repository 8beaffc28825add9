//! Percentiles of measured durations.

use std::time::Duration;

/// Sorted durations, for percentiles.
#[derive(Debug, Clone)]
pub(crate) struct Latencies(Vec<Duration>);

impl Latencies {
    pub(crate) fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The nearest-rank percentile in milliseconds (`p` in 0–100); zero without samples.
    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )] // a rank within a sample count far below 2^52
        let rank = ((p / 100.0 * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1].as_secs_f64() * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let latencies = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert!((latencies.percentile_ms(50.0) - 50.0).abs() < 1e-9);
        assert!((latencies.percentile_ms(99.0) - 99.0).abs() < 1e-9);
        assert!((latencies.percentile_ms(100.0) - 100.0).abs() < 1e-9);
        assert!((latencies.percentile_ms(0.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn no_samples_no_latency() {
        assert!(Latencies::new(Vec::new()).percentile_ms(99.0).abs() < f64::EPSILON);
    }
}
