//! Cursor pagination, page-size bounds and every list filter, over real HTTP.

mod common;

use std::collections::HashSet;

use common::{ids, start};
use kombo_sandbox::{AtsProfile, IntegrationConfig, SandboxConfig};
use serde_json::Value;

const ACME: &str = "acme-greenhouse";

/// A filter's name, its value, and which items it must keep.
type FilterCase<'a> = (&'a str, String, Box<dyn Fn(&Value) -> bool + 'a>);

fn config() -> SandboxConfig {
    SandboxConfig::new("key").with_seed(7).with_integration(
        IntegrationConfig::new(ACME, "greenhouse", AtsProfile::Full).with_jobs(6, 40),
    )
}

fn live(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .filter(|item| item["remote_deleted_at"].is_null())
        .cloned()
        .collect()
}

#[tokio::test]
async fn pages_cover_every_application_exactly_once() {
    let (sandbox, client) = start(config()).await;
    let expected: HashSet<String> = ids(&live(&sandbox.handle().current_applications(ACME)))
        .into_iter()
        .collect();
    assert_eq!(expected.len(), 240);
    let served = client
        .all_pages(ACME, "/ats/applications", &[("page_size", "37")], || {})
        .await;
    let served_ids = ids(&served);
    let unique: HashSet<String> = served_ids.iter().cloned().collect();
    assert_eq!(
        served_ids.len(),
        unique.len(),
        "an application was repeated"
    );
    assert_eq!(unique, expected);
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_while_activity_goes_on() {
    let (sandbox, client) = start(config()).await;
    let handle = sandbox.handle();
    let before: HashSet<String> = ids(&live(&handle.current_applications(ACME)))
        .into_iter()
        .collect();
    let stepping = handle.clone();
    let served = client
        .all_pages(
            ACME,
            "/ats/applications",
            &[("page_size", "25"), ("include_deleted", "true")],
            || {
                stepping.advance(15);
            },
        )
        .await;
    let served_ids = ids(&served);
    let unique: HashSet<String> = served_ids.iter().cloned().collect();
    assert_eq!(
        served_ids.len(),
        unique.len(),
        "an application was repeated"
    );
    let missing: Vec<&String> = before.difference(&unique).collect();
    assert!(missing.is_empty(), "applications skipped: {missing:?}");
    assert!(
        handle.truth(ACME).len() >= 100,
        "activity happened between pages"
    );
}

#[tokio::test]
async fn page_size_defaults_to_100_and_is_bounded() {
    let (_sandbox, client) = start(config()).await;
    let page = client.list(ACME, "/ats/applications", &[]).await;
    assert_eq!(page.results().len(), 100);
    assert!(page.next().is_some());
    let page = client
        .list(ACME, "/ats/applications", &[("page_size", "250")])
        .await;
    assert_eq!(page.results().len(), 240);
    assert!(page.next().is_none());
    for bad in ["0", "251", "-1", "ten"] {
        let page = client
            .list(ACME, "/ats/applications", &[("page_size", bad)])
            .await;
        assert_eq!(
            (page.status, page.code()),
            (400, "PLATFORM.INPUT_INVALID"),
            "page_size={bad}"
        );
        assert_eq!(page.body["status"], "error");
    }
}

#[tokio::test]
async fn a_cursor_is_bound_to_its_filters_and_integration() {
    let (_sandbox, client) = start(config()).await;
    let page = client
        .list(ACME, "/ats/applications", &[("page_size", "10")])
        .await;
    let cursor = page.next().unwrap();
    let other = client
        .list(
            ACME,
            "/ats/applications",
            &[("cursor", &cursor), ("outcomes", "HIRED")],
        )
        .await;
    assert_eq!(other.code(), "PLATFORM.INPUT_INVALID");
    let garbage = client
        .list(ACME, "/ats/applications", &[("cursor", "not-a-cursor")])
        .await;
    assert_eq!(garbage.code(), "PLATFORM.INPUT_INVALID");
}

#[tokio::test]
async fn each_application_filter_selects_exactly_the_matching_applications() {
    let (sandbox, client) = start(config()).await;
    let handle = sandbox.handle();
    handle.advance(300);
    let all = handle.current_applications(ACME);
    let live_all = live(&all);
    let sample = &live_all[3];
    let field = |item: &Value, name: &str| item[name].as_str().unwrap_or("").to_owned();
    let cases: Vec<FilterCase<'_>> = vec![
        (
            "ids",
            format!("{},{}", field(sample, "id"), field(&live_all[9], "id")),
            {
                let wanted = [field(sample, "id"), field(&live_all[9], "id")];
                Box::new(move |item| wanted.contains(&field(item, "id")))
            },
        ),
        ("remote_ids", field(sample, "remote_id"), {
            let wanted = field(sample, "remote_id");
            Box::new(move |item| field(item, "remote_id") == wanted)
        }),
        (
            "outcomes",
            "HIRED,DECLINED".to_owned(),
            Box::new(|item| item["outcome"] != "PENDING"),
        ),
        ("job_ids", field(sample, "job_id"), {
            let wanted = field(sample, "job_id");
            Box::new(move |item| field(item, "job_id") == wanted)
        }),
        (
            "job_remote_ids",
            sample["job"]["remote_id"].as_str().unwrap().to_owned(),
            {
                let wanted = field(sample, "job_id");
                Box::new(move |item| field(item, "job_id") == wanted)
            },
        ),
        ("current_stage_ids", field(sample, "current_stage_id"), {
            let wanted = field(sample, "current_stage_id");
            Box::new(move |item| field(item, "current_stage_id") == wanted)
        }),
    ];
    for (name, value, keep) in cases {
        let served = client
            .all_pages(ACME, "/ats/applications", &[(name, &value)], || {})
            .await;
        let mut expected = ids(&live_all
            .iter()
            .filter(|item| keep(item))
            .cloned()
            .collect::<Vec<_>>());
        let mut got = ids(&served);
        expected.sort();
        got.sort();
        assert!(!expected.is_empty(), "{name} selects something");
        assert_eq!(got, expected, "filter {name}={value}");
    }
}

