//! Shared helpers for the sandbox's HTTP tests.
#![allow(dead_code, unreachable_pub)]

use kombo_sandbox::{RunningSandbox, Sandbox, SandboxConfig};
use reqwest::header::HeaderMap;
use serde_json::Value;

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn results(&self) -> &Vec<Value> {
        self.body["data"]["results"]
            .as_array()
            .expect("a list page")
    }

    pub fn next(&self) -> Option<String> {
        self.body["data"]["next"].as_str().map(str::to_owned)
    }
}

pub async fn start(config: SandboxConfig) -> (RunningSandbox, Client) {
    let sandbox = Sandbox::start(config.with_manual_clock())
        .await
        .expect("sandbox starts");
    let client = Client {
        http: reqwest::Client::new(),
        base: sandbox.base_url(),
        key: sandbox.api_key().to_owned(),
    };
    (sandbox, client)
}

impl Client {
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request completes");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.expect("JSON body");
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, integration: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("X-Integration-Id", integration)
    }

    pub async fn list(&self, integration: &str, path: &str, query: &[(&str, &str)]) -> Answer {
        self.send(self.get(integration, path).query(query)).await
    }

    pub fn write(
        &self,
        method: reqwest::Method,
        integration: &str,
        path: &str,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("X-Integration-Id", integration)
            .json(body)
    }

    /// Every page of `path` with `query`, following cursors; runs `between` after each page.
    pub async fn all_pages(
        &self,
        integration: &str,
        path: &str,
        query: &[(&str, &str)],
        mut between: impl FnMut(),
    ) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params: Vec<(&str, &str)> = query.to_vec();
            if let Some(cursor) = &cursor {
                params.push(("cursor", cursor));
            }
            let page = self.list(integration, path, &params).await;
            assert_eq!(page.status, 200, "{}", page.body);
            items.extend(page.results().iter().cloned());
            between();
            match page.next() {
                Some(next) => cursor = Some(next),
                None => return items,
            }
        }
    }
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}
