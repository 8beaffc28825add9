//! The web console in a real browser: Debian's Chromium, headless, driven over `WebDriver` by
//! `chromedriver`, against the built `stagewatch serve` (SQLite in a temporary folder) in front
//! of an in-process sandbox, with a webhook receiver on loopback.
//!
//! Signs in, sees the integrations, sees a sandbox change arrive in the live feed, checks a
//! job's funnel against the funnel API, opens an application's timeline, confirms held
//! deletions, replays a delivery, checks a 375 px wide screen and the keyboard's first stop,
//! refuses a cross-site form, and signs out. Every page is checked with axe-core (no serious or
//! critical violation) and photographed into `target/console-screenshots/`.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages) and axe-core, which
//! `cargo xtask browser` installs from npm; `cargo xtask test` runs it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDatabase;
use fantoccini::{Client, ClientBuilder, Locator};
use kombo_sandbox::{AtsProfile, IntegrationConfig, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const API_KEY: &str = "sw_console_browser_key";
const FULL: &str = "acme-greenhouse";
const NO_OUTCOMES: &str = "globex-personio";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repository().join("target"), PathBuf::from)
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn wait_for(what: &str, limit: Duration, mut ready: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what} within {limit:?}");
}

/// A loopback receiver: answers deliveries with 204, and serves a page of another site whose
/// form posts to the console (`/attack?target=…`).
async fn receiver() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let port = listener.local_addr().expect("address").port();
    let app = axum::Router::new()
        .route(
            "/attack",
            axum::routing::get(
                |axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>| async move {
                    let target = q.get("target").cloned().unwrap_or_default();
                    axum::response::Html(format!(
                        "<!doctype html><title>elsewhere</title><form method=post action=\"{target}\">\
                         <input name=csrf value=guessed><button id=go type=submit>Win a prize</button></form>"
                    ))
                },
            ),
        )
        .fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

/// The page's accessibility problems that axe-core calls serious or critical.
async fn serious_violations(browser: &Client, axe: &str) -> Vec<String> {
    browser
        .execute(axe, Vec::new())
        .await
        .expect("load axe-core into the page");
    let result = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] })\
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }))))\
               .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: 0 }]));",
            Vec::new(),
        )
        .await
        .expect("run axe-core");
    result
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| {
            format!(
                "{} ({}): {} on {} element(s)",
                v["id"], v["impact"], v["help"], v["nodes"]
            )
        })
        .collect()
}

struct Visit<'a> {
    browser: &'a Client,
    axe: &'a str,
    shots: PathBuf,
    problems: Vec<String>,
}