#[tokio::test]
async fn deleted_applications_appear_only_with_include_deleted() {
    let (sandbox, client) = start(config()).await;
    let deleted = sandbox.handle().mass_delete(ACME, 0.25);
    assert!(deleted > 20);
    let without = client
        .all_pages(ACME, "/ats/applications", &[("page_size", "250")], || {})
        .await;
    let with = client
        .all_pages(
            ACME,
            "/ats/applications",
            &[("page_size", "250"), ("include_deleted", "true")],
            || {},
        )
        .await;
    assert_eq!(with.len() - without.len(), deleted);
    assert!(
        without
            .iter()
            .all(|item| item["remote_deleted_at"].is_null())
    );
    assert_eq!(
        with.iter()
            .filter(|item| !item["remote_deleted_at"].is_null())
            .count(),
        deleted
    );
    for bad in ["TRUE", "1", "yes"] {
        let page = client
            .list(ACME, "/ats/applications", &[("include_deleted", bad)])
            .await;
        assert_eq!(
            page.code(),
            "PLATFORM.INPUT_INVALID",
            "include_deleted={bad}"
        );
    }
    let integration = client
        .send(client.get(ACME, &format!("/integrations/{ACME}")))
        .await;
    assert!(integration.body["data"]["data_expired_at"].is_string());
}

#[tokio::test]
async fn updated_after_sees_related_changes_and_rejects_offsets() {
    let (sandbox, client) = start(config()).await;
    let handle = sandbox.handle();
    handle.advance(5);
    let since = handle.truth(ACME).last().unwrap().at + chrono::TimeDelta::milliseconds(1);
    let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let changes = handle.advance(60);
    let mut expected: Vec<String> = changes
        .iter()
        .filter(|entry| entry.integration == ACME)
        .flat_map(|entry| {
            if entry.application_id.is_empty() {
                // A pipeline change touches every application of the job.
                handle
                    .current_applications(ACME)
                    .iter()
                    .filter(|item| item["job_id"] == entry.job_id.as_str())
                    .map(|item| item["id"].as_str().unwrap().to_owned())
                    .collect()
            } else {
                vec![entry.application_id.clone()]
            }
        })
        .collect();
    expected.sort();
    expected.dedup();
    let served = client
        .all_pages(
            ACME,
            "/ats/applications",
            &[("updated_after", &since_text), ("include_deleted", "true")],
            || {},
        )
        .await;
    let mut got = ids(&served);
    got.sort();
    assert_eq!(got, expected);
    let unchanged_but_updated = served.iter().any(|item| {
        chrono::DateTime::parse_from_rfc3339(item["changed_at"].as_str().unwrap()).unwrap() < since
    });
    assert!(
        unchanged_but_updated,
        "candidate edits, interviews or stage renames show without moving changed_at"
    );
    for offset in [
        "2026-11-28T10:00:00+01:00",
        "2026-11-28T10:00:00.000-05:00",
        "last week",
    ] {
        let page = client
            .list(ACME, "/ats/applications", &[("updated_after", offset)])
            .await;
        assert_eq!(
            page.code(),
            "PLATFORM.INPUT_INVALID",
            "updated_after={offset}"
        );
    }
}

