//! The Grafana dashboard (`deploy/grafana/stagewatch.json`) and the alert rules
//! (`deploy/prometheus/alerts.yaml`) use only metrics and labels a running server exports.
//!
//! The built `stagewatch serve` runs against an in-process sandbox (SQLite in a temporary folder,
//! one integration, one webhook endpoint on loopback), syncs once, delivers webhooks, and its
//! `/metrics` is scraped. Every `PromQL` expression of the dashboard and the alerts is tokenized:
//! metric names (a histogram's `_bucket`, `_sum` and `_count` count as the histogram, and
//! `_bucket` or the `le` label need a real histogram, not a summary) and the labels of
//! `{label=…}` matchers and of `by (…)` / `without (…)` / `on (…)` / `ignoring (…)` clauses.
//! A clause's labels are required of every metric in the same expression, which is exact for
//! expressions whose metrics are aggregated alike, as these are.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDatabase;
use kombo_sandbox::{AtsProfile, IntegrationConfig, Sandbox, SandboxConfig};
use sha2::Digest;

const API_KEY: &str = "sw_deploy_metrics_key";
const INTEGRATION: &str = "acme-greenhouse";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---- PromQL ------------------------------------------------------------------------------

/// A metric and the labels an expression needs it to have.
#[derive(Debug, Default)]
struct Uses(BTreeMap<String, BTreeSet<String>>);

/// Keywords and aggregation operators (which may be followed by `by (…)` instead of `(`).
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// Clauses that name labels: `by (…)`, `on (…)`, …; `group_left`/`group_right` name labels to
/// copy, which the expression does not require.
const LABEL_CLAUSES: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Adds the metrics and labels of one `PromQL` expression.
fn tokenize(expression: &str, uses: &mut Uses) {
    let chars: Vec<char> = expression.chars().collect();
    let mut metrics: Vec<String> = Vec::new();
    let mut clause_labels: BTreeSet<String> = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '[' {
            // A range or subquery: `[5m]`, `[$__rate_interval]`.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '$' {
            // A Grafana variable.
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                i += 1;
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = next_non_space(&chars, i);
            let lowered = word.to_ascii_lowercase();
            if LABEL_CLAUSES.contains(&lowered.as_str()) {
                if next.is_some_and(|(_, c)| c == '(') {
                    let (labels, end) = list(&chars, next.unwrap().0);
                    if !["group_left", "group_right"].contains(&lowered.as_str()) {
                        clause_labels.extend(labels);
                    }
                    i = end;
                }
            } else if KEYWORDS.contains(&lowered.as_str()) || next.is_some_and(|(_, c)| c == '(') {
                // A keyword, or a function or aggregation called with `(`.
            } else {
                let entry = uses.0.entry(word.clone()).or_default();
                if let Some((open, '{')) = next {
                    let (labels, end) = matchers(&chars, open);
                    entry.extend(labels);
                    i = end;
                }
                metrics.push(word);
            }
        } else if c == '{' {
            // A selector without a metric name would match every metric; none is used.
            let (_, end) = matchers(&chars, i);
            i = end;
        } else {
            i += 1;
        }
    }
    for metric in metrics {
        uses.0
            .entry(metric)
            .or_default()
            .extend(clause_labels.iter().cloned());
    }
}

fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<(usize, char)> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    chars.get(i).map(|c| (i, *c))
}

/// `( a, b )` from the `(` at `open`: the names and the index after `)`.
fn list(chars: &[char], open: usize) -> (Vec<String>, usize) {
    let end = chars[open..]
        .iter()
        .position(|c| *c == ')')
        .map_or(chars.len(), |p| open + p);
    let inner: String = chars[open + 1..end].iter().collect();
    let names = inner
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    (names, end + 1)
}

/// `{a="x", b=~"y"}` from the `{` at `open`: the label names and the index after `}`.
fn matchers(chars: &[char], open: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut i = open + 1;
    let mut name = String::new();
    while i < chars.len() && chars[i] != '}' {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
        } else if "=!~".contains(c) {
            if !name.is_empty() {
                names.push(std::mem::take(&mut name));
            }
        } else {
            name.clear();
        }
        i += 1;
    }
    (names, i + 1)
}

