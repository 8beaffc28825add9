use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_postgres::{AttemptOutcome, DeliveryAttempt, DueDelivery, EndpointRecord, Store};
use chrono::{DateTime, Utc};
use domain::ChangeEvent;
use domain::event::EndpointDisabled;
use domain::ports::Clock;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::address::{PublicOnlyResolver, is_private_host, refused_address};
use super::schedule::{RetrySchedule, should_disable};
use super::sign::{SignedHeaders, sign};
use crate::config::Settings;

/// Longest excerpt of an endpoint's response kept with an attempt.
const EXCERPT_BYTES: usize = 512;
/// How often the outbox is polled when idle.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Beside twice the request timeout, what a claim leaves for signing and recording.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// How long a claimed delivery stays claimed for a request timeout of `timeout`: twice the
/// timeout and a margin, so that only a crashed or frozen worker's claims run out. (A worker
/// that outlives its claim anyway cannot record over a newer claim: `record_attempt` is fenced.)
pub fn claim_lease(timeout: Duration) -> Duration {
    timeout.saturating_mul(2).saturating_add(CLAIM_MARGIN)
}

/// Drains the outbox: claims due deliveries, posts each signed event to its endpoint, records
/// the attempt and schedules the retry.
pub struct Deliverer {
    store: Store,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    concurrency: usize,
    lease: Duration,
    allow_private_urls: bool,
    schedule: RetrySchedule,
    idle_poll: Duration,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// What one request to an endpoint came to.
struct Sent {
    status_code: Option<u16>,
    excerpt: Option<String>,
    error: Option<String>,
    latency: Duration,
}

impl Sent {
    fn failed(error: String) -> Self {
        Self {
            status_code: None,
            excerpt: None,
            error: Some(error),
            latency: Duration::ZERO,
        }
    }

    fn delivered(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Deliverer {
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: &Settings) -> anyhow::Result<Self> {
        let allow_private_urls = settings.webhooks.allow_private_urls;
        // Redirects are not followed: each hop would need the same address check, and a
        // Standard Webhooks consumer answers a delivery itself.
        let mut http = reqwest::Client::builder()
            .timeout(settings.webhooks.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stagewatch-webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private_urls {
            // A proxy would connect on our behalf to addresses the resolver never sees.
            http = http.dns_resolver(PublicOnlyResolver).no_proxy();
        }
        Ok(Self {
            store,
            clock,
            http: http.build()?,
            concurrency: settings.webhooks.concurrency,
            lease: claim_lease(settings.webhooks.timeout),
            allow_private_urls,
            schedule: RetrySchedule::new(settings.webhooks.retry_waits.clone()),
            idle_poll: IDLE_POLL,
        })
    }

    /// Replaces the retry schedule; tests use short ones.
    #[must_use]
    pub fn with_schedule(mut self, schedule: RetrySchedule, idle_poll: Duration) -> Self {
        self.schedule = schedule;
        self.idle_poll = idle_poll;
        self
    }

    /// Runs until `shutdown`; deliveries in flight finish first.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut running: JoinSet<()> = JoinSet::new();
        // New events are due deliveries at once: wake on every append rather than at the next
        // idle poll (which still catches retries coming due, and appends while the listener
        // reconnects).
        let mut appended = match this.store.watch_appends().await {
            Ok(appended) => Some(appended),
            Err(error) => {
                tracing::warn!(%error, "could not watch the feed; polling the outbox only");
                None
            }
        };
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // Collect every delivery that finished meanwhile, not only the one that woke this
            // loop: the claim then fills all free slots in one statement instead of one each.
            while running.try_join_next().is_some() {}
            let free = this.concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 {
                match this
                    .store
                    .claim_due_deliveries(
                        this.clock.now(),
                        u32::try_from(free).unwrap_or(1),
                        this.lease,
                    )
                    .await
                {
                    Ok(due) => {
                        claimed = due.len();
                        for delivery in due {
                            let worker = Arc::clone(&this);
                            running.spawn(async move { worker.deliver(delivery).await });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "could not claim webhook deliveries"),
                }
            }
            if claimed > 0 && running.len() < this.concurrency {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(this.idle_poll) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                changed = next_append(appended.as_mut()), if running.len() < this.concurrency => {
                    if changed.is_err() {
                        appended = None;
                    }
                }
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// One attempt: sign, send, classify, record; then the disabling rule when given up.
    async fn deliver(&self, delivery: DueDelivery) {
        let payload = serde_json::to_vec(&delivery.event).expect("events serialize");
        let attempted_at = self.clock.now();
        let endpoint = &delivery.endpoint;
        let sent = match sign(
            &endpoint.signing_secrets(attempted_at),
            delivery.event.event.id.as_str(),
            attempted_at.timestamp(),
            &payload,
        ) {
            Ok(signed) => self.send(endpoint, &signed, payload).await,
            Err(error) => {
                // Recorded like any failed attempt, so it is retried, given up and, after a
                // day, disables the endpoint instead of failing silently forever.
                tracing::error!(endpoint = %endpoint.id, %error, "an endpoint secret is unusable");
                Sent::failed(format!(
                    "the endpoint's signing secret is unusable: {error}"
                ))
            }
        };
        let outcome = self.classify(&sent, delivery.attempt);
        let label = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retrying",
            AttemptOutcome::GiveUp => "given_up",
        };
        metrics::counter!("stagewatch_webhook_deliveries_total", "outcome" => label, "endpoint" => endpoint.id.clone())
            .increment(1);
        tracing::info!(
            endpoint = %endpoint.id,
            event = %delivery.event.event.id,
            attempt = delivery.attempt,
            status = sent.status_code,
            latency_ms = u64::try_from(sent.latency.as_millis()).unwrap_or(u64::MAX),
            outcome = label,
            "webhook attempt"
        );
        let record = DeliveryAttempt {
            at: attempted_at,
            status_code: sent.status_code,
            latency: sent.latency,
            response_excerpt: sent.excerpt,
            error: sent.error,
        };
        match self
            .store
            .record_attempt(delivery.delivery_id, delivery.attempt, &record, outcome)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                // The claim ran out and the delivery was claimed again (or finished) since:
                // the newer claim's outcome stands.
                tracing::warn!(
                    endpoint = %endpoint.id,
                    event = %delivery.event.event.id,
                    "a webhook attempt outlived its claim and was not recorded"
                );
                return;
            }
            Err(error) => {
                // The claim runs out and the delivery is attempted again: at least once.
                tracing::warn!(%error, "could not record a webhook attempt");
                return;
            }
        }
        if matches!(outcome, AttemptOutcome::GiveUp)
            && let Err(error) = self.disable_if_failing(endpoint, attempted_at).await
        {
            tracing::warn!(%error, "could not check a failing endpoint");
        }
    }

    /// Posts the signed payload; only to public addresses unless private ones are allowed.
    async fn send(
        &self,
        endpoint: &EndpointRecord,
        signed: &SignedHeaders,
        payload: Vec<u8>,
    ) -> Sent {
        // Literal addresses are connected to without resolving, so they are checked here.
        let literal_private = url::Url::parse(&endpoint.url)
            .ok()
            .and_then(|url| url.host().map(|host| is_private_host(&host)))
            .unwrap_or(false);
        if literal_private && !self.allow_private_urls {
            refused_private_address();
            return Sent::failed(
                "refused: the URL names a non-public address, which webhooks.allow_private_urls forbids"
                    .to_owned(),
            );
        }
        let started = Instant::now();
        let response = self
            .http
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", &signed.signature)
            .body(payload)
            .send()
            .await;
        let sent = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                let excerpt =
                    String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned();
                Sent {
                    status_code: Some(status),
                    excerpt: Some(excerpt),
                    error: None,
                    latency: Duration::ZERO,
                }
            }
            Err(error) => Sent::failed(describe_error(&error)),
        };
        Sent {
            latency: started.elapsed(),
            ..sent
        }
    }

