//! Fault injection: rules that make matching requests fail the ways Kombo and networks fail.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The API endpoints, for counting requests and aiming faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    /// `GET /ats/applications`
    Applications,
    /// `GET /ats/jobs`
    Jobs,
    /// `GET /ats/rejection-reasons`
    RejectionReasons,
    /// `POST /ats/jobs/{job_id}/applications`
    CreateApplication,
    /// `PUT /ats/applications/{id}/stage`
    MoveStage,
    /// `POST /ats/applications/{id}/reject`
    Reject,
    /// `POST /ats/import-tracked-application`
    Import,
    /// `GET /integrations/{id}`
    Integration,
    /// `GET /check-api-key`
    CheckApiKey,
}

impl Endpoint {
    /// Every endpoint, in a fixed order.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::Applications,
        Endpoint::Jobs,
        Endpoint::RejectionReasons,
        Endpoint::CreateApplication,
        Endpoint::MoveStage,
        Endpoint::Reject,
        Endpoint::Import,
        Endpoint::Integration,
        Endpoint::CheckApiKey,
    ];

    pub(crate) fn slot(self) -> usize {
        Endpoint::ALL
            .iter()
            .position(|endpoint| *endpoint == self)
            .unwrap_or(0)
    }

    /// Write actions count against Kombo's per-integration concurrency limit.
    pub(crate) fn is_action(self) -> bool {
        matches!(
            self,
            Endpoint::CreateApplication | Endpoint::MoveStage | Endpoint::Reject | Endpoint::Import
        )
    }

    /// The endpoint a request under `/v1` is for.
    pub(crate) fn classify(method: &axum::http::Method, path: &str) -> Option<Endpoint> {
        let segments: Vec<&str> = path
            .trim_start_matches("/v1")
            .trim_matches('/')
            .split('/')
            .collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["ats", "applications"]) => Some(Endpoint::Applications),
            ("GET", ["ats", "jobs"]) => Some(Endpoint::Jobs),
            ("GET", ["ats", "rejection-reasons"]) => Some(Endpoint::RejectionReasons),
            ("POST", ["ats", "jobs", _, "applications"]) => Some(Endpoint::CreateApplication),
            ("PUT", ["ats", "applications", _, "stage"]) => Some(Endpoint::MoveStage),
            ("POST", ["ats", "applications", _, "reject"]) => Some(Endpoint::Reject),
            ("POST", ["ats", "import-tracked-application"]) => Some(Endpoint::Import),
            ("GET", ["integrations", _]) => Some(Endpoint::Integration),
            ("GET", ["check-api-key"]) => Some(Endpoint::CheckApiKey),
            _ => None,
        }
    }
}

/// How a matching request fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// HTTP 429 `PLATFORM.RATE_LIMIT_EXCEEDED`, `ratelimit-reset` set to `retry_after_secs`.
    RateLimited { retry_after_secs: u64 },
    /// That HTTP status (500, 502, 503, 504) with Kombo's error envelope.
    Status(u16),
    /// The response is delayed this long, then served normally.
    Slow(#[serde(with = "humantime_serde")] Duration),
    /// The connection closes before a complete response arrives.
    ConnectionDrop,
    /// The full `content-length` is announced, half the body is sent, then the connection closes.
    TruncatedBody,
    /// A request that carries a cursor is told the cursor expired (`PLATFORM.INPUT_INVALID`).
    ExpiredCursor,
    /// The next webhook deliveries are each sent twice (same `id`, same body).
    DuplicateWebhook,
}

