//! How to reach Kombo and how hard to push it.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// Kombo's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.kombo.dev/v1";

/// The default ceiling of requests per second for one integration. A pass reads its pages one
/// after another, and with changes arriving all the time (a webhook per change) an integration
/// is synced back to back: at 5 per second a pass of four requests (the integration and three
/// pages of the watermark margin's re-reads) took 600 ms, and a change waited for the pass
/// before it and then its own, over a second in all. Kombo serves reads from its own copy of the
/// ATS, so this ceiling only keeps one integration from using every request of the key's limit.
pub const DEFAULT_REQUESTS_PER_SECOND_PER_INTEGRATION: u32 = 20;

/// Kombo refuses more than 30 write actions in flight for one integration.
pub const WRITES_IN_FLIGHT_PER_INTEGRATION: usize = 30;

/// The client's settings. Build with [`KomboConfig::new`] and adjust the fields.
#[derive(Debug, Clone)]
pub struct KomboConfig {
    /// `https://api.kombo.dev/v1`, or a sandbox's URL.
    pub base_url: Url,
    pub api_key: SecretString,
    /// Limit on a whole request, body included.
    pub timeout: Duration,
    /// Limit on opening the connection.
    pub connect_timeout: Duration,
    /// Retries of a failed read (writes are never retried).
    pub max_retries: u32,
    /// Time after which a read is not retried any more, however many retries are left.
    pub retry_budget: Duration,
    /// The first backoff; each further one doubles, with jitter.
    pub initial_backoff: Duration,
    /// Requests in flight at once, over all integrations.
    pub max_concurrency: usize,
    /// Requests started per second, over all integrations.
    pub requests_per_second: u32,
    /// Requests started per second for one integration, to spare the customer's ATS.
    pub requests_per_second_per_integration: u32,
}

impl KomboConfig {
    pub fn new(base_url: Url, api_key: SecretString) -> Self {
        Self {
            base_url,
            api_key,
            timeout: Duration::from_mins(1),
            connect_timeout: Duration::from_secs(10),
            max_retries: 5,
            retry_budget: Duration::from_mins(2),
            initial_backoff: Duration::from_millis(500),
            max_concurrency: 32,
            requests_per_second: 20,
            requests_per_second_per_integration: DEFAULT_REQUESTS_PER_SECOND_PER_INTEGRATION,
        }
    }

    /// For `kombo-sandbox` on loopback (tests, benchmarks, the demo's own checks): the
    /// configured rates never throttle (the sandbox enforces Kombo's window itself, and the
    /// client paces on its headers), connections fail within a second, and retries back off
    /// from 2 ms within a 5 s budget, so that a fault test waits milliseconds, not minutes.
    pub fn for_local_sandbox(base_url: Url, api_key: SecretString) -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(1),
            retry_budget: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(2),
            max_concurrency: 16,
            requests_per_second: 100_000,
            requests_per_second_per_integration: 100_000,
            ..Self::new(base_url, api_key)
        }
    }

    /// The production URL with `api_key`.
    pub fn production(api_key: SecretString) -> Self {
        Self::new(
            Url::parse(DEFAULT_BASE_URL).expect("the default base URL is valid"),
            api_key,
        )
    }
}
