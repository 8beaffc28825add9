//! The HTTP side of the client: authentication, rate limiting, concurrency caps, retries,
//! timeouts, tracing and metrics. What is sent and how answers map lives in `gateway`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::IntegrationId;
use domain::ports::AtsError;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::budget::{RateBudget, Reported, Turn};
use crate::config::{KomboConfig, WRITES_IN_FLIGHT_PER_INTEGRATION};
use crate::error::{self, Failure, KomboError, RequestKind};

/// Longest a request waits for the answer that tells Kombo's current rate-limit window.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// Longest single backoff between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One request to Kombo.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    /// The path's segments after the base URL; each is percent-encoded.
    pub(crate) segments: Vec<&'a str>,
    /// A low-cardinality name for metrics, e.g. `GET /ats/applications`.
    pub(crate) endpoint: &'static str,
    pub(crate) integration: Option<&'a IntegrationId>,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<serde_json::Value>,
}

impl Call<'_> {
    fn is_write(&self) -> bool {
        self.method != Method::GET
    }

    fn kind(&self) -> RequestKind {
        RequestKind {
            had_cursor: self.query.iter().any(|(name, _)| *name == "cursor"),
        }
    }
}

/// Kombo's ATS API over HTTP, implementing [`domain::ports::AtsGateway`].
pub struct KomboClient {
    http: reqwest::Client,
    config: KomboConfig,
    global_rate: DefaultDirectRateLimiter,
    integration_rate: DefaultKeyedRateLimiter<String>,
    budget: RateBudget,
    /// Held by the one request sent while no answer has told the current window yet.
    probe: tokio::sync::Mutex<()>,
    in_flight: Semaphore,
    writes_in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl std::fmt::Debug for KomboClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KomboClient")
            .field("base_url", &self.config.base_url.as_str())
            .finish_non_exhaustive()
    }
}

fn per_second(name: &str, value: u32) -> Result<Quota, KomboError> {
    NonZeroU32::new(value)
        .map(Quota::per_second)
        .ok_or_else(|| KomboError::Config(format!("{name} must be at least 1")))
}

impl KomboClient {
    pub fn new(config: KomboConfig) -> Result<Self, KomboError> {
        if config.max_concurrency == 0 {
            return Err(KomboError::Config(
                "max_concurrency must be at least 1".into(),
            ));
        }
        if config.base_url.cannot_be_a_base() {
            return Err(KomboError::Config(format!(
                "{} cannot be a base URL",
                config.base_url
            )));
        }
        let global = per_second("requests_per_second", config.requests_per_second)?;
        let per_integration = per_second(
            "requests_per_second_per_integration",
            config.requests_per_second_per_integration,
        )?;
        let mut auth = HeaderValue::try_from(format!("Bearer {}", config.api_key.expose_secret()))
            .map_err(|_| KomboError::Config("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("stagewatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            in_flight: Semaphore::new(config.max_concurrency),
            global_rate: RateLimiter::direct(global),
            integration_rate: RateLimiter::keyed(per_integration),
            budget: RateBudget::default(),
            probe: tokio::sync::Mutex::new(()),
            writes_in_flight: Mutex::new(HashMap::new()),
            config,
        })
    }