impl Fault {
    /// The fault's kind, as counted by [`Faults::fired`]: `Status(503)` → `Status503`.
    pub fn kind(&self) -> String {
        match self {
            Fault::RateLimited { .. } => "RateLimited".to_owned(),
            Fault::Status(status) => format!("Status{status}"),
            Fault::Slow(_) => "Slow".to_owned(),
            Fault::ConnectionDrop => "ConnectionDrop".to_owned(),
            Fault::TruncatedBody => "TruncatedBody".to_owned(),
            Fault::ExpiredCursor => "ExpiredCursor".to_owned(),
            Fault::DuplicateWebhook => "DuplicateWebhook".to_owned(),
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Trigger {
    /// The next `n` matching requests (or webhook deliveries).
    Next(u32),
    /// Each matching request with this probability (drawn from the sandbox's seeded generator).
    Probability(f64),
    /// Every n-th matching request (the n-th, 2n-th, ...), for as long as the rule stays.
    Every(u32),
}

/// A fault, when it fires, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub fault: Fault,
    pub trigger: Trigger,
    /// The endpoints it applies to; empty means all.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// The integration it applies to; `None` means all.
    #[serde(default)]
    pub integration: Option<String>,
}

impl FaultRule {
    /// A rule for every endpoint and integration.
    pub fn new(fault: Fault, trigger: Trigger) -> Self {
        Self {
            fault,
            trigger,
            endpoints: Vec::new(),
            integration: None,
        }
    }

    /// Only these endpoints.
    #[must_use]
    pub fn on(mut self, endpoints: &[Endpoint]) -> Self {
        self.endpoints = endpoints.to_vec();
        self
    }

    /// Only requests for this integration.
    #[must_use]
    pub fn for_integration(mut self, integration: impl Into<String>) -> Self {
        self.integration = Some(integration.into());
        self
    }

    fn applies(
        &self,
        endpoint: Option<Endpoint>,
        integration: Option<&str>,
        has_cursor: bool,
    ) -> bool {
        let endpoint_matches = match endpoint {
            Some(endpoint) => self.endpoints.is_empty() || self.endpoints.contains(&endpoint),
            None => true,
        };
        let integration_matches = self
            .integration
            .as_deref()
            .is_none_or(|wanted| Some(wanted) == integration);
        let fault_fits = match self.fault {
            Fault::ExpiredCursor => has_cursor,
            Fault::DuplicateWebhook => endpoint.is_none(),
            _ => endpoint.is_some(),
        };
        endpoint_matches && integration_matches && fault_fits
    }
}

/// A rule in force, with how many matching requests it has seen (for `Trigger::Every`).
#[derive(Debug)]
struct ActiveRule {
    rule: FaultRule,
    seen: u64,
}

/// The active rules, the generator their probabilities draw from, and how often each kind of
/// fault fired.
#[derive(Debug)]
pub(crate) struct Faults {
    rules: Vec<ActiveRule>,
    rng: StdRng,
    fired: BTreeMap<String, u64>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17),
            fired: BTreeMap::new(),
        }
    }

    pub(crate) fn set(&mut self, rules: Vec<FaultRule>) {
        self.rules = rules
            .into_iter()
            .map(|rule| ActiveRule { rule, seen: 0 })
            .collect();
    }

    pub(crate) fn add(&mut self, rule: FaultRule) {
        self.rules.push(ActiveRule { rule, seen: 0 });
    }

    pub(crate) fn rules(&self) -> Vec<FaultRule> {
        self.rules
            .iter()
            .map(|active| active.rule.clone())
            .collect()
    }

    /// How many times each kind of fault fired since the sandbox started (kept across rule
    /// changes).
    pub(crate) fn fired(&self) -> BTreeMap<String, u64> {
        self.fired.clone()
    }

    /// The fault to apply to a request (`endpoint` set) or a webhook delivery (`None`), using
    /// up one firing of a `Next` rule.
    pub(crate) fn fire(
        &mut self,
        endpoint: Option<Endpoint>,
        integration: Option<&str>,
        has_cursor: bool,
    ) -> Option<Fault> {
        let mut fired = None;
        for active in &mut self.rules {
            if !active.rule.applies(endpoint, integration, has_cursor) {
                continue;
            }
            active.seen += 1;
            let fires = match &mut active.rule.trigger {
                Trigger::Next(remaining) if *remaining > 0 => {
                    *remaining -= 1;
                    true
                }
                Trigger::Next(_) => false,
                Trigger::Probability(probability) => {
                    self.rng.random_bool(probability.clamp(0.0, 1.0))
                }
                Trigger::Every(period) => active.seen % u64::from((*period).max(1)) == 0,
            };
            if fires {
                fired = Some(active.rule.fault.clone());
                break;
            }
        }
        self.rules
            .retain(|active| active.rule.trigger != Trigger::Next(0));
        if let Some(fault) = &fired {
            *self.fired.entry(fault.kind()).or_default() += 1;
        }
        fired
    }
}
