//! Configuration: built-in defaults ← `stagewatch.toml` ← `STAGEWATCH_*` environment variables.
//!
//! Every key is documented in `docs/configuration.md` and in `deploy/stagewatch.example.toml`;
//! a test keeps the three in step.

mod describe;
mod secret;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use describe::{ConfigLine, describe};
pub use secret::Secret;
pub use validate::ConfigError;

/// The file read when `--config` is not given (when it exists).
pub const DEFAULT_CONFIG_FILE: &str = "stagewatch.toml";
/// The prefix of environment variables; `__` separates nested keys
/// (`STAGEWATCH_KOMBO__API_KEY` is `kombo.api_key`).
pub const ENV_PREFIX: &str = "STAGEWATCH_";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub kombo: KomboSettings,
    pub sync: SyncSettings,
    pub api: ApiSettings,
    pub webhooks: WebhookSettings,
    pub retention: RetentionSettings,
    pub log: LogSettings,
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host/db` or `sqlite://path?mode=rwc`.
    pub url: Secret,
    pub max_connections: u32,
    /// Apply pending migrations when `serve` starts (otherwise run `stagewatch migrate`).
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://stagewatch.db?mode=rwc"),
            max_connections: 20,
            migrate_on_start: true,
        }
    }
}

/// `[kombo]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KomboSettings {
    pub base_url: String,
    /// Kombo API key (`Authorization: Bearer …`). Required by `serve` and `sync`.
    pub api_key: Secret,
    /// Secret of Kombo's webhooks (`X-Kombo-Signature`); the receiver is off while empty.
    pub webhook_secret: Secret,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries of a failed read (writes are never retried).
    pub max_retries: u32,
    /// Requests in flight to Kombo at once, across all integrations.
    pub max_concurrency: usize,
    /// Requests per second to Kombo, across all integrations.
    pub requests_per_second: u32,
    /// Requests per second to Kombo for one integration, so that one integration's pages
    /// cannot take the whole of `requests_per_second`.
    pub requests_per_second_per_integration: u32,
}

impl Default for KomboSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.kombo.dev/v1".to_owned(),
            api_key: Secret::default(),
            webhook_secret: Secret::default(),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            max_concurrency: 8,
            requests_per_second: 100,
            requests_per_second_per_integration:
                adapters_kombo::DEFAULT_REQUESTS_PER_SECOND_PER_INTEGRATION,
        }
    }
}

/// `[sync]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Run the sync workers in `serve` (turn off for API-only replicas).
    pub workers: bool,
    /// Time between incremental passes of an integration (each integration may override it).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Random spread added to each interval, as a share of it (0–1), so integrations do not
    /// all poll at the same instant.
    pub jitter: f64,
    /// Time between full passes (with deleted applications), which repair drift and find
    /// deletions.
    #[serde(with = "humantime_serde")]
    pub full_pass_every: Duration,
    /// Integrations synced at once by one process.
    pub concurrency: usize,
    /// Kombo's `page_size`, 1–250.
    pub page_size: u16,
    /// Overlap re-read by every incremental pass, against clock skew.
    #[serde(with = "humantime_serde")]
    pub watermark_margin: Duration,
    /// How long a claimed integration stays leased without renewal; a crashed process's
    /// integrations are taken over after this.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often the scheduler looks for due integrations.
    #[serde(with = "humantime_serde")]
    pub claim_every: Duration,
    /// Longest wait between attempts of a failing integration.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Wait before retrying an integration still in Kombo's initial sync.
    #[serde(with = "humantime_serde")]
    pub not_ready_retry: Duration,
    /// Mass-deletion guard: fewer held deletions than this never trip it.
    pub deletion_guard_min_count: u64,
    /// Mass-deletion guard: share of tracked applications (0–1) deleted in one pass that holds
    /// the deletions for an operator.
    pub deletion_guard_share: f64,
    /// Name of this process in leases; host name and process id when empty.
    pub worker_id: String,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            workers: true,
            poll_interval: Duration::from_secs(300),
            jitter: 0.1,
            full_pass_every: Duration::from_secs(24 * 3600),
            concurrency: 4,
            page_size: domain::ports::DEFAULT_PAGE_SIZE,
            watermark_margin: Duration::from_secs(120),
            lease: Duration::from_secs(120),
            claim_every: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            not_ready_retry: Duration::from_secs(900),
            deletion_guard_min_count: 10,
            deletion_guard_share: 0.2,
            worker_id: String::new(),
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    /// SHA-256 hashes (hex) of the API keys allowed to call the API; see `stagewatch api-key`.
    pub key_hashes: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Longest wait a feed read may ask for (`wait`).
    #[serde(with = "humantime_serde")]
    pub max_feed_wait: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            key_hashes: Vec::new(),
            request_timeout: Duration::from_secs(30),
            body_limit_bytes: 1024 * 1024,
            max_feed_wait: Duration::from_secs(30),
        }
    }
}

