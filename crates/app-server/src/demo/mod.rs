//! `stagewatch demo`: stagewatch end to end with nothing to set up. A simulated Kombo
//! (`kombo-sandbox`) runs in process with one integration per ATS profile; applications are
//! created through the Kombo client exactly as a product would; the sync workers track them in an
//! embedded SQLite database in a temporary folder; each change is printed as it is detected, and a
//! summary table when the demo stops.

mod printer;
mod seed;

use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::{NewIntegration, Store};
use anyhow::Context;
use domain::IntegrationId;
use kombo_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use tokio_util::sync::CancellationToken;

use crate::cli::DemoArgs;
use crate::commands::out;
use crate::config::{LogFormat, Settings};
use crate::worker::Scheduler;
use crate::{shutdown, telemetry, wiring};

/// The API key the demo's HTTP API accepts (unless `api.key_hashes` is configured).
pub const DEMO_API_KEY: &str = "sw_demo";

/// Made-up customers, one per simulated integration, as the console shows them.
const CUSTOMERS: [&str; 6] = [
    "Acme Robotics",
    "Globex Logistics",
    "Initech Software",
    "Umbrella Health",
    "Hooli Media",
    "Stark Energy",
];

/// Jobs per simulated integration.
const JOBS: usize = 3;
/// Applications the simulated ATS already tracks per job when the demo starts.
const EXISTING_PER_JOB: usize = 1;
/// Applications the demo creates through Kombo per job.
const CREATED_PER_JOB: usize = 2;

/// Runs the demo until Ctrl-C or `--duration`.
pub async fn run(mut settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    // The demo talks to a person: terse human logs unless asked otherwise.
    if settings.log.format == LogFormat::Auto {
        settings.log.format = LogFormat::Pretty;
    }
    if settings.log.level == "info" {
        "warn".clone_into(&mut settings.log.level);
    }
    telemetry::init_tracing(&settings.log);
    let shutdown = shutdown::on_signal();
    if let Some(duration) = args.duration {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            stop.cancel();
        });
    }
    let demo = Demo::start(settings, &args, shutdown.clone()).await?;
    demo.run_until(shutdown).await
}

/// The running pieces of a demo.
pub struct Demo {
    sandbox: RunningSandbox,
    store: Store,
    settings: Settings,
    scheduler: Arc<Scheduler>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
    // Dropped last: deletes the temporary database folder.
    _data_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo").finish_non_exhaustive()
    }
}

impl Demo {
    /// Starts the sandbox, opens the database, registers the integrations and creates the
    /// first applications.
    pub async fn start(
        mut settings: Settings,
        args: &DemoArgs,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let (data_dir, temp) = if let Some(dir) = &args.data_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create {}", dir.display()))?;
            (dir.clone(), None)
        } else {
            {
                let temp = tempfile::Builder::new()
                    .prefix("stagewatch-demo-")
                    .tempdir()
                    .context("could not create a temporary folder")?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let webhook_secret = crate::delivery::sign::generate_secret();
        let sandbox = Sandbox::start(
            SandboxConfig::showcase(args.seed, JOBS, EXISTING_PER_JOB)
                .with_tick(args.tick)
                .with_webhook(
                    format!("http://{}/v1/kombo/webhooks", args.listen),
                    webhook_secret.clone(),
                ),
        )
        .await
        .context("could not start the simulated Kombo API")?;

        settings.database.url = crate::config::Secret::new(format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("stagewatch.db").display()
        ));
        settings.kombo.base_url = sandbox.base_url();
        settings.kombo.api_key = crate::config::Secret::new(sandbox.api_key());
        settings.kombo.webhook_secret = crate::config::Secret::new(webhook_secret);
        settings.api.listen = args.listen;
        if settings.api.key_hashes.is_empty() {
            settings.api.key_hashes = vec![crate::http::auth::hash_key(DEMO_API_KEY)];
        }
        settings.webhooks.allow_private_urls = true;
        // Kombo's data-changed webhooks make integrations due at once; polling is the backstop.
        settings.sync.poll_interval = Duration::from_secs(5);
        settings.sync.claim_every = Duration::from_millis(500);
        settings.sync.lease = Duration::from_secs(30);
        settings.sync.jitter = 0.2;
        let store = wiring::store(&settings, true).await?;
        out(&format!(
            "stagewatch demo: simulated Kombo at {}, database in {}",
            sandbox.base_url(),
            data_dir.display()
        ));

        let kombo = Arc::new(wiring::kombo(&settings, true)?);
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            wiring::sync_service(&settings, Arc::clone(&kombo) as _, &store),
            wiring::clock(),
            wiring::scheduler_settings(&settings),
        ));
        // The API is up before anything happens, so that the sandbox's Kombo webhooks land.
        let parts = crate::http::ApiParts {
            store: store.clone(),
            ats: Arc::clone(&kombo) as _,
            clock: wiring::clock(),
            sync_waker: scheduler.waker(),
            metrics: Some(telemetry::init_metrics()),
        };
        let (address, api) = crate::http::start(&settings, parts, None, shutdown)
            .await
            .context(
                "the demo's API needs a free port; pick another with --listen 127.0.0.1:PORT",
            )?;
        out(&format!(
            "stagewatch API at http://{address}, API key {DEMO_API_KEY} (try: curl -H 'Authorization: Bearer {DEMO_API_KEY}' http://{address}/v1/events)"
        ));
        out(&format!(
            "stagewatch console at http://{address}/ui (sign in with the API key {DEMO_API_KEY})"
        ));
        for (id, customer) in sandbox
            .integration_ids()
            .into_iter()
            .zip(CUSTOMERS.iter().cycle())
        {
            let id = IntegrationId::parse(id)?;
            store
                .register_integration(
                    &NewIntegration {
                        id: id.clone(),
                        tool: id.tool().map(str::to_owned),
                        label: Some((*customer).to_owned()),
                        poll_interval: None,
                    },
                    chrono::Utc::now(),
                )
                .await?;
            let created = seed::create_applications(&kombo, &store, &id, CREATED_PER_JOB).await;
            out(&format!("{id}: {created}"));
        }
        Ok(Self {
            sandbox,
            store,
            settings,
            scheduler,
            api,
            _data_dir: temp,
        })
    }

    /// Runs the workers and prints changes until `shutdown`, then prints the summary.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let deliverer =
            crate::delivery::Deliverer::new(self.store.clone(), wiring::clock(), &self.settings)?;
        let delivery = tokio::spawn(deliverer.run(shutdown.clone()));
        out("watching for changes (Ctrl-C to stop)…");
        let workers = tokio::spawn(Arc::clone(&self.scheduler).run(shutdown.clone()));
        let printer = printer::Printer::new(self.store.clone());
        let tally = printer.follow(shutdown.clone()).await?;
        workers
            .await
            .context("the sync workers stopped unexpectedly")?;
        delivery
            .await
            .context("the webhook deliveries stopped unexpectedly")?;
        let _ = self.api.await;
        let integrations = self.store.list_integrations().await?;
        out(&crate::commands::integrations::integrations_table(&integrations).to_string());
        out(&tally.table().to_string());
        self.sandbox.shutdown().await;
        Ok(())
    }
}
