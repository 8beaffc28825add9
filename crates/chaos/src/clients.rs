//! Small HTTP clients: stagewatch's API (as a product would call it) and the sandbox's control
//! API. Every call has a timeout.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use kombo_sandbox::FaultRule;
use serde_json::{Value, json};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// stagewatch's HTTP API on one replica.
#[derive(Debug, Clone)]
pub(crate) struct Stagewatch {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) api_key: String,
}

impl Stagewatch {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.api_key)
            .json(body)
            .timeout(CALL_TIMEOUT)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    }

    pub(crate) async fn register_integration(&self, id: &str) -> anyhow::Result<()> {
        self.post("/v1/integrations", &json!({ "id": id })).await?;
        Ok(())
    }

    /// Creates a webhook endpoint for every event type; answers its `whsec_…` secret.
    pub(crate) async fn create_endpoint(&self, url: &str) -> anyhow::Result<String> {
        let created = self
            .post("/v1/webhook-endpoints", &json!({ "url": url }))
            .await?;
        created["secret"]
            .as_str()
            .map(str::to_owned)
            .context("the created endpoint has no secret")
    }

    /// The whole feed, oldest first (bounded: at most 2 000 pages of 500).
    pub(crate) async fn feed(&self) -> anyhow::Result<Vec<Value>> {
        let mut events = Vec::new();
        let mut after = 0_i64;
        for _ in 0..2000 {
            let page: Value = self
                .http
                .get(format!("{}/v1/events", self.url))
                .query(&[("after", after.to_string()), ("limit", "500".to_owned())])
                .bearer_auth(&self.api_key)
                .timeout(CALL_TIMEOUT)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let batch = page["events"].as_array().cloned().unwrap_or_default();
            let next = page["next_after"].as_i64().context("no next_after")?;
            if batch.is_empty() || next == after {
                return Ok(events);
            }
            events.extend(batch);
            after = next;
        }
        bail!("the feed did not end within 2 000 pages")
    }

    /// Whether `/readyz` answers 2xx (no answer counts as not ready).
    pub(crate) async fn ready(&self) -> bool {
        self.http
            .get(format!("{}/readyz", self.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|answer| answer.status().is_success())
    }

    /// The sum of a Prometheus counter over its labels, or `None` when the process does not
    /// export it (yet).
    pub(crate) async fn counter(&self, name: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        sum_counter(&text, name)
    }
}

/// Sums every sample of `name` (any labels) in a Prometheus text exposition.
pub(crate) fn sum_counter(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(value) = rest
            .rsplit(' ')
            .next()
            .and_then(|value| value.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// The sandbox's control API.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
}

impl Control {
    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let answer = request.timeout(CALL_TIMEOUT).send().await?;
        let status = answer.status();
        let text = answer.text().await?;
        if !status.is_success() {
            bail!("sandbox control answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Advances the simulation; answers how many changes it made.
    pub(crate) async fn advance(&self, steps: usize) -> anyhow::Result<usize> {
        let changes = self
            .call(
                self.http
                    .post(format!("{}/advance", self.url))
                    .json(&json!({ "steps": steps })),
            )
            .await?;
        Ok(changes.as_array().map_or(0, Vec::len))
    }

    pub(crate) async fn set_faults(&self, rules: &[FaultRule]) -> anyhow::Result<()> {
        self.call(self.http.put(format!("{}/faults", self.url)).json(rules))
            .await?;
        Ok(())
    }

    pub(crate) async fn fired_faults(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let fired = self
            .call(self.http.get(format!("{}/faults/fired", self.url)))
            .await?;
        Ok(serde_json::from_value(fired)?)
    }

    /// The applications the sandbox serves, deleted ones included, as Kombo renders them.
    pub(crate) async fn applications(&self, integration: &str) -> anyhow::Result<Vec<Value>> {
        let applications = self
            .call(
                self.http
                    .get(format!("{}/applications/{integration}", self.url)),
            )
            .await?;
        applications
            .as_array()
            .cloned()
            .context("the sandbox's applications are not a list")
    }
}
