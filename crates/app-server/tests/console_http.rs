//! The web console over plain HTTP, on SQLite and PostgreSQL: sign-in and its cookie, the
//! redirect without a session, the security headers, CSRF and cross-site refusals, an action
//! that changes the store, sign-out on every replica. The browser test
//! (`console_browser.rs`) covers the pages as a person uses them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use app_server::config::Settings;
use app_server::http::{ApiParts, auth::hash_key};
use common::{TestDatabase, kombo_client};
use domain::IntegrationId;
use domain::ports::SystemClock;
use kombo_sandbox::{Sandbox, SandboxConfig};
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const API_KEY: &str = "console-key";
const INTEGRATION: &str = "acme-greenhouse";
const FORM: &str = "application/x-www-form-urlencoded";

fn encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("a form")
}

struct Console {
    base: String,
    http: reqwest::Client,
}

impl Console {
    fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.get(format!("{}{path}", self.base));
        match cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        }
    }

    fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("sec-fetch-site", "same-origin")
            .header(CONTENT_TYPE, FORM)
            .body(encode(form))
    }

    /// Signs in; returns the cookie to send back.
    async fn sign_in(&self, key: &str) -> Response {
        self.http
            .post(format!("{}/ui/sign-in", self.base))
            .header("sec-fetch-site", "same-origin")
            .header(CONTENT_TYPE, FORM)
            .body(encode(&[("api_key", key), ("next", "/ui/webhooks")]))
            .send()
            .await
            .expect("sign in")
    }
}

fn cookie_of(response: &Response) -> String {
    let set = response
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .expect("text");
    set.split(';').next().expect("name=value").to_owned()
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().expect("a value").to_owned()
}

async fn run(database: TestDatabase) {
    let sandbox = Sandbox::start(SandboxConfig::showcase(7, 1, 1).with_manual_clock())
        .await
        .expect("sandbox");
    let store = database.store().await;
    store
        .register_integration(
            &adapters_postgres::NewIntegration {
                id: IntegrationId::parse(INTEGRATION).expect("id"),
                tool: Some("greenhouse".into()),
                label: Some("Acme <Robotics>".into()),
                poll_interval: None,
            },
            chrono::Utc::now(),
        )
        .await
        .expect("register");
    let mut settings = Settings::default();
    settings.api.key_hashes = vec![hash_key(API_KEY)];
    settings.api.max_feed_wait = Duration::from_secs(2);
    let shutdown = CancellationToken::new();
    let (address, server) = app_server::http::start(
        &settings,
        ApiParts {
            store: store.clone(),
            ats: kombo_client(&sandbox.base_url(), sandbox.api_key()),
            clock: Arc::new(SystemClock),
            sync_waker: Arc::new(Notify::new()),
            metrics: None,
        },
        Some("127.0.0.1:0".parse().expect("address")),
        shutdown.clone(),
    )
    .await
    .expect("start the server");
    let console = Console {
        base: format!("http://{address}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    };

    // Without a session: to sign-in, remembering where to return; every answer has the policy.
    let response = console
        .get("/ui/events?type=application.hired", None)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/ui/sign-in?next=%2Fui%2Fevents%3Ftype%3Dapplication.hired"
    );
    let policy = response.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("text");
    assert!(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"));
    assert_eq!(
        console.get("/", None).send().await.expect("GET").headers()[LOCATION],
        "/ui"
    );
    // The live feed's fetches are told, not redirected.
    let live = console
        .get("/ui/events/live?after=0", None)
        .send()
        .await
        .expect("GET");
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);

    // A wrong key: refused, as a page.
    let wrong = console.sign_in("not-the-key").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(
        wrong.headers()[CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/html")
    );
    // A sign-in posted from another site is refused even with the right key.
    let forged = console
        .http
        .post(format!("{}/ui/sign-in", console.base))
        .header("sec-fetch-site", "cross-site")
        .header(CONTENT_TYPE, FORM)
        .body(encode(&[("api_key", API_KEY)]))
        .send()
        .await
        .expect("sign in");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // The right key: a strict, HttpOnly cookie, and back to the page asked for.
    let signed_in = console.sign_in(API_KEY).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[LOCATION], "/ui/webhooks");
    let set = signed_in.headers()[SET_COOKIE]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = cookie_of(&signed_in);

    let page = console.get("/ui", Some(&cookie)).send().await.expect("GET");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("page");
    assert!(html.contains("Acme &lt;Robotics&gt;"), "labels are escaped");
    let csrf = csrf_of(&html);
    let pause = format!("/ui/integrations/{INTEGRATION}/pause");
    let id = IntegrationId::parse(INTEGRATION).expect("id");

    // A form without the session's token, or from another site, changes nothing.
    let no_token = console
        .post(&pause, &cookie, &[("csrf", "guess")])
        .send()
        .await
        .expect("POST");
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let cross_site = console
        .http
        .post(format!("{}{pause}", console.base))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .header(CONTENT_TYPE, FORM)
        .body(encode(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .expect("POST");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert!(
        !store
            .integration(&id)
            .await
            .expect("read")
            .expect("there")
            .paused
    );

    // With it, the button does what the API does.
    let paused = console
        .post(&pause, &cookie, &[("csrf", &csrf)])
        .send()
        .await
        .expect("POST");
    assert_eq!(paused.status(), StatusCode::OK);
    assert!(paused.text().await.expect("page").contains("is paused"));
    assert!(
        store
            .integration(&id)
            .await
            .expect("read")
            .expect("there")
            .paused
    );

    // Every page answers with the session, an unknown one with a page, not a JSON problem.
    for path in [
        "/ui/events",
        "/ui/webhooks",
        "/ui/funnel",
        &format!("/ui/integrations/{INTEGRATION}"),
    ] {
        let response = console.get(path, Some(&cookie)).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let missing = console
        .get("/ui/integrations/nobody", Some(&cookie))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        missing.headers()[CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/html")
    );

    // Signing out ends the session for every process that shares the store.
    let out = console
        .post("/ui/sign-out", &cookie, &[("csrf", &csrf)])
        .send()
        .await
        .expect("POST");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = console.get("/ui", Some(&cookie)).send().await.expect("GET");
    assert_eq!(after.status(), StatusCode::SEE_OTHER);

    shutdown.cancel();
    let _ = server.await;
    sandbox.shutdown().await;
    drop(store);
    database.drop_database().await;
}

#[tokio::test]
async fn the_console_signs_in_refuses_forgeries_and_signs_out_on_sqlite() {
    run(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn the_console_signs_in_refuses_forgeries_and_signs_out_on_postgres() {
    run(TestDatabase::postgres().await).await;
}