    /// Sends `call`, retrying a read that failed in a way a retry may cure, and returns the
    /// body of the successful answer.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Vec<u8>, AtsError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let failure = match self.attempt(call).await {
                Ok(body) => return Ok(body),
                Err(failure) => failure,
            };
            // A write is never sent twice: Kombo has no idempotency key, so a create that
            // timed out may have been applied.
            if call.is_write() || !failure.retryable || attempt >= self.config.max_retries {
                return Err(failure.error);
            }
            let delay = self.backoff(attempt, failure.error.retry_after());
            if started.elapsed() + delay > self.config.retry_budget {
                return Err(failure.error);
            }
            tracing::warn!(
                endpoint = call.endpoint,
                attempt = attempt + 1,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %failure.error,
                "retrying a Kombo read"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Exponential backoff with jitter, never shorter than the wait Kombo asked for.
    fn backoff(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let exponential = self
            .config
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(MAX_BACKOFF);
        let jittered = exponential.mul_f64(rand::rng().random_range(0.5..=1.0));
        asked.map_or(jittered, |asked| asked.max(jittered))
    }

    async fn attempt(&self, call: &Call<'_>) -> Result<Vec<u8>, Failure> {
        let _write_slot = match (call.is_write(), call.integration) {
            (true, Some(integration)) => Some(
                self.write_slots(integration)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            ),
            _ => None,
        };
        let waited = Instant::now();
        self.global_rate.until_ready().await;
        metrics::histogram!("kombo_rate_limit_wait_seconds", "source" => "global")
            .record(waited.elapsed().as_secs_f64());
        if let Some(integration) = call.integration {
            let waited = Instant::now();
            self.integration_rate
                .until_key_ready(&integration.as_str().to_owned())
                .await;
            metrics::histogram!("kombo_rate_limit_wait_seconds", "source" => "integration")
                .record(waited.elapsed().as_secs_f64());
        }
        // The configured rates are the ceiling; Kombo's own account of its limit paces below it.
        // Until an answer told the current window, requests go one at a time (each waiting at
        // most PROBE_WAIT for the one ahead), so a burst cannot overrun a window it knows
        // nothing of.
        let waited = Instant::now();
        let _probe = loop {
            let mut probe = None;
            if !self.budget.is_known(Instant::now())
                && let Ok(guard) = tokio::time::timeout(PROBE_WAIT, self.probe.lock()).await
                && !self.budget.is_known(Instant::now())
            {
                probe = Some(guard);
            }
            match self.budget.reserve(call.is_write(), Instant::now()) {
                Turn::After(wait) => {
                    tokio::time::sleep(wait).await;
                    break probe;
                }
                // Asked again after the wait: the next window is learnt like the first.
                Turn::WindowUsedUp(wait) => tokio::time::sleep(wait).await,
            }
        };
        metrics::histogram!("kombo_rate_limit_wait_seconds", "source" => "kombo")
            .record(waited.elapsed().as_secs_f64());
        // Taken after the waits, so that a paced request holds no connection slot.
        let _slot = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let span = tracing::info_span!(
            "kombo_request",
            method = %call.method,
            endpoint = call.endpoint,
            integration = call.integration.map(IntegrationId::as_str),
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self.send(call).instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let status = match &result {
            Ok((status, _, _)) => status.as_str().to_owned(),
            Err(_) => "transport_error".to_owned(),
        };
        span.record("status", status.as_str());
        span.record(
            "duration_ms",
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        );
        metrics::counter!("kombo_requests_total", "endpoint" => call.endpoint, "status" => status)
            .increment(1);
        metrics::histogram!("kombo_request_duration_seconds", "endpoint" => call.endpoint)
            .record(elapsed.as_secs_f64());
        let (status, retry_after, body) = result?;
        if status.is_success() {
            return Ok(body);
        }
        let failure = error::from_response(status, retry_after, &body, call.kind());
        span.in_scope(|| {
            tracing::warn!(kind = failure.error.kind(), error = %failure.error, "Kombo refused a request");
        });
        Err(failure)
    }

    /// One HTTP exchange: status, the wait from `ratelimit-reset`, and the body.
    async fn send(
        &self,
        call: &Call<'_>,
    ) -> Result<(StatusCode, Option<Duration>, Vec<u8>), Failure> {
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .expect("checked in new")
            .pop_if_empty()
            .extend(&call.segments);
        let mut request = self.http.request(call.method.clone(), url);
        if let Some(integration) = call.integration {
            request = request.header("X-Integration-Id", integration.as_str());
        }
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let transport = |error: reqwest::Error| {
            if error.is_connect() {
                // Nothing was sent: even a write may be sent again.
                return Failure {
                    error: AtsError::Unreachable {
                        reason: error.without_url().to_string(),
                    },
                    retryable: true,
                };
            }
            Failure {
                error: AtsError::Transient {
                    reason: error.without_url().to_string(),
                },
                // A write that failed in transit may have been applied.
                retryable: !call.is_write(),
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if let Some(reported) = Reported::from_headers(response.headers()) {
            self.budget.observe(
                reported,
                status == StatusCode::TOO_MANY_REQUESTS,
                Instant::now(),
            );
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("kombo_rate_limit_remaining")
                .set(self.budget.left().unwrap_or(reported.remaining) as f64);
        }
        let retry_after = response
            .headers()
            .get("ratelimit-reset")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(transport)?;
        Ok((status, retry_after, body.to_vec()))
    }

    /// Forgets the per-integration state (rate limiter, write slots) of integrations that are
    /// idle: a limiter back to its full burst, no write in flight. Without it both maps keep
    /// an entry for every integration ever called. Returns how many integrations are still
    /// tracked.
    pub fn prune_idle(&self) -> usize {
        self.integration_rate.retain_recent();
        self.integration_rate.shrink_to_fit();
        let mut slots = self
            .writes_in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the map holds an idle entry's `Arc`; a writer holds another while it waits or
        // writes.
        slots.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot.available_permits() < WRITES_IN_FLIGHT_PER_INTEGRATION
        });
        slots.shrink_to_fit();
        self.integration_rate.len().max(slots.len())
    }

    fn write_slots(&self, integration: &IntegrationId) -> Arc<Semaphore> {
        let mut slots = self
            .writes_in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .entry(integration.as_str().to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(WRITES_IN_FLIGHT_PER_INTEGRATION)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn client() -> KomboClient {
        let mut config = KomboConfig::new(
            url::Url::parse("http://127.0.0.1:9/v1").unwrap(),
            SecretString::from("key"),
        );
        config.requests_per_second_per_integration = 20;
        KomboClient::new(config).unwrap()
    }

    fn integration(name: &str) -> IntegrationId {
        IntegrationId::parse(format!("greenhouse:{name}")).unwrap()
    }

    #[test]
    fn idle_integrations_are_forgotten_and_busy_ones_kept() {
        let client = client();
        for n in 0..50 {
            let key = format!("greenhouse:idle-{n}");
            assert!(client.integration_rate.check_key(&key).is_ok());
            drop(client.write_slots(&integration(&format!("idle-{n}"))));
        }
        let writing = client.write_slots(&integration("writing"));
        let permit = writing.try_acquire().unwrap();
        assert_eq!(client.writes_in_flight.lock().unwrap().len(), 51);
        assert_eq!(client.integration_rate.len(), 50);

        // One request at 20 per second is forgotten 50 ms later; wait well past that.
        std::thread::sleep(Duration::from_millis(300));
        client.prune_idle();
        assert_eq!(
            client.integration_rate.len(),
            0,
            "idle limiters are dropped"
        );
        let slots = client.writes_in_flight.lock().unwrap();
        assert_eq!(
            slots.keys().collect::<Vec<_>>(),
            ["greenhouse:writing"],
            "an integration with a write in flight keeps its slots"
        );
        drop(permit);
    }
}
