//! The whole product in process for figures 3 and 5: a sandbox that posts `data-changed`
//! webhooks, the HTTP API that receives them, and the sync scheduler they wake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_postgres::{NewIntegration, Store};
use anyhow::Context;
use app_server::config::{Secret, Settings};
use app_server::http::{ApiParts, auth::hash_key};
use app_server::wiring;
use app_server::worker::Scheduler;
use domain::IntegrationId;
use kombo_sandbox::{AtsProfile, IntegrationConfig, RunningSandbox, Sandbox, SandboxConfig};
use tokio_util::sync::CancellationToken;

use crate::rig;

/// The API key the benchmark's clients send.
pub(crate) const API_KEY: &str = "sw_bench";
const INTEGRATION: &str = "bench-live-greenhouse";
/// In the sandbox from the start, registered only when [`LiveServer::start_large_pass`] is
/// called: its first pass is the load that figure 3 is measured again under.
const LARGE: &str = "bench-live-large-greenhouse";

/// In the sandbox from the start, registered only by [`LiveServer::register_fleet`]: the
/// many small integrations that figure 3 is measured again beside.
const FLEET_PREFIX: &str = "bench-live-fleet-";
/// Applications of each of the fleet's integrations.
const FLEET_APPLICATIONS: usize = 10;
/// How often each of the fleet's integrations is synced once registered: the default.
pub(crate) const FLEET_POLL: Duration = Duration::from_secs(30);

/// The running product and its sandbox.
#[derive(Debug)]
pub(crate) struct LiveServer {
    pub(crate) sandbox: RunningSandbox,
    pub(crate) store: Store,
    pub(crate) api_url: String,
    pub(crate) integration: IntegrationId,
    fleet: usize,
    waker: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
    workers: tokio::task::JoinHandle<()>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LiveServer {
    /// Starts everything over `store` with `jobs` × `per_job` applications, and waits for the
    /// first full pass. The sandbox also holds an integration of `large` applications (100 per
    /// job), unregistered until [`Self::start_large_pass`], and `fleet` integrations of ten
    /// applications, unregistered until [`Self::register_fleet`].
    pub(crate) async fn start(
        store: Store,
        jobs: usize,
        per_job: usize,
        large: usize,
        fleet: usize,
    ) -> anyhow::Result<Self> {
        // The sandbox must know where to post webhooks before the API, which needs the sandbox's
        // address, can start: reserve a free port first.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let webhook_secret = format!("whsec-{:016x}", rand::random::<u64>());
        let mut config = SandboxConfig::new("bench-key");
        for number in 0..fleet {
            config = config.with_integration(
                IntegrationConfig::new(
                    format!("{FLEET_PREFIX}{number:05}"),
                    "greenhouse",
                    AtsProfile::Full,
                )
                .with_jobs(1, FLEET_APPLICATIONS),
            );
        }
        let sandbox = Sandbox::start(
            config
                .with_seed(23)
                .with_integration(
                    IntegrationConfig::new(INTEGRATION, "greenhouse", AtsProfile::Full)
                        .with_jobs(jobs, per_job),
                )
                .with_integration(
                    IntegrationConfig::new(LARGE, "greenhouse", AtsProfile::Full)
                        .with_jobs(large.div_ceil(100).max(1), 100),
                )
                .with_webhook(
                    format!("http://{listen}/v1/kombo/webhooks"),
                    webhook_secret.clone(),
                )
                .with_remote_data()
                .with_manual_clock(),
        )
        .await?;

        let mut settings = Settings::default();
        settings.kombo.base_url = sandbox.base_url();
        settings.kombo.api_key = Secret::new(sandbox.api_key());
        settings.kombo.webhook_secret = Secret::new(webhook_secret);
        settings.kombo.requests_per_second = 1000;
        settings.api.key_hashes = vec![hash_key(API_KEY)];
        // Only webhooks make the integration due: a poll would hide the latency measured.
        settings.sync.poll_interval = Duration::from_secs(3600);
        settings.sync.full_pass_every = Duration::from_secs(86_400);
        settings.sync.jitter = 0.0;

        let kombo = Arc::new(wiring::kombo(&settings, true)?);
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            wiring::sync_service(&settings, Arc::clone(&kombo) as _, &store),
            wiring::clock(),
            wiring::scheduler_settings(&settings),
        ));
        let shutdown = CancellationToken::new();
        let parts = ApiParts {
            store: store.clone(),
            ats: kombo,
            clock: wiring::clock(),
            sync_waker: scheduler.waker(),
            metrics: None,
        };
        let (address, api) =
            app_server::http::start(&settings, parts, Some(listen), shutdown.clone()).await?;
        let integration = rig::register(&store, INTEGRATION).await?;
        let workers = tokio::spawn(Arc::clone(&scheduler).run(shutdown.clone()));
        let waker = scheduler.waker();
        waker.notify_one();
        let server = Self {
            sandbox,
            store,
            api_url: format!("http://{address}"),
            integration,
            fleet,
            waker,
            shutdown,
            workers,
            api,
        };
        server
            .wait_for_pass(&server.integration, Duration::from_secs(120))
            .await?;
        Ok(server)
    }

    /// Waits (at most `within`) until `integration` has finished a pass and given its lease
    /// back; a failed pass is an error.
    pub(crate) async fn wait_for_pass(
        &self,
        integration: &IntegrationId,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let record = self
                .store
                .integration(integration)
                .await?
                .context("the integration is registered")?;
            if let Some(error) = record.last_error {
                anyhow::bail!("{integration}'s pass failed: {error:?}");
            }
            if record.last_pass_finished_at.is_some() && record.lease_owner.is_none() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{integration}'s first pass did not finish within {within:?}")
    }

    /// Registers the large integration, whose first full pass the scheduler starts at once.
    pub(crate) async fn start_large_pass(&self) -> anyhow::Result<IntegrationId> {
        let large = rig::register(&self.store, LARGE).await?;
        self.waker.notify_one();
        Ok(large)
    }

    /// Registers the fleet's integrations, each synced every [`FLEET_POLL`], and waits (at most
    /// two minutes) until each has finished its first pass; returns how many there are.
    pub(crate) async fn register_fleet(&self) -> anyhow::Result<usize> {
        let since = chrono::Utc::now();
        for number in 0..self.fleet {
            let id = IntegrationId::parse(format!("{FLEET_PREFIX}{number:05}"))?;
            self.store
                .register_integration(
                    &NewIntegration {
                        id: id.clone(),
                        tool: id.tool().map(str::to_owned),
                        label: None,
                        poll_interval: Some(FLEET_POLL),
                    },
                    since,
                )
                .await?;
        }
        self.waker.notify_one();
        rig::wait_for_passes(
            &self.store,
            &format!("{FLEET_PREFIX}%"),
            since,
            self.fleet,
            "first passes of the fleet",
            Duration::from_secs(120),
        )
        .await?;
        Ok(self.fleet)
    }

    /// Stops the workers, the API and the sandbox.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.workers.await;
        let _ = self.api.await;
        self.sandbox.shutdown().await;
    }
}
