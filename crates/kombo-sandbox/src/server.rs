//! Starting, driving and stopping a sandbox.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::faults::{Endpoint, FaultRule, Faults};
use crate::rate_window::{Admission, RateWindow};
use crate::truth::TruthEntry;
use crate::webhooks::{self, Delivery};
use crate::world::World;
use crate::{api, control, wire};

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid sandbox configuration: {0}")]
    InvalidConfig(String),
}

/// State shared by the HTTP handlers, the control API, the ticker and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    world: Mutex<World>,
    faults: Mutex<Faults>,
    requests: [AtomicU64; Endpoint::ALL.len()],
    actions_in_flight: Mutex<HashMap<String, usize>>,
    deliveries: Option<mpsc::UnboundedSender<Delivery>>,
    rate: Mutex<RateWindow>,
    rate_limited: AtomicU64,
    /// Microseconds every API answer is held.
    answer_time_micros: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the sandbox down with it: the data stays consistent
    // because every change is applied field by field under the lock.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    /// How long every API answer is held before it is sent.
    pub(crate) fn answer_time(&self) -> Duration {
        Duration::from_micros(self.answer_time_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn count(&self, endpoint: Endpoint) {
        self.requests[endpoint.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request against the rate limit; a refusal is counted too.
    pub(crate) fn admit(&self) -> Admission {
        let admission = lock(&self.rate).admit(tokio::time::Instant::now());
        if !admission.allowed {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        admission
    }

    /// Registers one more action in flight for `integration`; `false` when that exceeds Kombo's
    /// limit of 30 (the caller must not call `action_finished` then).
    pub(crate) fn action_started(&self, integration: &str) -> bool {
        const LIMIT: usize = 30;
        let mut in_flight = lock(&self.actions_in_flight);
        let count = in_flight.entry(integration.to_owned()).or_default();
        if *count >= LIMIT {
            return false;
        }
        *count += 1;
        true
    }

    pub(crate) fn action_finished(&self, integration: &str) {
        let mut in_flight = lock(&self.actions_in_flight);
        if let Some(count) = in_flight.get_mut(integration) {
            *count = count.saturating_sub(1);
        }
    }

    /// Turns the changes made since the last call into webhook deliveries.
    pub(crate) fn flush_notices(&self) {
        let deliveries = {
            let mut world = self.world();
            let notices = world.take_notices();
            let Some(_) = &self.deliveries else { return };
            notices
                .into_iter()
                .map(|notice| webhooks::delivery(&mut world, &notice))
                .collect::<Vec<_>>()
        };
        if let Some(sender) = &self.deliveries {
            for delivery in deliveries {
                // The sender only stops at shutdown, when undelivered webhooks no longer matter.
                let _ = sender.send(delivery);
            }
        }
    }
}

/// Starts sandboxes.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Seeds the data, binds the listener and serves until `RunningSandbox::shutdown`.
    pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, SandboxError> {
        let mut seen = HashSet::new();
        if let Some(duplicate) = config
            .integrations
            .iter()
            .find(|integration| !seen.insert(&integration.id))
        {
            return Err(SandboxError::InvalidConfig(format!(
                "integration id {} appears twice",
                duplicate.id
            )));
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: config.listen,
            source,
        })?;

        let mut background = Vec::new();
        let deliveries = config.webhook.clone().map(|target| {
            let (sender, receiver) = mpsc::unbounded_channel();
            (sender, receiver, target)
        });
        let (sender, webhook_parts) = match deliveries {
            Some((sender, receiver, target)) => (Some(sender), Some((receiver, target))),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new(&config)),
            faults: Mutex::new(Faults::new(config.seed)),
            requests: Default::default(),
            actions_in_flight: Mutex::new(HashMap::new()),
            deliveries: sender,
            rate: Mutex::new(RateWindow::new(config.rate_limit)),
            rate_limited: AtomicU64::new(0),
            answer_time_micros: AtomicU64::new(micros(config.answer_time)),
        });
        if let Some((receiver, target)) = webhook_parts {
            background.push(tokio::spawn(webhooks::send_all(
                receiver,
                target,
                Arc::clone(&shared),
            )));
        }
        let handle = SandboxHandle {
            shared: Arc::clone(&shared),
        };
        if let Some(every) = config.tick {
            let ticking = handle.clone();
            background.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    ticking.advance(1);
                }
            }));
        }

        let router = api::router(Arc::clone(&shared)).merge(control::router(handle.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "sandbox server stopped");
            }
        });
        tracing::info!(%addr, "kombo sandbox listening");
        Ok(RunningSandbox {
            addr,
            api_key: config.api_key,
            handle,
            stop,
            server,
            background,
        })
    }
}

