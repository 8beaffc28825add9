//! What a sandbox serves: its API key, integrations, activity and webhook target.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What an integration's ATS can do, as Kombo reports it in coverage and answers it in reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AtsProfile {
    /// Every model and field is supported.
    Full,
    /// `outcome` is always `null`; coverage says `UNSUPPORTED`; an `outcomes` filter returns
    /// nothing unless `ignore_unsupported_filters=true`.
    OutcomeUnsupported,
    /// Applications cannot be read: `INTEGRATION.MODEL_NOT_AVAILABLE`.
    ApplicationsUnavailable,
    /// Stages carry no `index` (absent on jobs, `null` on an application's current stage).
    StagesWithoutIndex,
}

impl AtsProfile {
    /// Every profile, in a fixed order.
    pub const ALL: [AtsProfile; 4] = [
        AtsProfile::Full,
        AtsProfile::OutcomeUnsupported,
        AtsProfile::ApplicationsUnavailable,
        AtsProfile::StagesWithoutIndex,
    ];

    /// The tool and customer name the showcase uses for this profile.
    pub(crate) fn showcase_identity(self) -> (&'static str, &'static str) {
        match self {
            AtsProfile::Full => ("greenhouse", "acme"),
            AtsProfile::OutcomeUnsupported => ("personio", "globex"),
            AtsProfile::ApplicationsUnavailable => ("workday", "initech"),
            AtsProfile::StagesWithoutIndex => ("recruitee", "umbrella"),
        }
    }
}

/// One simulated customer connection.
#[derive(Debug, Clone)]
pub struct IntegrationConfig {
    pub(crate) id: String,
    pub(crate) tool: String,
    pub(crate) profile: AtsProfile,
    pub(crate) jobs: usize,
    pub(crate) applications_per_job: usize,
    pub(crate) ready: bool,
    pub(crate) sync_all: bool,
}

impl IntegrationConfig {
    /// An empty, ready integration of `tool` (e.g. `"greenhouse"`) with `profile`.
    pub fn new(id: impl Into<String>, tool: impl Into<String>, profile: AtsProfile) -> Self {
        Self {
            id: id.into(),
            tool: tool.into(),
            profile,
            jobs: 0,
            applications_per_job: 0,
            ready: true,
            sync_all: false,
        }
    }

    /// Seeds `jobs` jobs with `applications_per_job` tracked applications each (as if created
    /// through the API earlier), plus one untracked ATS application per job for import.
    #[must_use]
    pub fn with_jobs(mut self, jobs: usize, applications_per_job: usize) -> Self {
        self.jobs = jobs;
        self.applications_per_job = applications_per_job;
        self
    }

    /// The integration is still in its initial sync: ATS calls answer
    /// `INTEGRATION.SETUP_SYNC_PENDING` until `SandboxHandle::mark_ready`.
    #[must_use]
    pub fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }

    /// Kombo's "sync all applications" setting: untracked ATS applications are served too.
    #[must_use]
    pub fn sync_all(mut self) -> Self {
        self.sync_all = true;
        self
    }
}

/// Everything `Sandbox::start` needs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub(crate) api_key: String,
    pub(crate) seed: u64,
    pub(crate) integrations: Vec<IntegrationConfig>,
    pub(crate) webhook: Option<WebhookTarget>,
    pub(crate) tick: Option<Duration>,
    pub(crate) listen: SocketAddr,
    pub(crate) rate_limit: crate::RateLimit,
    pub(crate) remote_data: bool,
    pub(crate) answer_time: Duration,
}

/// Where webhooks go and the secret they are signed with.
#[derive(Debug, Clone)]
pub(crate) struct WebhookTarget {
    pub(crate) url: String,
    pub(crate) secret: String,
}

impl SandboxConfig {
    /// A sandbox with no integrations, answering `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            seed: 0,
            integrations: Vec::new(),
            webhook: None,
            tick: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate_limit: crate::RateLimit::default(),
            remote_data: false,
            answer_time: Duration::ZERO,
        }
    }

    /// Every application, candidate, job and stage carries a raw ATS object (shaped like
    /// Greenhouse's, about a kilobyte per application) as `remote_data`, as for a customer whose
    /// plan and scope config include it; without this, `remote_data` is `null`.
    #[must_use]
    pub fn with_remote_data(mut self) -> Self {
        self.remote_data = true;
        self
    }

    /// Kombo's rate limit: `limit` requests per `window` for the API key, counted in real
    /// time; beyond it, 429 until the window ends.
    #[must_use]
    pub fn with_rate_limit(mut self, limit: u64, window: Duration) -> Self {
        self.rate_limit = crate::RateLimit { limit, window };
        self
    }

    /// Every API answer (`/v1`, not the control API) is held this long before it is sent, as
    /// Kombo's answers take a network round trip and more; answers are immediate without this.
    #[must_use]
    pub fn with_answer_time(mut self, answer_time: Duration) -> Self {
        self.answer_time = answer_time;
        self
    }

    /// One integration per `AtsProfile`, with ids like `acme-greenhouse`.
    pub fn showcase(seed: u64, jobs_per_integration: usize, applications_per_job: usize) -> Self {
        let mut config = Self::new(default_api_key(seed)).with_seed(seed);
        for profile in AtsProfile::ALL {
            let (tool, customer) = profile.showcase_identity();
            config = config.with_integration(
                IntegrationConfig::new(format!("{customer}-{tool}"), tool, profile)
                    .with_jobs(jobs_per_integration, applications_per_job),
            );
        }
        config
    }

    /// `integrations` identical full-support integrations (`tenant-0000-greenhouse`, ...), for
    /// benchmarks.
    pub fn uniform(
        seed: u64,
        integrations: usize,
        jobs: usize,
        applications_per_job: usize,
    ) -> Self {
        let mut config = Self::new(default_api_key(seed)).with_seed(seed);
        for index in 0..integrations {
            config = config.with_integration(
                IntegrationConfig::new(
                    format!("tenant-{index:04}-greenhouse"),
                    "greenhouse",
                    AtsProfile::Full,
                )
                .with_jobs(jobs, applications_per_job),
            );
        }
        config
    }

    /// Accepts `api_key` instead.
    #[must_use]
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = api_key.into();
        self
    }

    /// The seed of every random choice: same seed, same history.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Adds an integration.
    #[must_use]
    pub fn with_integration(mut self, integration: IntegrationConfig) -> Self {
        self.integrations.push(integration);
        self
    }

    /// Posts Kombo webhooks to `url`, signed with `secret`.
    #[must_use]
    pub fn with_webhook(mut self, url: String, secret: String) -> Self {
        self.webhook = Some(WebhookTarget { url, secret });
        self
    }

    /// Background activity: every `every`, the simulation advances one step.
    #[must_use]
    pub fn with_tick(mut self, every: Duration) -> Self {
        self.tick = Some(every);
        self
    }

    /// No background activity; the simulation moves only through `SandboxHandle::advance`.
    #[must_use]
    pub fn with_manual_clock(mut self) -> Self {
        self.tick = None;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    #[must_use]
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
}

fn default_api_key(seed: u64) -> String {
    format!("sandbox-key-{seed}")
}