/// `[webhooks]`: outbound webhooks to the product's endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Deliver webhooks from this process.
    pub workers: bool,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Timeout of one delivery attempt (1 s to 5 min); a claim lasts twice as long and 30 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Allow endpoints on loopback and private networks (for development).
    pub allow_private_urls: bool,
    /// After a secret rotation, how long deliveries are signed with the previous secret too.
    #[serde(with = "humantime_serde")]
    pub secret_rotation_overlap: Duration,
    /// Waits before each retry of a failed delivery; after the last one it is given up.
    #[serde(with = "duration_list")]
    pub retry_waits: Vec<Duration>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            workers: true,
            concurrency: 8,
            timeout: Duration::from_secs(10),
            allow_private_urls: false,
            secret_rotation_overlap: Duration::from_secs(24 * 3600),
            retry_waits: crate::delivery::schedule::RetrySchedule::default()
                .waits()
                .to_vec(),
        }
    }
}

/// `[retention]`: how long bookkeeping is kept. A janitor in `serve` purges what is older.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// How often the janitor runs.
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    /// Ids of handled Kombo webhooks, kept to answer Kombo's redeliveries as duplicates.
    #[serde(with = "humantime_serde")]
    pub kombo_webhooks: Duration,
    /// `Idempotency-Key`s of application creates: a retry after this creates anew.
    #[serde(with = "humantime_serde")]
    pub idempotency_keys: Duration,
    /// Attempts of delivered or failed webhook deliveries; the last attempt of each delivery
    /// is always kept.
    #[serde(with = "humantime_serde")]
    pub delivery_attempts: Duration,
    /// Events older than this leave the feed (with their finished deliveries); `0s`, the
    /// default, keeps the feed forever. A reader whose cursor is before the oldest kept event
    /// gets `410 Gone`.
    #[serde(with = "humantime_serde")]
    pub feed_max_age: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(3600),
            kombo_webhooks: Duration::from_secs(7 * 24 * 3600),
            idempotency_keys: Duration::from_secs(7 * 24 * 3600),
            delivery_attempts: Duration::from_secs(30 * 24 * 3600),
            feed_max_age: Duration::ZERO,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    Pretty,
    Json,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,adapters_kombo=debug`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".to_owned(),
        }
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config`: must exist when given. Without it, `stagewatch.toml` is read if present.
    pub file: Option<PathBuf>,
}

impl ConfigSource {
    /// The layered figment: defaults ← file ← environment.
    pub fn figment(&self) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match &self.file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::MissingFile(path.clone()));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).exists() {
                    figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
                }
            }
        }
        Ok(figment.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    /// Loads and validates the configuration.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        let figment = self.figment()?;
        let settings: Settings = figment.extract().map_err(ConfigError::from_figment)?;
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests;

/// A list of durations written as humantime strings (`["5s", "5m"]`).
mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        waits: &[Duration],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        waits
            .iter()
            .map(|wait| humantime::format_duration(*wait).to_string())
            .collect::<Vec<_>>()
            .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        Vec::<humantime_serde::Serde<Duration>>::deserialize(deserializer).map(|waits| {
            waits
                .into_iter()
                .map(humantime_serde::Serde::into_inner)
                .collect()
        })
    }
}
