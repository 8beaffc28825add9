//! A product's webhook receiver on loopback that misbehaves on command: down (connections
//! refused), slow, flapping, or up. It verifies every delivery's Standard Webhooks signature and
//! records which event ids it acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rand::Rng;
use tokio::task::JoinHandle;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Listening and answering 204 at once.
    Up,
    /// Not listening: new connections are refused; a request on a connection kept alive from
    /// before gets 503 and the connection closed.
    Down,
    /// Answers 204 after a random delay of up to this long (longer than stagewatch's delivery
    /// timeout on some requests).
    Slow(Duration),
    /// Alternates between 204 and 500 every `period`.
    Flapping(Duration),
}

#[derive(Debug)]
struct Shared {
    mode: Mutex<Mode>,
    secret: Mutex<Option<String>>,
    started: Instant,
    /// Event id → deliveries acknowledged with 2xx.
    acknowledged: Mutex<BTreeMap<String, u32>>,
    /// Every `webhook-id` seen, acknowledged or not.
    seen: Mutex<BTreeSet<String>>,
    requests: AtomicU64,
    refused: AtomicU64,
    bad_signatures: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the receiver saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) requests: u64,
    pub(crate) refused: u64,
    pub(crate) bad_signatures: u64,
    pub(crate) acknowledged: BTreeMap<String, u32>,
    pub(crate) seen: usize,
}

#[derive(Debug)]
pub(crate) struct Receiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl Receiver {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Up),
            secret: Mutex::new(None),
            started: Instant::now(),
            acknowledged: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(BTreeSet::new()),
            requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
        });
        let mut receiver = Self {
            address,
            shared,
            server: None,
        };
        receiver.serve(listener);
        Ok(receiver)
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hooks", self.address)
    }

    pub(crate) fn set_secret(&self, secret: String) {
        *lock(&self.shared.secret) = Some(secret);
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .route("/hooks", post(deliver))
            .with_state(self.shared.clone());
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Switches mode; `Down` stops listening, any other mode listens again on the same port.
    pub(crate) async fn set_mode(&mut self, mode: Mode) -> anyhow::Result<()> {
        *lock(&self.shared.mode) = mode;
        if mode == Mode::Down {
            if let Some(server) = self.server.take() {
                server.abort();
                let _ = server.await;
            }
        } else if self.server.is_none() {
            let listener = tokio::net::TcpListener::bind(self.address).await?;
            self.serve(listener);
        }
        Ok(())
    }

    pub(crate) fn tally(&self) -> Tally {
        Tally {
            requests: self.shared.requests.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            bad_signatures: self.shared.bad_signatures.load(Ordering::Relaxed),
            acknowledged: lock(&self.shared.acknowledged).clone(),
            seen: lock(&self.shared.seen).len(),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn deliver(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    lock(&shared.seen).insert(id.clone());
    // Every delivery is verified, whatever the receiver then answers.
    let secret = lock(&shared.secret).clone();
    let verified = secret.is_some_and(|secret| {
        standardwebhooks::Webhook::new(&secret)
            .and_then(|webhook| webhook.verify(&body, &headers))
            .is_ok()
    });
    if !verified {
        shared.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    let body_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["id"].as_str().map(str::to_owned));
    if body_id.as_deref() != Some(id.as_str()) {
        // The idempotency key must be the event's id.
        shared.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    let mode = *lock(&shared.mode);
    let accept = match mode {
        Mode::Up => true,
        Mode::Down => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONNECTION, "close")],
            )
                .into_response();
        }
        Mode::Slow(longest) => {
            let delay = rand::rng().random_range(Duration::ZERO..=longest);
            tokio::time::sleep(delay).await;
            true
        }
        Mode::Flapping(period) => {
            let windows = shared.started.elapsed().as_millis() / period.as_millis().max(1);
            windows % 2 == 0
        }
    };
    if accept {
        *lock(&shared.acknowledged).entry(id).or_default() += 1;
        StatusCode::NO_CONTENT.into_response()
    } else {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}
