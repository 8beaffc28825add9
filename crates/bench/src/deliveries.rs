//! Figure 7: outbound webhooks. Events appended through the store's public append (which
//! queues one outbox row per event and endpoint in the same transaction) are delivered by the
//! product's own delivery worker, with its default settings, over real HTTP to a receiver on
//! loopback that answers 200 at once; timed from the first append until every (event ×
//! endpoint) delivery has been received.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use adapters_postgres::{NewEndpoint, Store};
use anyhow::Context;
use app_server::config::Settings;
use app_server::delivery::{Deliverer, sign::generate_secret};
use app_server::wiring;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use domain::event::{ApplicationRef, Direction, IntegrationRef, JobRef, StageChange};
use domain::{
    ApplicationId, CandidateId, ChangeEvent, EventId, EventKind, IntegrationId, JobId, RemoteId,
    StageId, StageRef,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::database::BenchDatabase;
use crate::report::{Figure, format_value, progress};
use crate::rig;
use crate::stats::Latencies;

/// Endpoint counts measured, one row each.
const ENDPOINT_COUNTS: [usize; 3] = [1, 10, 100];
/// Events per append, about what one page of a sync pass appends.
const EVENTS_PER_APPEND: usize = 50;
/// Every delivery of one endpoint count must be received within this long of the first append;
/// a run that takes longer is an error, not a number.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);
/// How often the wait looks for a failed attempt in the outbox.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const INTEGRATION: &str = "bench-deliveries-greenhouse";

/// Measures deliveries per second with 1, 10 and 100 endpoints, `deliveries` (event ×
/// endpoint) deliveries each, on a database of its own.
pub(crate) async fn run(admin_url: &str, deliveries: usize) -> anyhow::Result<Vec<Figure>> {
    let database = BenchDatabase::create(admin_url).await?;
    let result = async {
        let store = database.store(10).await?;
        let outbox = Database::connect(&database.url)
            .await
            .context("could not open a connection for the outbox checks")?;
        let integration = rig::register(&store, INTEGRATION).await?;
        let receiver = Receiver::start().await?;
        let mut settings = Settings::default();
        // The receiver is on loopback; everything else is the product's default.
        settings.webhooks.allow_private_urls = true;
        let concurrency = settings.webhooks.concurrency;
        let deliverer = Deliverer::new(store.clone(), wiring::clock(), &settings)?;
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(deliverer.run(shutdown.clone()));
        progress(&format!(
            "deliveries: one delivery worker ({concurrency} in flight), receiver on {}",
            receiver.address
        ));
        let measured = async {
            let mut figures = Vec::new();
            for (round, endpoints) in ENDPOINT_COUNTS.into_iter().enumerate() {
                let events = deliveries.div_ceil(endpoints);
                let run = Round {
                    store: &store,
                    outbox: &outbox,
                    receiver: &receiver,
                    integration: &integration,
                    number: round,
                    endpoints,
                    events,
                };
                figures.extend(run.measure().await?);
            }
            anyhow::Ok(figures)
        }
        .await;
        shutdown.cancel();
        let _ = worker.await;
        receiver.stop().await;
        measured
    }
    .await;
    database.drop_database().await?;
    result
}

/// One endpoint count.
#[derive(Debug)]
struct Round<'a> {
    store: &'a Store,
    outbox: &'a DatabaseConnection,
    receiver: &'a Receiver,
    integration: &'a IntegrationId,
    /// The round's place (0, 1, 2), which keeps its events' ids apart from the others'.
    number: usize,
    endpoints: usize,
    events: usize,
}

