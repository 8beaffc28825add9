use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_postgres::{AttemptOutcome, DeliveryAttempt, DeliveryStatus, DueDelivery, Store};
use domain::ChangeEvent;
use domain::event::EndpointDisabled;
use domain::ports::Clock;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::schedule::{DISABLE_AFTER, RETRY_WAITS};
use super::sign::sign;
use crate::config::Settings;

/// Longest excerpt of an endpoint's response kept with an attempt.
const EXCERPT_BYTES: usize = 512;
/// How long a claimed delivery stays claimed: well beyond a request's timeout, so that only a
/// crashed worker's claims run out.
const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// How often the outbox is polled when idle.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Drains the outbox: claims due deliveries, posts each signed event to its endpoint, records
/// the attempt and schedules the retry.
pub struct Deliverer {
    store: Store,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    concurrency: usize,
    retry_waits: Vec<Duration>,
    idle_poll: Duration,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: &Settings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.webhooks.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stagewatch-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            clock,
            http,
            concurrency: settings.webhooks.concurrency,
            retry_waits: RETRY_WAITS.to_vec(),
            idle_poll: IDLE_POLL,
        })
    }

    /// Replaces the retry schedule (waits after each failed attempt); tests use short ones.
    #[must_use]
    pub fn with_retry_waits(mut self, waits: Vec<Duration>, idle_poll: Duration) -> Self {
        self.retry_waits = waits;
        self.idle_poll = idle_poll;
        self
    }

    /// Runs until `shutdown`; deliveries in flight finish first.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut running: JoinSet<()> = JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let free = this.concurrency.saturating_sub(running.len());
            let mut claimed = 0;
            if free > 0 {
                let lease = CLAIM_LEASE;
                match this
                    .store
                    .claim_due_deliveries(this.clock.now(), u32::try_from(free).unwrap_or(1), lease)
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
            }
        }
        while running.join_next().await.is_some() {}
    }

    async fn deliver(&self, delivery: DueDelivery) {
        let payload = serde_json::to_vec(&delivery.event).expect("events serialize");
        let attempted_at = self.clock.now();
        let endpoint = &delivery.endpoint;
        let signed = match sign(
            &[endpoint.secret.as_str()],
            delivery.event.event.id.as_str(),
            attempted_at.timestamp(),
            &payload,
        ) {
            Ok(signed) => signed,
            Err(error) => {
                tracing::error!(endpoint = %endpoint.id, %error, "an endpoint secret is unusable");
                return;
            }
        };
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
        let latency = started.elapsed();
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let (status_code, excerpt, error) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                let excerpt =
                    String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned();
                (Some(status), Some(excerpt), None)
            }
            Err(error) => (None, None, Some(describe_error(error))),
        };
        let delivered = status_code.is_some_and(|s| (200..300).contains(&s));
        let attempts = delivery.attempt;
        let outcome = if delivered {
            AttemptOutcome::Delivered
        } else {
            let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
            match self.retry_waits.get(index) {
                Some(&wait) => AttemptOutcome::RetryAt(
                    self.clock.now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()),
                ),
                _ => AttemptOutcome::GiveUp,
            }
        };
        let label = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retrying",
            AttemptOutcome::GiveUp => "given_up",
        };
        metrics::counter!("stagewatch_webhook_deliveries_total", "outcome" => label).increment(1);
        tracing::info!(
            endpoint = %endpoint.id,
            event = %delivery.event.event.id,
            attempt = attempts,
            status = status_code,
            latency_ms,
            outcome = label,
            "webhook attempt"
        );
        let give_up = matches!(outcome, AttemptOutcome::GiveUp);
        let record = DeliveryAttempt {
            at: attempted_at,
            status_code,
            latency,
            response_excerpt: excerpt,
            error,
        };
        if let Err(error) = self
            .store
            .record_attempt(delivery.delivery_id, &record, outcome)
            .await
        {
            // The claim runs out and the delivery is attempted again: at least once.
            tracing::warn!(%error, "could not record a webhook attempt");
            return;
        }
        if give_up && let Err(error) = self.disable_if_failing(endpoint).await {
            tracing::warn!(%error, "could not check a failing endpoint");
        }
    }

    /// Disables an endpoint whose deliveries are being given up and that has delivered nothing
    /// for [`DISABLE_AFTER`], announcing it with an `endpoint.disabled` event.
    async fn disable_if_failing(
        &self,
        endpoint: &adapters_postgres::EndpointRecord,
    ) -> Result<(), domain::ports::StoreError> {
        let now = self.clock.now();
        let since =
            now - chrono::Duration::from_std(DISABLE_AFTER).unwrap_or(chrono::Duration::days(1));
        let recent = self.store.list_deliveries(&endpoint.id, None, 200).await?;
        let delivered_lately = recent.iter().any(|d| {
            d.status == DeliveryStatus::Delivered && d.finished_at.is_some_and(|t| t >= since)
        });
        let failing_long = endpoint.created_at <= since;
        if delivered_lately || !failing_long || !endpoint.enabled {
            return Ok(());
        }
        let reason = "no successful delivery for 24 hours; deliveries were given up";
        if self
            .store
            .disable_endpoint(&endpoint.id, reason, now)
            .await?
        {
            let event = ChangeEvent::endpoint_disabled(
                EndpointDisabled {
                    endpoint_id: endpoint.id.clone(),
                    url: endpoint.url.clone(),
                    reason: reason.to_owned(),
                },
                now,
            );
            self.store.append_events(vec![event]).await?;
            tracing::warn!(endpoint = %endpoint.id, "webhook endpoint disabled after failing for a day");
        }
        Ok(())
    }
}

/// An error in words, without the URL's query (which may carry a token).
fn describe_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        error.without_url().to_string()
    }
}