    /// Delivered, retried after the schedule's wait, or given up.
    fn classify(&self, sent: &Sent, attempt: u32) -> AttemptOutcome {
        if sent.delivered() {
            return AttemptOutcome::Delivered;
        }
        match self.schedule.wait_after(attempt) {
            Some(wait) => AttemptOutcome::RetryAt(
                self.clock.now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()),
            ),
            None => AttemptOutcome::GiveUp,
        }
    }

    /// Disables an endpoint whose deliveries are being given up and that has delivered nothing
    /// for a day ([`should_disable`]), with its `endpoint.disabled` event in the same
    /// transaction.
    async fn disable_if_failing(
        &self,
        endpoint: &EndpointRecord,
        now: DateTime<Utc>,
    ) -> Result<(), domain::ports::StoreError> {
        if !endpoint.enabled {
            return Ok(());
        }
        let last_delivered_at = self.store.last_delivered_at(&endpoint.id).await?;
        if !should_disable(endpoint.created_at, last_delivered_at, now) {
            return Ok(());
        }
        let reason = "no successful delivery for 24 hours; deliveries were given up";
        let event = ChangeEvent::endpoint_disabled(
            EndpointDisabled {
                endpoint_id: endpoint.id.clone(),
                url: endpoint.url.clone(),
                reason: reason.to_owned(),
            },
            now,
        );
        if self
            .store
            .disable_endpoint(&endpoint.id, reason, now, Some(event))
            .await?
        {
            tracing::warn!(endpoint = %endpoint.id, "webhook endpoint disabled after failing for a day");
        }
        Ok(())
    }
}

fn refused_private_address() {
    crate::http::refused::Refusal::WebhookPrivateAddress.count();
}

/// An error in words, without the URL's query (which may carry a token).
fn describe_error(error: &reqwest::Error) -> String {
    if let Some(refused) = refused_address(error) {
        refused_private_address();
        return format!("refused: {refused}");
    }
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_redirect() {
        "redirected; redirects are not followed".to_owned()
    } else {
        let mut text = error.to_string();
        if let Some(url) = error.url() {
            text = text.replace(url.as_str(), "<url>");
        }
        text
    }
}

/// The next move of the feed's head; never, without a receiver.
async fn next_append(
    appended: Option<&mut tokio::sync::watch::Receiver<i64>>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match appended {
        Some(appended) => appended.changed().await,
        None => std::future::pending().await,
    }
}