/// A sandbox serving on loopback.
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    api_key: String,
    handle: SandboxHandle,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl RunningSandbox {
    /// The API's base URL, ending in `/v1`, e.g. `http://127.0.0.1:41234/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The control API's base URL, e.g. `http://127.0.0.1:41234/_sandbox`.
    pub fn control_url(&self) -> String {
        format!("http://{}/_sandbox", self.addr)
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key the sandbox accepts in `Authorization: Bearer`.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// A handle to drive the simulation and read the ground truth.
    pub fn handle(&self) -> SandboxHandle {
        self.handle.clone()
    }

    /// The integrations' ids, in configuration order.
    pub fn integration_ids(&self) -> Vec<String> {
        self.handle.integration_ids()
    }

    /// Stops accepting requests, finishes the ones in flight and stops background activity.
    pub async fn shutdown(self) {
        for task in &self.background {
            task.abort();
        }
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// Drives a running sandbox from tests and benchmarks.
#[derive(Debug, Clone)]
pub struct SandboxHandle {
    pub(crate) shared: Arc<Shared>,
}

impl SandboxHandle {
    /// Applies `steps` random activity steps (moves forward, back or several stages, hires,
    /// declines, withdrawals, reopenings, job changes, deletions, restorations, stage renames and
    /// re-orderings, candidate edits, interviews, new applications) and returns what changed.
    pub fn advance(&self, steps: usize) -> Vec<TruthEntry> {
        let entries = {
            let mut world = self.shared.world();
            (0..steps).filter_map(|_| world.step()).collect()
        };
        self.shared.flush_notices();
        entries
    }

    /// Like [`Self::advance`], in one integration only (nothing for an unknown one): for
    /// measurements that must not wait on other integrations' changes.
    pub fn advance_in(&self, integration: &str, steps: usize) -> Vec<TruthEntry> {
        let entries = {
            let mut world = self.shared.world();
            match world.by_id.get(integration).copied() {
                Some(position) => (0..steps).filter_map(|_| world.step_in(position)).collect(),
                None => Vec::new(),
            }
        };
        self.shared.flush_notices();
        entries
    }

    /// Every change ever made in `integration`, in order (empty for an unknown integration).
    pub fn truth(&self, integration: &str) -> Vec<TruthEntry> {
        self.shared
            .world()
            .integration(integration)
            .map(|found| found.truth.clone())
            .unwrap_or_default()
    }

    /// Every application the API serves for `integration`, deleted ones included, rendered
    /// exactly as `GET /ats/applications?include_deleted=true` renders them.
    pub fn current_applications(&self, integration: &str) -> Vec<Value> {
        let world = self.shared.world();
        let now = world.clock.peek();
        world
            .integration(integration)
            .map(|found| {
                found
                    .applications
                    .iter()
                    .filter(|application| found.serves(application))
                    .map(|application| wire::application(found, application, now).to_value())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The remote ids of `integration`'s ATS applications that Kombo does not track yet: the
    /// ones `POST /ats/import-tracked-application` can import.
    pub fn untracked_remote_ids(&self, integration: &str) -> Vec<String> {
        let world = self.shared.world();
        world
            .integration(integration)
            .map(|found| {
                found
                    .applications
                    .iter()
                    .filter(|application| !application.tracked)
                    .map(|application| application.remote_id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The integrations' ids, in configuration order.
    pub fn integration_ids(&self) -> Vec<String> {
        self.shared
            .world()
            .integrations
            .iter()
            .map(|integration| integration.id.clone())
            .collect()
    }

    /// Ends `integration`'s initial sync: ATS calls succeed from now on, and an
    /// `integration-state-changed` webhook goes out.
    pub fn mark_ready(&self, integration: &str) {
        {
            let mut world = self.shared.world();
            if let Some(&position) = world.by_id.get(integration) {
                world.mark_ready(position);
            }
        }
        self.shared.flush_notices();
    }

    /// Marks about `fraction` of `integration`'s live applications deleted at once and sets its
    /// `data_expired_at`; returns how many were deleted.
    pub fn mass_delete(&self, integration: &str, fraction: f64) -> usize {
        let deleted = {
            let mut world = self.shared.world();
            match world.by_id.get(integration) {
                Some(&position) => world.mass_delete(position, fraction),
                None => 0,
            }
        };
        self.shared.flush_notices();
        deleted
    }

    /// Replaces all data with a freshly seeded world built from `config`'s seed and
    /// integrations (the API key, listener, webhook target and faults stay as they are). The
    /// ground truth starts over.
    pub fn reset(&self, config: &SandboxConfig) {
        let mut world = self.shared.world();
        let api_key = std::mem::take(&mut world.api_key);
        *world = World::new(config);
        world.api_key = api_key;
    }

    /// Replaces every fault rule.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.shared.faults().set(rules);
    }

    /// Adds a fault rule after the existing ones.
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults().add(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.faults().set(Vec::new());
    }

    /// The fault rules still active (a `Next(n)` rule disappears once it has fired n times).
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.faults().rules()
    }

    /// How many times each kind of fault fired (`Status503`, `RateLimited`, `DuplicateWebhook`,
    /// ...), since the sandbox started.
    pub fn fired_faults(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.faults().fired()
    }

    /// Holds every API answer this long from now on (`SandboxConfig::with_answer_time`).
    pub fn set_answer_time(&self, answer_time: Duration) {
        self.shared
            .answer_time_micros
            .store(micros(answer_time), Ordering::Relaxed);
    }

    /// Requests answered 429 because the rate limit was used up (injected faults apart).
    pub fn rate_limited_count(&self) -> u64 {
        self.shared.rate_limited.load(Ordering::Relaxed)
    }

    /// How many requests reached `endpoint`, failed ones included.
    pub fn request_count(&self, endpoint: Endpoint) -> u64 {
        self.shared.requests[endpoint.slot()].load(Ordering::Relaxed)
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