#[tokio::test]
async fn remote_created_after_selects_newer_applications() {
    let (sandbox, client) = start(config()).await;
    let all = sandbox.handle().current_applications(ACME);
    let mut created: Vec<&str> = all
        .iter()
        .map(|item| item["remote_created_at"].as_str().unwrap())
        .collect();
    created.sort_unstable();
    let median = created[created.len() / 2];
    let served = client
        .all_pages(
            ACME,
            "/ats/applications",
            &[("remote_created_after", median)],
            || {},
        )
        .await;
    assert_eq!(
        served.len(),
        created.iter().filter(|at| **at >= median).count()
    );
    assert!(
        served
            .iter()
            .all(|item| item["remote_created_at"].as_str().unwrap() >= median)
    );
}

#[tokio::test]
async fn job_filters_select_exactly_the_matching_jobs() {
    let (_sandbox, client) = start(config()).await;
    let jobs = client
        .all_pages(ACME, "/ats/jobs", &[("page_size", "4")], || {})
        .await;
    assert_eq!(jobs.len(), 6);
    let sample = &jobs[1];
    let text = |item: &Value, name: &str| item[name].as_str().unwrap().to_owned();
    let name_fragment = text(sample, "name")
        .split(' ')
        .next()
        .unwrap()
        .to_lowercase();
    let cases: Vec<FilterCase<'_>> = vec![
        (
            "ids",
            text(sample, "id"),
            Box::new(|item| item["id"] == sample["id"]),
        ),
        (
            "remote_ids",
            text(sample, "remote_id"),
            Box::new(|item| item["remote_id"] == sample["remote_id"]),
        ),
        (
            "job_codes",
            text(sample, "job_code"),
            Box::new(|item| item["job_code"] == sample["job_code"]),
        ),
        (
            "statuses",
            "CLOSED".to_owned(),
            Box::new(|item| item["status"] == "CLOSED"),
        ),
        (
            "employment_types",
            text(sample, "employment_type"),
            Box::new(|item| item["employment_type"] == sample["employment_type"]),
        ),
        (
            "visibilities",
            text(sample, "visibility"),
            Box::new(|item| item["visibility"] == sample["visibility"]),
        ),
        (
            "post_url",
            text(sample, "post_url"),
            Box::new(|item| item["post_url"] == sample["post_url"]),
        ),
        (
            "name_contains",
            name_fragment.clone(),
            Box::new(move |item| text(item, "name").to_lowercase().contains(&name_fragment)),
        ),
    ];
    for (name, value, keep) in cases {
        let served = client
            .all_pages(ACME, "/ats/jobs", &[(name, &value)], || {})
            .await;
        let expected: Vec<Value> = jobs.iter().filter(|item| keep(item)).cloned().collect();
        assert_eq!(ids(&served), ids(&expected), "filter {name}={value}");
    }
    let future = client
        .all_pages(
            ACME,
            "/ats/jobs",
            &[("updated_after", "2100-01-01T00:00:00.000Z")],
            || {},
        )
        .await;
    assert!(future.is_empty());
    let past = client
        .all_pages(
            ACME,
            "/ats/jobs",
            &[("remote_created_after", "2000-01-01")],
            || {},
        )
        .await;
    assert_eq!(past.len(), 6);
}