impl Round<'_> {
    async fn measure(&self) -> anyhow::Result<Vec<Figure>> {
        let endpoint_ids = self.register_endpoints().await?;
        let expected = self.events * self.endpoints;
        progress(&format!(
            "deliveries: {} endpoint(s), {} events, {expected} deliveries",
            self.endpoints, self.events
        ));
        self.receiver.reset();
        let started = Instant::now();
        let appended = self.append().await?;
        let appended_in = started.elapsed();
        self.wait_for(expected, started).await?;
        let elapsed = started.elapsed();
        self.check_no_failed_attempt().await?;
        let (requests, lags) = self.receiver.lags(&appended);
        if lags.len() != expected {
            anyhow::bail!(
                "{} deliveries received for {expected} expected (some for events not appended)",
                lags.len()
            );
        }
        for id in endpoint_ids {
            self.store.delete_endpoint(&id).await?;
        }
        let lags = Latencies::new(lags);
        let seconds = elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let (deliveries_per_second, events_per_second) =
            (expected as f64 / seconds, self.events as f64 / seconds);
        let p99 = lags.percentile_ms(99.0);
        progress(&format!(
            "deliveries: {} endpoint(s): {expected} in {} s ({} deliveries/s, {} events/s; \
             appended in {} s), {requests} requests, lag p50 {} ms p99 {} ms",
            self.endpoints,
            format_value(seconds),
            format_value(deliveries_per_second),
            format_value(events_per_second),
            format_value(appended_in.as_secs_f64()),
            format_value(lags.percentile_ms(50.0)),
            format_value(p99),
        ));
        let what = format!(
            "{} endpoint(s), {} events ({expected} deliveries)",
            self.endpoints, self.events
        );
        Ok(vec![
            Figure::reported(
                "7 webhooks",
                format!("deliveries per second, {what}"),
                deliveries_per_second,
                "deliveries/s",
            ),
            Figure::reported(
                "7 webhooks",
                format!("events per second, {what}"),
                events_per_second,
                "events/s",
            ),
            Figure::reported(
                "7 webhooks",
                format!("outbox lag, append to receipt, p99 (all appended at once), {what}"),
                p99,
                "ms",
            ),
        ])
    }

    async fn register_endpoints(&self) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(self.endpoints);
        for number in 0..self.endpoints {
            let endpoint = self
                .store
                .create_endpoint(
                    &NewEndpoint {
                        url: format!("http://{}/hooks/{number}", self.receiver.address),
                        description: Some(format!("bench endpoint {number}")),
                        event_types: Vec::new(),
                        secret: generate_secret(),
                    },
                    Utc::now(),
                )
                .await?;
            ids.push(endpoint.id);
        }
        Ok(ids)
    }

    /// Appends the round's events, [`EVENTS_PER_APPEND`] at a time, as fast as the store
    /// takes them; when each event's append began, by event id.
    async fn append(&self) -> anyhow::Result<HashMap<String, Instant>> {
        let mut appended = HashMap::with_capacity(self.events);
        let mut number = 0;
        while number < self.events {
            let batch: Vec<ChangeEvent> = (number..self.events.min(number + EVENTS_PER_APPEND))
                .map(|n| self.event(n))
                .collect::<anyhow::Result<_>>()?;
            number += batch.len();
            let at = Instant::now();
            for event in &batch {
                appended.insert(event.id.as_str().to_owned(), at);
            }
            let count = batch.len();
            let new = self.store.append_events(batch).await?;
            anyhow::ensure!(
                usize::try_from(new) == Ok(count),
                "{new} of {count} events appended"
            );
        }
        Ok(appended)
    }

    /// Event `n` of the round: a stage change, as a sync pass would append it.
    fn event(&self, n: usize) -> anyhow::Result<ChangeEvent> {
        let now = Utc::now();
        let job = JobId::parse(format!("job-{}", n % 20))?;
        let stage = |id: &str, name: &str, index: i32| -> anyhow::Result<StageRef> {
            Ok(StageRef {
                stage_id: StageId::parse(id)?,
                name: Some(name.to_owned()),
                index: Some(index),
            })
        };
        let to = stage("stage-interview", "Interview", 2)?;
        Ok(ChangeEvent {
            id: EventId::derive(&[
                "bench-deliveries",
                &self.number.to_string(),
                &n.to_string(),
                &now.to_rfc3339(),
            ]),
            occurred_at: now,
            detected_at: now,
            integration: Some(IntegrationRef::from_id(self.integration)),
            application: Some(ApplicationRef {
                id: ApplicationId::parse(format!("app-{}-{n}", self.number))?,
                remote_id: Some(RemoteId::parse((4_000_000 + n).to_string())?),
                candidate_id: Some(CandidateId::parse(format!("cand-{}-{n}", self.number))?),
                candidate_name: Some(format!("Candidate {n}")),
                job_id: Some(job.clone()),
                current_stage: Some(to.clone()),
                outcome: Some(domain::Outcome::Pending),
                deleted: false,
            }),
            job: Some(JobRef {
                id: job,
                name: Some(format!("Engineer {}", n % 20)),
            }),
            origin: None,
            kind: EventKind::StageChanged(StageChange {
                from: Some(stage("stage-screen", "Phone screen", 1)?),
                to,
                direction: Direction::Forward,
                skipped: Vec::new(),
                time_in_previous_stage_seconds: Some(86_400),
            }),
        })
    }

    /// Waits until `expected` distinct deliveries were received, failing at the first failed
    /// attempt in the outbox or after [`GIVE_UP_AFTER`].
    async fn wait_for(&self, expected: usize, started: Instant) -> anyhow::Result<()> {
        let mut received = self.receiver.subscribe();
        loop {
            let left = GIVE_UP_AFTER.saturating_sub(started.elapsed());
            if left.is_zero() {
                anyhow::bail!(
                    "{} of {expected} deliveries received within {} s",
                    *received.borrow(),
                    GIVE_UP_AFTER.as_secs()
                );
            }
            let wait = received.wait_for(|count| *count >= expected);
            if let Ok(done) = tokio::time::timeout(left.min(CHECK_EVERY), wait).await {
                done.context("the receiver stopped")?;
                return Ok(());
            }
            self.check_no_failed_attempt().await?;
        }
    }

    /// An attempt that did not get the receiver's 200 is an error of the run.
    async fn check_no_failed_attempt(&self) -> anyhow::Result<()> {
        let row = self
            .outbox
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS failed, min(coalesce(error, 'status ' || status_code::text)) \
                 AS why FROM webhook_attempts WHERE status_code IS DISTINCT FROM 200",
            ))
            .await?
            .context("a count has a row")?;
        let failed: i64 = row.try_get("", "failed")?;
        if failed > 0 {
            let why: Option<String> = row.try_get("", "why")?;
            anyhow::bail!(
                "{failed} delivery attempt(s) failed, e.g.: {}",
                why.unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// The product's webhook receiver on loopback: answers 200 to every POST on
/// `/hooks/{endpoint}` and notes when each (endpoint, `webhook-id`) first arrived.
#[derive(Debug)]
struct Receiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

#[derive(Debug, Default)]
struct Receipts {
    first: HashMap<(u32, String), Instant>,
    requests: u64,
}

#[derive(Debug)]
struct Shared {
    receipts: Mutex<Receipts>,
    /// Distinct deliveries received since the last reset; sent under the receipts' lock, so
    /// that it only grows.
    distinct: watch::Sender<usize>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            receipts: Mutex::new(Receipts::default()),
            distinct: watch::channel(0).0,
        });
        let app = axum::Router::new()
            .route("/hooks/{endpoint}", post(receive))
            .with_state(Arc::clone(&shared));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Ok(Self {
            address,
            shared,
            shutdown,
            server,
        })
    }

    fn reset(&self) {
        let mut receipts = lock(&self.shared.receipts);
        *receipts = Receipts::default();
        self.shared.distinct.send_replace(0);
    }

    fn subscribe(&self) -> watch::Receiver<usize> {
        self.shared.distinct.subscribe()
    }

    /// Requests received, and each distinct delivery's delay since its event's append (only
    /// deliveries of the events in `appended`).
    fn lags(&self, appended: &HashMap<String, Instant>) -> (u64, Vec<Duration>) {
        let receipts = lock(&self.shared.receipts);
        let lags = receipts
            .first
            .iter()
            .filter_map(|((_, id), received)| {
                appended
                    .get(id)
                    .map(|append| received.saturating_duration_since(*append))
            })
            .collect();
        (receipts.requests, lags)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(endpoint): Path<u32>,
    headers: HeaderMap,
    // Read, so that the connection is kept for the next delivery.
    _body: axum::body::Bytes,
) -> StatusCode {
    let now = Instant::now();
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut receipts = lock(&shared.receipts);
    receipts.requests += 1;
    receipts.first.entry((endpoint, id)).or_insert(now);
    shared.distinct.send_replace(receipts.first.len());
    StatusCode::OK
}

fn lock(receipts: &Mutex<Receipts>) -> MutexGuard<'_, Receipts> {
    receipts.lock().unwrap_or_else(PoisonError::into_inner)
}