/// Every `PromQL` expression of the dashboard: panel targets, and the template variables'
/// `label_values(metric, label)` queries (as `metric{label=""}`).
fn dashboard_expressions() -> Vec<String> {
    let path = repository().join("deploy/grafana/stagewatch.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read the dashboard"))
            .expect("the dashboard is JSON");
    let mut expressions = Vec::new();
    let mut panels: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect();
    while let Some(panel) = panels.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                expressions.push(expr.to_owned());
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .unwrap_or_default();
        if let Some(arguments) = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            match arguments.rsplit_once(',') {
                Some((metric, label)) => {
                    expressions.push(format!("{}{{{}=\"\"}}", metric.trim(), label.trim()));
                }
                None => expressions.push(format!("{{{}=\"\"}}", arguments.trim())),
            }
        } else if variable["type"] == "query" {
            expressions.push(query.to_owned());
        }
    }
    assert!(
        expressions.len() >= 10,
        "the dashboard has only {} expressions",
        expressions.len()
    );
    expressions
}

/// Every `expr` of the alert rules: `expr: …` on one line or a `>-`/`|` block under it.
fn alert_expressions() -> Vec<String> {
    let path = repository().join("deploy/prometheus/alerts.yaml");
    let text = std::fs::read_to_string(&path).expect("read the alert rules");
    let lines: Vec<&str> = text.lines().collect();
    let mut expressions = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(value) = trimmed.strip_prefix("expr:") {
            let value = value.trim();
            if value.starts_with(['>', '|']) {
                let indent = line.len() - trimmed.len();
                let mut block = Vec::new();
                i += 1;
                while i < lines.len()
                    && (lines[i].trim().is_empty()
                        || lines[i].len() - lines[i].trim_start().len() > indent)
                {
                    block.push(lines[i].trim());
                    i += 1;
                }
                expressions.push(block.join(" "));
                continue;
            }
            expressions.push(value.trim_matches(['"', '\'']).to_owned());
        }
        i += 1;
    }
    assert!(
        expressions.len() >= 7,
        "the alert rules have only {} expressions",
        expressions.len()
    );
    expressions
}

#[test]
fn the_tokenizer_finds_metrics_and_labels() {
    let mut uses = Uses::default();
    tokenize(
        r#"histogram_quantile(0.95, sum by (integration, le) (rate(x_seconds_bucket{integration=~"$integration", a!="}"}[$__rate_interval]))) > 3 * max(y) and on (z) w offset 5m"#,
        &mut uses,
    );
    let labels = |m: &str| uses.0[m].iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        uses.0.keys().cloned().collect::<Vec<_>>(),
        ["w", "x_seconds_bucket", "y"]
    );
    assert_eq!(labels("x_seconds_bucket"), ["a", "integration", "le", "z"]);
}

// ---- The exposition ----------------------------------------------------------------------

#[derive(Debug, Default)]
struct Exposition {
    /// `# TYPE` by metric family.
    types: BTreeMap<String, String>,
    /// Label names by sample name.
    samples: BTreeMap<String, BTreeSet<String>>,
}

fn parse_exposition(text: &str) -> Exposition {
    let mut exposition = Exposition::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                exposition.types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let name_end = chars
            .iter()
            .position(|c| *c == '{' || c.is_whitespace())
            .unwrap_or(chars.len());
        let name: String = chars[..name_end].iter().collect();
        let labels = exposition.samples.entry(name).or_default();
        if chars.get(name_end) == Some(&'{') {
            labels.extend(matchers(&chars, name_end).0);
        }
    }
    exposition
}

/// The labels of `metric` as a query sees them, or why it does not exist.
fn exported_labels(exposition: &Exposition, metric: &str) -> Result<BTreeSet<String>, String> {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = metric.strip_suffix(suffix)
            && let Some(kind) = exposition.types.get(base)
        {
            if suffix == "_bucket" && kind != "histogram" {
                return Err(format!(
                    "{base} is exported as a {kind}, which has no `_bucket` series (configure buckets for it)"
                ));
            }
            return Ok(family_labels(exposition, base));
        }
    }
    if exposition.types.contains_key(metric) || exposition.samples.contains_key(metric) {
        return Ok(family_labels(exposition, metric));
    }
    Err(format!("{metric} is not exported"))
}