impl Visit<'_> {
    /// Photographs the page and records its accessibility problems.
    async fn check(&mut self, name: &str) {
        let png = self.browser.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write a screenshot");
        for violation in serious_violations(self.browser, self.axe).await {
            self.problems.push(format!("{name}: {violation}"));
        }
    }
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Waits (after a click that navigates) until `css` holds `expected`; returns its text.
async fn wait_for_text(browser: &Client, css: &str, expected: &str) -> String {
    let mut seen = String::new();
    wait_for(
        &format!("{css} to say {expected:?}"),
        Duration::from_secs(15),
        async || {
            if let Ok(element) = browser.find(Locator::Css(css)).await {
                seen = element.text().await.unwrap_or_default();
            }
            seen.contains(expected)
        },
    )
    .await;
    seen
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver and axe-core: run `cargo xtask browser`"]
async fn the_console_works_in_a_real_browser() {
    let axe_path = std::env::var_os("STAGEWATCH_AXE_JS").map_or_else(
        || target_dir().join("browser-tools/node_modules/axe-core/axe.min.js"),
        PathBuf::from,
    );
    let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not at {} ({e}): run `cargo xtask browser`",
            axe_path.display()
        )
    });
    let shots = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");

    let sandbox = Sandbox::start(
        SandboxConfig::new("sandbox-key")
            .with_seed(23)
            .with_integration(
                IntegrationConfig::new(FULL, "greenhouse", AtsProfile::Full).with_jobs(2, 12),
            )
            .with_integration(
                IntegrationConfig::new(NO_OUTCOMES, "personio", AtsProfile::OutcomeUnsupported)
                    .with_jobs(1, 4),
            ),
    )
    .await
    .expect("sandbox");
    let (receiver_port, receiver_task) = receiver().await;
    let database = TestDatabase::sqlite();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let hash = app_server::http::auth::hash_key(API_KEY);
    let env: BTreeMap<&str, String> = [
        ("STAGEWATCH_DATABASE__URL", database.url.clone()),
        ("STAGEWATCH_KOMBO__BASE_URL", sandbox.base_url()),
        ("STAGEWATCH_KOMBO__API_KEY", sandbox.api_key().to_owned()),
        (
            "STAGEWATCH_KOMBO__WEBHOOK_SECRET",
            "console-browser".to_owned(),
        ),
        ("STAGEWATCH_API__LISTEN", format!("127.0.0.1:{port}")),
        ("STAGEWATCH_API__KEY_HASHES", format!("[\"{hash}\"]")),
        ("STAGEWATCH_WEBHOOKS__ALLOW_PRIVATE_URLS", "true".to_owned()),
        ("STAGEWATCH_SYNC__CLAIM_EVERY", "500ms".to_owned()),
        ("STAGEWATCH_DATABASE__MIGRATE_ON_START", "true".to_owned()),
        ("STAGEWATCH_LOG__FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .collect();
    let log = tempfile::NamedTempFile::new().expect("log file");
    let _server = Running(
        Command::new(env!("CARGO_BIN_EXE_stagewatch"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&env)
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start stagewatch serve"),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    wait_for(
        "stagewatch serve ready",
        Duration::from_secs(60),
        async || {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    let api = async |method: reqwest::Method, path: &str, body: Option<Value>| -> Value {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(API_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API call");
        let status = response.status();
        let text = response.text().await.expect("API body");
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    api(
        reqwest::Method::POST,
        "/v1/webhook-endpoints",
        Some(json!({"url": format!("http://127.0.0.1:{receiver_port}/hooks"), "description": "loopback receiver"})),
    )
    .await;
    for (id, label) in [(FULL, "Acme Robotics"), (NO_OUTCOMES, "Globex Logistics")] {
        api(
            reqwest::Method::POST,
            "/v1/integrations",
            Some(json!({"id": id, "label": label, "tool": id.split('-').nth(1)})),
        )
        .await;
    }
    wait_for("both first passes", Duration::from_secs(60), async || {
        let list = api(reqwest::Method::GET, "/v1/integrations", None).await;
        list["integrations"]
            .as_array()
            .is_some_and(|all| all.iter().all(|i| !i["last_sync_finished_at"].is_null()))
    })
    .await;

    let driver_port = free_port();
    let _driver = Running(
        Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (Debian package chromium-driver)"),
    );
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=en-US"]
        }
    });
    let mut browser = None;
    wait_for(
        "chromedriver session",
        Duration::from_secs(30),
        async || {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.as_object().cloned().unwrap_or_default())
                .connect(&format!("http://127.0.0.1:{driver_port}"))
                .await
            {
                Ok(client) => {
                    browser = Some(client);
                    true
                }
                Err(_) => false,
            }
        },
    )
    .await;
    let browser = browser.expect("a browser");
    let mut visit = Visit {
        browser: &browser,
        axe: &axe,
        shots,
        problems: Vec::new(),
    };

    // Without a session, every page leads to sign-in.
    browser
        .goto(&format!("{base}/ui/events"))
        .await
        .expect("open the console");
    let url = browser.current_url().await.expect("url");
    assert_eq!(url.path(), "/ui/sign-in", "{url}");
    visit.check("01-sign-in").await;
    // A wrong key is refused; the right one signs in and returns to the page asked for.
    browser
        .find(Locator::Id("api_key"))
        .await
        .expect("key field")
        .send_keys("sw_wrong")
        .await
        .expect("type");
    click(&browser, "form.stacked button[type=submit]").await;
    wait_for_text(&browser, ".notice", "not accepted").await;
    let field = browser
        .find(Locator::Id("api_key"))
        .await
        .expect("key field");
    field.clear().await.expect("clear");
    field.send_keys(API_KEY).await.expect("type");
    click(&browser, "form.stacked button[type=submit]").await;
    wait_for("signed in", Duration::from_secs(10), async || {
        browser
            .current_url()
            .await
            .is_ok_and(|url| url.path() == "/ui/events")
    })
    .await;

    // The integrations, with their capabilities.
    browser
        .goto(&format!("{base}/ui"))
        .await
        .expect("integrations");
    let cards = browser
        .find_all(Locator::Css("article[data-integration]"))
        .await
        .expect("cards");
    assert_eq!(cards.len(), 2);
    let globex = text_of(
        &browser,
        &format!("article[data-integration='{NO_OUTCOMES}']"),
    )
    .await;
    assert!(
        globex.contains("Globex Logistics") && globex.contains("outcome: ATS cannot tell"),
        "{globex}"
    );
    let acme = text_of(&browser, &format!("article[data-integration='{FULL}']")).await;
    assert!(acme.contains("24 applications"), "{acme}");
    visit.check("02-integrations").await;

    // A change in the ATS reaches the open live feed by itself.
    browser
        .goto(&format!("{base}/ui/events"))
        .await
        .expect("events");
    wait_for(
        "the live feed to connect",
        Duration::from_secs(10),
        async || text_of(&browser, "#live-status").await.starts_with("Live"),
    )
    .await;
    let before = browser
        .find_all(Locator::Css("ol.feed > li"))
        .await
        .expect("rows")
        .len();
    sandbox.handle().advance(6);
    api(
        reqwest::Method::POST,
        &format!("/v1/integrations/{FULL}/sync"),
        None,
    )
    .await;
    wait_for(
        "a new event in the open feed",
        Duration::from_secs(30),
        async || {
            browser
                .find_all(Locator::Css("ol.feed > li.fresh"))
                .await
                .is_ok_and(|rows| !rows.is_empty())
        },
    )
    .await;
    let after = browser
        .find_all(Locator::Css("ol.feed > li"))
        .await
        .expect("rows")
        .len();
    assert!(after > before, "{before} rows before, {after} after");
    // Each event opens to its JSON.
    click(&browser, "ol.feed > li.fresh summary").await;
    let json_text = text_of(&browser, "ol.feed > li.fresh pre").await;
    let parsed: Value = serde_json::from_str(&json_text).expect("an event's JSON");
    assert!(parsed["sequence"].as_i64().is_some(), "{json_text}");
    visit.check("03-live-events").await;

    // A job's funnel shows the funnel API's numbers.
    let jobs = api(
        reqwest::Method::GET,
        &format!("/v1/integrations/{FULL}/jobs"),
        None,
    )
    .await;
    let job = jobs["jobs"][0]["id"].as_str().expect("a job").to_owned();
    let funnel = api(
        reqwest::Method::GET,
        &format!("/v1/integrations/{FULL}/jobs/{job}/funnel"),
        None,
    )
    .await;
    browser
        .goto(&format!("{base}/ui/integrations/{FULL}/jobs/{job}"))
        .await
        .expect("job page");
    let stages = funnel["stages"].as_array().expect("stages");
    assert!(!stages.is_empty());
    for stage in stages {
        let name = stage["name"]
            .as_str()
            .or(stage["stage_id"].as_str())
            .expect("a stage name");
        let row = browser
            .find(Locator::Css(&format!(
                "table[data-funnel] tr[data-stage='{name}']"
            )))
            .await
            .unwrap_or_else(|e| panic!("no row for {name}: {e}"));
        for field in ["current", "entered", "reached", "hired", "declined"] {
            let shown = row
                .find(Locator::Css(&format!("td[data-{field}]")))
                .await
                .expect("cell")
                .attr(&format!("data-{field}"))
                .await
                .expect("attribute");
            assert_eq!(
                shown.as_deref(),
                Some(stage[field].to_string().as_str()),
                "{name} {field}"
            );
        }
    }
    assert!(
        browser.find(Locator::Css("svg.chart")).await.is_ok(),
        "a funnel chart"
    );
    visit.check("04-job-funnel").await;

    // An application's timeline.
    click(&browser, "main table tbody td a[href*='/applications/']").await;
    wait_for(
        "the application's page",
        Duration::from_secs(10),
        async || {
            browser
                .current_url()
                .await
                .is_ok_and(|url| url.path().contains("/applications/"))
        },
    )
    .await;
    assert!(
        browser
            .find(Locator::Css("svg.chart rect.bar"))
            .await
            .is_ok(),
        "a timeline"
    );
    visit.check("05-application").await;

    // Held deletions are confirmed from the integration's card.
    let deleted = sandbox.handle().mass_delete(FULL, 0.75);
    assert!(deleted >= 10, "{deleted}");
    api(
        reqwest::Method::POST,
        &format!("/v1/integrations/{FULL}/sync"),
        None,
    )
    .await;
    wait_for("deletions held", Duration::from_secs(30), async || {
        browser
            .goto(&format!("{base}/ui"))
            .await
            .expect("integrations");
        browser
            .find(Locator::Css(&format!(
                "article[data-integration='{FULL}'] form[action$='/confirm-deletions'] button"
            )))
            .await
            .is_ok()
    })
    .await;
    visit.check("06-held-deletions").await;
    click(
        &browser,
        &format!("article[data-integration='{FULL}'] form[action$='/confirm-deletions'] button"),
    )
    .await;
    let notice = wait_for_text(&browser, ".notice", "entered the feed").await;
    assert!(notice.contains("held deletions"), "{notice}");
    let integration = api(
        reqwest::Method::GET,
        &format!("/v1/integrations/{FULL}"),
        None,
    )
    .await;
    assert_eq!(integration["deletions_held"], json!(false));

    // A delivery is replayed from the webhooks page.
    wait_for(
        "a delivery attempted",
        Duration::from_secs(60),
        async || {
            browser
                .goto(&format!("{base}/ui/webhooks"))
                .await
                .expect("webhooks");
            browser
                .find(Locator::Css("tr[data-delivery] td ol li"))
                .await
                .is_ok()
        },
    )
    .await;
    let attempt = text_of(&browser, "tr[data-delivery] td ol li").await;
    assert!(
        attempt.contains("HTTP 204") && attempt.contains(" ms"),
        "{attempt}"
    );
    visit.check("07-webhooks").await;
    click(&browser, "tr[data-delivery] form[action$='/replay'] button").await;
    wait_for_text(&browser, ".notice", "1 delivery queued again").await;

    // A 375 px wide screen: nothing wider than the screen.
    browser
        .set_window_size(375, 812)
        .await
        .expect("narrow window");
    for (page, name) in [
        ("/ui", "08-narrow-integrations"),
        (
            &format!("/ui/integrations/{FULL}/jobs/{job}") as &str,
            "09-narrow-funnel",
        ),
    ] {
        browser
            .goto(&format!("{base}{page}"))
            .await
            .expect("narrow page");
        let widths = browser
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                Vec::new(),
            )
            .await
            .expect("widths");
        let (scroll, inner) = (
            widths[0].as_i64().unwrap_or(0),
            widths[1].as_i64().unwrap_or(0),
        );
        assert!(
            scroll <= inner,
            "{page}: {scroll} px of content on a {inner} px screen"
        );
        visit.check(name).await;
    }
    browser
        .set_window_size(1280, 1000)
        .await
        .expect("wide window");

    // The keyboard's first stop skips to the content.
    browser
        .goto(&format!("{base}/ui"))
        .await
        .expect("integrations");
    browser
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys("\u{E004}")
        .await
        .expect("Tab");
    let focused = browser
        .execute(
            "return document.activeElement.getAttribute('href');",
            Vec::new(),
        )
        .await
        .expect("focus");
    assert_eq!(focused, json!("#main"));

    // A form posted from another site is refused, and changes nothing.
    let target = format!("{base}/ui/integrations/{NO_OUTCOMES}/pause");
    browser
        .goto(&format!(
            "http://localhost:{receiver_port}/attack?target={}",
            urlencode(&target)
        ))
        .await
        .expect("the other site");
    click(&browser, "#go").await;
    wait_for_text(&browser, "main", "Cross-site form posts are refused").await;
    let globex = api(
        reqwest::Method::GET,
        &format!("/v1/integrations/{NO_OUTCOMES}"),
        None,
    )
    .await;
    assert_eq!(globex["paused"], json!(false));

    // Signing out ends the session: the console asks to sign in again.
    browser
        .goto(&format!("{base}/ui"))
        .await
        .expect("integrations");
    click(&browser, "form.sign-out button").await;
    wait_for("the sign-in page", Duration::from_secs(10), async || {
        browser
            .current_url()
            .await
            .is_ok_and(|url| url.path() == "/ui/sign-in")
    })
    .await;
    browser
        .goto(&format!("{base}/ui/webhooks"))
        .await
        .expect("webhooks");
    assert_eq!(
        browser.current_url().await.expect("url").path(),
        "/ui/sign-in"
    );

    let problems = std::mem::take(&mut visit.problems);
    browser.close().await.expect("close the browser");
    receiver_task.abort();
    sandbox.shutdown().await;
    assert!(
        problems.is_empty(),
        "accessibility problems:\n  {}",
        problems.join("\n  ")
    );
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
