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
use chrono::{DateTime, Utc};
use domain::event::{ApplicationRef, Direction, IntegrationRef, JobRef, StageChange};
use domain::sync::PassMode;
use domain::{
    ApplicationId, CandidateId, ChangeEvent, EventId, EventKind, IntegrationId, JobId, RemoteId,
    StageId, StageRef,
};
use kombo_sandbox::{AtsProfile, IntegrationConfig, RunningSandbox, Sandbox, SandboxConfig};
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
/// How often a long wait says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often the wait looks for a failed attempt in the outbox.
const CHECK_EVERY: Duration = Duration::from_secs(1);
const INTEGRATION: &str = "bench-deliveries-greenhouse";
const PASS_INTEGRATION: &str = "bench-deliveries-pass-greenhouse";

/// Measures deliveries per second with 1, 10 and 100 endpoints, `deliveries` (event ×
/// endpoint) deliveries each, on a database of its own.
pub(crate) async fn run(admin_url: &str, deliveries: usize) -> anyhow::Result<Vec<Figure>> {
    BenchDatabase::around(admin_url, async |database| {
        let worker = Worker::start(database).await?;
        let measured = async {
            let integration = rig::register(&worker.store, INTEGRATION).await?;
            let mut figures = Vec::new();
            for (round, endpoints) in ENDPOINT_COUNTS.into_iter().enumerate() {
                let events = deliveries.div_ceil(endpoints);
                let run = Round {
                    worker: &worker,
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
        worker.stop().await;
        measured
    })
    .await
}

/// The outbox during a first full pass of `applications` (100 per job) with one endpoint
/// registered: every event the pass appends is delivered by the product's worker while the pass
/// runs and after it; timed from each event's detection to its first receipt.
pub(crate) async fn run_during_pass(
    admin_url: &str,
    applications: usize,
) -> anyhow::Result<Vec<Figure>> {
    BenchDatabase::around(admin_url, async |database| {
        let worker = Worker::start(database).await?;
        let measured = async {
            let sandbox = Sandbox::start(
                SandboxConfig::new("bench-outbox-key")
                    .with_seed(43)
                    .with_integration(
                        IntegrationConfig::new(PASS_INTEGRATION, "greenhouse", AtsProfile::Full)
                            .with_jobs(applications.div_ceil(100).max(1), 100),
                    )
                    .with_remote_data()
                    .with_manual_clock(),
            )
            .await?;
            let measured = during_pass(&worker, &sandbox, applications).await;
            sandbox.shutdown().await;
            measured
        }
        .await;
        worker.stop().await;
        measured
    })
    .await
}

/// The product's delivery worker with its default settings (loopback allowed) over a
/// benchmark database, the receiver it delivers to, and a connection for the outbox checks.
struct Worker {
    store: Store,
    outbox: DatabaseConnection,
    receiver: Receiver,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    async fn start(database: &BenchDatabase) -> anyhow::Result<Self> {
        let store = database.store(10).await?;
        let outbox = Database::connect(&database.url)
            .await
            .context("could not open a connection for the outbox checks")?;
        let receiver = Receiver::start().await?;
        let mut settings = Settings::default();
        // The receiver is on loopback; everything else is the product's default.
        settings.webhooks.allow_private_urls = true;
        let deliverer = Deliverer::new(store.clone(), wiring::clock(), &settings)?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(deliverer.run(shutdown.clone()));
        progress(&format!(
            "deliveries: one delivery worker ({} in flight), receiver on {}",
            settings.webhooks.concurrency, receiver.address
        ));
        Ok(Self {
            store,
            outbox,
            receiver,
            shutdown,
            task,
        })
    }

    /// Waits until `expected` distinct deliveries were received, saying how far it got every
    /// [`PROGRESS_EVERY`]; fails at the first failed attempt in the outbox, or when
    /// `give_up_after` has passed since `started`.
    async fn wait_for(
        &self,
        expected: usize,
        started: Instant,
        give_up_after: Duration,
    ) -> anyhow::Result<()> {
        let mut received = self.receiver.subscribe();
        let mut last_report = Instant::now();
        loop {
            let left = give_up_after.saturating_sub(started.elapsed());
            if left.is_zero() {
                anyhow::bail!(
                    "{} of {expected} deliveries received within {} s",
                    *received.borrow(),
                    give_up_after.as_secs()
                );
            }
            let wait = received.wait_for(|count| *count >= expected);
            if let Ok(done) = tokio::time::timeout(left.min(CHECK_EVERY), wait).await {
                done.context("the receiver stopped")?;
                return Ok(());
            }
            self.check_no_failed_attempt().await?;
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                progress(&format!(
                    "deliveries: {} of {expected} received",
                    *received.borrow()
                ));
            }
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

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        self.receiver.stop().await;
    }
}

async fn during_pass(
    worker: &Worker,
    sandbox: &RunningSandbox,
    applications: usize,
) -> anyhow::Result<Vec<Figure>> {
    let (store, receiver) = (&worker.store, &worker.receiver);
    store
        .create_endpoint(
            &NewEndpoint {
                url: format!("http://{}/hooks/0", receiver.address),
                description: Some("bench endpoint during a first pass".to_owned()),
                event_types: Vec::new(),
                secret: generate_secret(),
            },
            Utc::now(),
        )
        .await?;
    let sync = rig::sync_service(rig::kombo_client(sandbox)?, store);
    let integration = rig::register(store, PASS_INTEGRATION).await?;
    let lease = rig::claim(store, &integration).await?;
    progress(&format!(
        "deliveries: a first pass of {applications} applications with one endpoint"
    ));
    let started = Instant::now();
    sync.run_pass(&integration, lease, PassMode::Full, &())
        .await?;
    let pass_took = started.elapsed();
    let expected = usize::try_from(store.feed_head().await?)?;
    // The drain may take far longer than the pass: bounded by the number of events.
    let give_up_after = GIVE_UP_AFTER + Duration::from_millis(10) * u32::try_from(expected)?;
    progress(&format!(
        "deliveries: the pass appended {expected} events in {} s; waiting for their deliveries",
        format_value(pass_took.as_secs_f64())
    ));
    worker.wait_for(expected, started, give_up_after).await?;
    let drained = started.elapsed();
    worker.check_no_failed_attempt().await?;
    let detected = worker
        .outbox
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT event_id, detected_at FROM events",
        ))
        .await?;
    let received_at = receiver.received_at();
    let mut lags = Vec::with_capacity(detected.len());
    for row in detected {
        let id: String = row.try_get("", "event_id")?;
        let at: DateTime<Utc> = row.try_get("", "detected_at")?;
        let got = received_at
            .get(&id)
            .with_context(|| format!("event {id} was not delivered"))?;
        lags.push((*got - at).to_std().unwrap_or_default());
    }
    let lags = Latencies::new(lags);
    let (p50, p99) = (lags.percentile_ms(50.0), lags.percentile_ms(99.0));
    progress(&format!(
        "deliveries: the pass took {} s; all {expected} events delivered {} s after it began; \
         lag p50 {} ms, p99 {} ms",
        format_value(pass_took.as_secs_f64()),
        format_value(drained.as_secs_f64()),
        format_value(p50),
        format_value(p99)
    ));
    let what = format!("during a first pass of {applications} applications, one endpoint");
    Ok(vec![
        Figure::reported(
            "7 webhooks",
            format!("{what}: the pass, then every one of its {expected} events delivered"),
            drained.as_secs_f64(),
            "s",
        ),
        Figure::reported(
            "7 webhooks",
            format!("{what}: the pass alone"),
            pass_took.as_secs_f64(),
            "s",
        ),
        Figure::reported(
            "7 webhooks",
            format!("outbox lag {what}, detection to receipt, p50"),
            p50,
            "ms",
        ),
        Figure::reported(
            "7 webhooks",
            format!("outbox lag {what}, detection to receipt, p99"),
            p99,
            "ms",
        ),
    ])
}

/// One endpoint count.
struct Round<'a> {
    worker: &'a Worker,
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
        self.worker.receiver.reset();
        let started = Instant::now();
        let appended = self.append().await?;
        let appended_in = started.elapsed();
        self.worker
            .wait_for(expected, started, GIVE_UP_AFTER)
            .await?;
        let elapsed = started.elapsed();
        self.worker.check_no_failed_attempt().await?;
        let (requests, lags) = self.worker.receiver.lags(&appended);
        if lags.len() != expected {
            anyhow::bail!(
                "{} deliveries received for {expected} expected (some for events not appended)",
                lags.len()
            );
        }
        for id in endpoint_ids {
            self.worker.store.delete_endpoint(&id).await?;
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
                .worker
                .store
                .create_endpoint(
                    &NewEndpoint {
                        url: format!("http://{}/hooks/{number}", self.worker.receiver.address),
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
            let new = self.worker.store.append_events(batch).await?;
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
    /// When each (endpoint, `webhook-id`) first arrived, on both clocks.
    first: HashMap<(u32, String), (Instant, DateTime<Utc>)>,
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
            .filter_map(|((_, id), (received, _))| {
                appended
                    .get(id)
                    .map(|append| received.saturating_duration_since(*append))
            })
            .collect();
        (receipts.requests, lags)
    }

    /// When each event id was first received, by the wall clock (any endpoint).
    fn received_at(&self) -> HashMap<String, DateTime<Utc>> {
        let receipts = lock(&self.shared.receipts);
        let mut first: HashMap<String, DateTime<Utc>> = HashMap::new();
        for ((_, id), (_, at)) in &receipts.first {
            let earliest = first.entry(id.clone()).or_insert(*at);
            *earliest = (*earliest).min(*at);
        }
        first
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
    let now = (Instant::now(), Utc::now());
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
