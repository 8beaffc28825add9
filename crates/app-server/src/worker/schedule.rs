//! When an integration is due next: pure functions of the last pass and the settings.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ports::AtsError;
use domain::sync::SyncError;

/// How the scheduler spaces passes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSettings {
    pub poll_interval: Duration,
    /// Share of the interval (0–1) added at random.
    pub jitter: f64,
    pub full_pass_every: Duration,
    pub max_backoff: Duration,
    pub not_ready_retry: Duration,
}

/// The shortest wait after a failure, so that a broken integration is never hammered.
pub const MIN_BACKOFF: Duration = Duration::from_secs(30);

/// Whether the next pass of an integration should be a full one.
pub fn wants_full_pass(
    last_full_pass_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    every: Duration,
) -> bool {
    last_full_pass_at.is_none_or(|last| now - last >= chrono_duration(every))
}

/// When to try again after a pass.
///
/// * success: one interval later, plus up to `jitter` of it at random (`random` in 0–1);
/// * rate limited: when Kombo said, or one interval later;
/// * not ready (Kombo's initial sync): `not_ready_retry` later;
/// * any other failure: as long again as the integration has been failing, between
///   [`MIN_BACKOFF`] and `max_backoff` — a doubling backoff that needs no stored counter.
pub fn next_due(
    result: Result<(), &SyncError>,
    interval: Duration,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    settings: &ScheduleSettings,
    random: f64,
) -> DateTime<Utc> {
    let wait = match result {
        Ok(()) => with_jitter(interval, settings.jitter, random),
        Err(error) => match error {
            SyncError::Ats(AtsError::RateLimited { retry_after }) => {
                retry_after.unwrap_or(interval)
            }
            SyncError::Ats(AtsError::NotReady { .. }) => settings.not_ready_retry,
            _ => {
                let failing_for = failing_since
                    .map(|since| (now - since).to_std().unwrap_or_default())
                    .unwrap_or_default();
                failing_for.clamp(MIN_BACKOFF, settings.max_backoff.max(MIN_BACKOFF))
            }
        },
    };
    now + chrono_duration(wait)
}

fn with_jitter(interval: Duration, jitter: f64, random: f64) -> Duration {
    interval.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0))
}

pub(crate) fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn settings() -> ScheduleSettings {
        ScheduleSettings {
            poll_interval: Duration::from_secs(300),
            jitter: 0.1,
            full_pass_every: Duration::from_secs(86_400),
            max_backoff: Duration::from_secs(3600),
            not_ready_retry: Duration::from_secs(900),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    #[test]
    fn success_waits_one_interval_plus_jitter() {
        let interval = Duration::from_secs(300);
        assert_eq!(
            next_due(Ok(()), interval, None, now(), &settings(), 0.0),
            now() + secs(300)
        );
        assert_eq!(
            next_due(Ok(()), interval, None, now(), &settings(), 1.0),
            now() + secs(330)
        );
    }

    #[test]
    fn rate_limit_waits_as_kombo_says() {
        let error = SyncError::Ats(AtsError::RateLimited {
            retry_after: Some(Duration::from_secs(42)),
        });
        let due = next_due(
            Err(&error),
            Duration::from_secs(300),
            None,
            now(),
            &settings(),
            0.5,
        );
        assert_eq!(due, now() + secs(42));
    }

    #[test]
    fn initial_sync_is_retried_gently() {
        let error = SyncError::Ats(AtsError::NotReady {
            code: "INTEGRATION.SETUP_SYNC_PENDING".into(),
            message: "initial sync".into(),
        });
        let due = next_due(
            Err(&error),
            Duration::from_secs(60),
            None,
            now(),
            &settings(),
            0.0,
        );
        assert_eq!(due, now() + secs(900));
    }

    #[test]
    fn failures_back_off_by_doubling_up_to_the_maximum() {
        let error = SyncError::Ats(AtsError::Transient {
            reason: "502".into(),
        });
        let interval = Duration::from_secs(300);
        let first = next_due(Err(&error), interval, Some(now()), now(), &settings(), 0.0);
        assert_eq!(first, now() + secs(30));
        let later = next_due(
            Err(&error),
            interval,
            Some(now() - secs(600)),
            now(),
            &settings(),
            0.0,
        );
        assert_eq!(later, now() + secs(600));
        let capped = next_due(
            Err(&error),
            interval,
            Some(now() - secs(86_400)),
            now(),
            &settings(),
            0.0,
        );
        assert_eq!(capped, now() + secs(3600));
    }

    #[test]
    fn full_pass_is_due_first_and_after_its_period() {
        let every = Duration::from_secs(86_400);
        assert!(wants_full_pass(None, now(), every));
        assert!(!wants_full_pass(Some(now() - secs(3600)), now(), every));
        assert!(wants_full_pass(Some(now() - secs(86_400)), now(), every));
    }
}