fn family_labels(exposition: &Exposition, family: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for (sample, names) in &exposition.samples {
        let of_family = sample == family
            || ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .any(|suffix| sample.strip_suffix(suffix) == Some(family));
        if of_family {
            labels.extend(names.iter().cloned());
        }
    }
    if exposition.types.get(family).map(String::as_str) == Some("summary") {
        labels.remove("le");
    }
    labels
}

// ---- The server --------------------------------------------------------------------------

fn stagewatch(env: &BTreeMap<&str, String>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stagewatch"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env);
    command
}

/// A webhook receiver on loopback that answers 204 to everything.
async fn receiver() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}/hooks"), task)
}

async fn wait_for(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what} within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_and_the_alerts_is_exported_with_its_labels() {
    let mut uses = Uses::default();
    for expression in dashboard_expressions().iter().chain(&alert_expressions()) {
        tokenize(expression, &mut uses);
    }

    let sandbox = Sandbox::start(
        SandboxConfig::new("sandbox-key")
            .with_seed(11)
            .with_integration(
                IntegrationConfig::new(INTEGRATION, "greenhouse", AtsProfile::Full).with_jobs(2, 4),
            ),
    )
    .await
    .expect("sandbox");
    let (hooks_url, hooks) = receiver().await;
    let database = TestDatabase::sqlite();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let hash = hex(&sha2::Sha256::digest(API_KEY.as_bytes()));
    let env: BTreeMap<&str, String> = [
        ("STAGEWATCH_DATABASE__URL", database.url.clone()),
        ("STAGEWATCH_KOMBO__BASE_URL", sandbox.base_url()),
        ("STAGEWATCH_KOMBO__API_KEY", sandbox.api_key().to_owned()),
        (
            "STAGEWATCH_KOMBO__WEBHOOK_SECRET",
            "deploy-metrics".to_owned(),
        ),
        ("STAGEWATCH_API__LISTEN", format!("127.0.0.1:{port}")),
        ("STAGEWATCH_API__KEY_HASHES", format!("[\"{hash}\"]")),
        ("STAGEWATCH_WEBHOOKS__ALLOW_PRIVATE_URLS", "true".to_owned()),
        ("STAGEWATCH_SYNC__CLAIM_EVERY", "1s".to_owned()),
        // `serve` migrates the fresh database itself.
        ("STAGEWATCH_DATABASE__MIGRATE_ON_START", "true".to_owned()),
        ("STAGEWATCH_LOG__FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .collect();

    let log = tempfile::NamedTempFile::new().expect("log file");
    let server = Running(
        stagewatch(&env, &["serve"])
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start stagewatch serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    wait_for("stagewatch serve did not become ready", async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    // An endpoint first, so that the first pass's events are delivered and counted.
    let created = http
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({"url": hooks_url}))
        .send()
        .await
        .expect("create an endpoint");
    assert!(
        created.status().is_success(),
        "create an endpoint: {} {}",
        created.status(),
        created.text().await.unwrap_or_default()
    );
    // The integration's first pass runs at once and its events are delivered to the endpoint.
    let added = stagewatch(&env, &["integrations", "add", INTEGRATION])
        .output()
        .expect("run stagewatch integrations add");
    assert!(added.status.success(), "integrations add: {added:?}");

    let scrape = async || {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics body")
    };
    wait_for(
        "no sync pass and no webhook delivery were counted",
        async || {
            let text = scrape().await;
            text.contains("stagewatch_sync_passes_total{")
                && text.contains("stagewatch_webhook_deliveries_total{")
        },
    )
    .await;
    let exposition = parse_exposition(&scrape().await);
    drop(server);
    hooks.abort();
    sandbox.shutdown().await;

    let mut problems = Vec::new();
    for (metric, labels) in &uses.0 {
        match exported_labels(&exposition, metric) {
            Err(problem) => problems.push(problem),
            Ok(exported) => {
                for label in labels {
                    let histogram_bucket = label == "le"
                        && exposition
                            .types
                            .get(metric.trim_end_matches("_bucket"))
                            .is_some_and(|kind| kind == "histogram");
                    if !exported.contains(label) && !histogram_bucket {
                        problems.push(format!(
                            "{metric} has no label `{label}` (it has {exported:?})"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the dashboard or the alert rules use what /metrics does not export:\n  {}\n\nserver log:\n{}",
        problems.join("\n  "),
        std::fs::read_to_string(log.path())
            .unwrap_or_default()
            .lines()
            .filter(
                |line| line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"")
            )
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}
