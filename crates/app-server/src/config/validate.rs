use std::path::PathBuf;
use std::time::Duration;

use super::{RetentionSettings, Settings, SyncSettings};

/// Longest `webhooks.timeout`: a claim lasts twice as long, and a delivery that slow holds a
/// worker slot for minutes.
const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the configuration cannot be used. Each message names the key, the value and what is
/// expected, so that a bad value stops start-up with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    #[error("configuration: {0}")]
    Unreadable(String),
    #[error("configuration key `{key}` has the value {value}, but {expected}")]
    Invalid {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl ConfigError {
    pub(crate) fn from_figment(error: figment::Error) -> Self {
        // figment's messages already name the key, the value found and its source
        // (file or environment variable); each error of a batch gets its own line.
        let lines: Vec<String> = error
            .into_iter()
            .map(|e| describe_figment_error(&e))
            .collect();
        Self::Unreadable(lines.join("; "))
    }

    fn invalid(key: &'static str, value: impl std::fmt::Display, expected: &'static str) -> Self {
        Self::Invalid {
            key,
            value: format!("`{value}`"),
            expected,
        }
    }
}

/// ``key `sync.concurrency` (environment variable `STAGEWATCH_SYNC__CONCURRENCY`): invalid type:
/// found string "many", expected usize``.
fn describe_figment_error(error: &figment::Error) -> String {
    if error.path.is_empty() {
        return error.kind.to_string();
    }
    let key = error.path.join(".").to_lowercase();
    let source = match &error.metadata {
        Some(metadata) => match &metadata.source {
            Some(figment::Source::File(path)) => path.display().to_string(),
            Some(figment::Source::Code(_)) => "default".to_owned(),
            Some(other) => other.to_string(),
            None if metadata.name.contains("environment") => format!(
                "environment variable {}{}",
                super::ENV_PREFIX,
                error.path.join("__").to_uppercase()
            ),
            None => metadata.name.to_string(),
        },
        None => "unknown source".to_owned(),
    };
    format!("key `{key}` ({source}): {}", error.kind)
}

impl Settings {
    /// Checks what serde cannot: ranges, URL schemes, formats.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose();
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:"))
        {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(ConfigError::invalid(
                "database.url",
                format!("{scheme}:…"),
                "expected a `postgres://…` or `sqlite://path?mode=rwc` URL",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                0,
                "expected at least 1",
            ));
        }
        match url::Url::parse(&self.kombo.base_url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            _ => {
                return Err(ConfigError::invalid(
                    "kombo.base_url",
                    &self.kombo.base_url,
                    "expected an http(s) URL such as https://api.kombo.dev/v1",
                ));
            }
        }
        let at_least_one = [
            ("kombo.max_concurrency", self.kombo.max_concurrency == 0),
            (
                "kombo.requests_per_second",
                self.kombo.requests_per_second == 0,
            ),
            (
                "kombo.requests_per_second_per_integration",
                self.kombo.requests_per_second_per_integration == 0,
            ),
        ];
        if let Some((key, _)) = at_least_one.into_iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::invalid(key, 0, "expected at least 1"));
        }
        validate_sync(&self.sync)?;
        validate_retention(&self.retention)?;
        for hash in &self.api.key_hashes {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(
                    "api.key_hashes",
                    format!("{}…", hash.chars().take(8).collect::<String>()),
                    "expected SHA-256 hashes as 64 hex digits (`stagewatch api-key hash` prints one)",
                ));
            }
        }
        if self.webhooks.concurrency == 0 {
            return Err(ConfigError::invalid(
                "webhooks.concurrency",
                0,
                "expected at least 1",
            ));
        }
        if !(Duration::from_secs(1)..=MAX_WEBHOOK_TIMEOUT).contains(&self.webhooks.timeout) {
            return Err(ConfigError::invalid(
                "webhooks.timeout",
                humantime::format_duration(self.webhooks.timeout),
                "expected 1s to 5m",
            ));
        }
        if self.webhooks.retry_waits.is_empty() {
            return Err(ConfigError::invalid(
                "webhooks.retry_waits",
                "[]",
                "expected at least one wait, e.g. [\"5s\", \"5m\"]",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::invalid(
                "log.level",
                &self.log.level,
                "expected a tracing filter such as `info` or `info,adapters_kombo=debug`",
            ));
        }
        Ok(())
    }
}

fn validate_retention(retention: &RetentionSettings) -> Result<(), ConfigError> {
    if retention.every.as_secs() < 1 {
        return Err(ConfigError::invalid(
            "retention.every",
            humantime::format_duration(retention.every),
            "expected at least 1s",
        ));
    }
    // Kombo redelivers a failed webhook for a while; forgetting its id sooner would let a
    // redelivery be handled twice.
    if retention.kombo_webhooks.as_secs() < 3600 {
        return Err(ConfigError::invalid(
            "retention.kombo_webhooks",
            humantime::format_duration(retention.kombo_webhooks),
            "expected at least 1h",
        ));
    }
    if retention.idempotency_keys.as_secs() < 3600 {
        return Err(ConfigError::invalid(
            "retention.idempotency_keys",
            humantime::format_duration(retention.idempotency_keys),
            "expected at least 1h",
        ));
    }
    if !retention.feed_max_age.is_zero() && retention.feed_max_age.as_secs() < 24 * 3600 {
        return Err(ConfigError::invalid(
            "retention.feed_max_age",
            humantime::format_duration(retention.feed_max_age),
            "expected 0s (keep forever) or at least 1day",
        ));
    }
    Ok(())
}

fn validate_sync(sync: &SyncSettings) -> Result<(), ConfigError> {
    if !(1..=250).contains(&sync.page_size) {
        return Err(ConfigError::invalid(
            "sync.page_size",
            sync.page_size,
            "expected 1 to 250 (Kombo's limits)",
        ));
    }
    if sync.concurrency == 0 {
        return Err(ConfigError::invalid(
            "sync.concurrency",
            0,
            "expected at least 1",
        ));
    }
    if !(0.0..=1.0).contains(&sync.jitter) {
        return Err(ConfigError::invalid(
            "sync.jitter",
            sync.jitter,
            "expected a share between 0 and 1",
        ));
    }
    if !(sync.deletion_guard_share > 0.0 && sync.deletion_guard_share <= 1.0) {
        return Err(ConfigError::invalid(
            "sync.deletion_guard_share",
            sync.deletion_guard_share,
            "expected a share above 0 and at most 1",
        ));
    }
    if sync.poll_interval.as_secs() < 1 {
        return Err(ConfigError::invalid(
            "sync.poll_interval",
            humantime::format_duration(sync.poll_interval),
            "expected at least 1s",
        ));
    }
    if sync.lease < sync.claim_every * 2 || sync.lease.as_secs() < 5 {
        return Err(ConfigError::invalid(
            "sync.lease",
            humantime::format_duration(sync.lease),
            "expected at least 5s and at least twice sync.claim_every",
        ));
    }
    if sync.full_pass_every < sync.poll_interval {
        return Err(ConfigError::invalid(
            "sync.full_pass_every",
            humantime::format_duration(sync.full_pass_every),
            "expected at least sync.poll_interval",
        ));
    }
    Ok(())
}
