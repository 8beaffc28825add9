//! Authentication errors, ATS profiles, setup states, tracking and the write actions.

mod common;

use common::{ids, start};
use kombo_sandbox::{AtsProfile, IntegrationConfig, SandboxConfig, TruthChange};
use reqwest::Method;
use serde_json::{Value, json};

const ACME: &str = "acme-greenhouse";
const GLOBEX: &str = "globex-personio";
const INITECH: &str = "initech-workday";
const UMBRELLA: &str = "umbrella-recruitee";

#[tokio::test]
async fn authentication_and_integration_errors_use_kombo_codes() {
    let (_sandbox, client) = start(SandboxConfig::showcase(1, 2, 3)).await;
    let url = format!("{}/ats/applications", client.base);
    let missing = client
        .send(client.http.get(&url).header("X-Integration-Id", ACME))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (401, "PLATFORM.AUTHENTICATION_INVALID")
    );
    let wrong = client
        .send(
            client
                .http
                .get(&url)
                .bearer_auth("nope")
                .header("X-Integration-Id", ACME),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (401, "PLATFORM.AUTHENTICATION_INVALID")
    );
    for field in ["code", "title", "message", "log_url"] {
        assert!(wrong.body["error"].get(field).is_some(), "error.{field}");
    }
    let no_integration = client
        .send(client.http.get(&url).bearer_auth(&client.key))
        .await;
    assert_eq!(no_integration.code(), "PLATFORM.INPUT_INVALID");
    let unknown = client
        .list("nobody-greenhouse", "/ats/applications", &[])
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "PLATFORM.INTEGRATION_NOT_FOUND")
    );
    let key = client
        .send(
            client
                .http
                .get(format!("{}/check-api-key", client.base))
                .bearer_auth(&client.key),
        )
        .await;
    assert_eq!(key.status, 200);
    assert!(key.body["data"]["environment_id"].is_string());
    let bad_key = client
        .send(
            client
                .http
                .get(format!("{}/check-api-key", client.base))
                .bearer_auth("x"),
        )
        .await;
    assert_eq!(bad_key.code(), "PLATFORM.AUTHENTICATION_INVALID");
    assert!(wrong.headers.contains_key("ratelimit-limit"));
}

fn field_coverage(integration: &Value, field: &str) -> String {
    integration["data"]["read_models"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == field)
        .map(|entry| entry["coverage_status"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn profiles_shape_coverage_and_reads() {
    let (_sandbox, client) = start(SandboxConfig::showcase(2, 3, 10)).await;
    let integration =
        |id: &'static str| client.send(client.get(id, &format!("/integrations/{id}")));
    let full = integration(ACME).await;
    assert_eq!(field_coverage(&full.body, "outcome"), "SUPPORTED");
    assert_eq!(full.body["data"]["setup_status"], "COMPLETED");

    let globex = integration(GLOBEX).await;
    assert_eq!(field_coverage(&globex.body, "outcome"), "UNSUPPORTED");
    let page = client.list(GLOBEX, "/ats/applications", &[]).await;
    assert!(!page.results().is_empty());
    assert!(page.results().iter().all(|item| item["outcome"].is_null()));
    let filtered = client
        .list(GLOBEX, "/ats/applications", &[("outcomes", "PENDING")])
        .await;
    assert!(
        filtered.results().is_empty(),
        "an unsupported filter returns nothing"
    );
    let ignored = client
        .list(
            GLOBEX,
            "/ats/applications",
            &[
                ("outcomes", "PENDING"),
                ("ignore_unsupported_filters", "true"),
            ],
        )
        .await;
    assert_eq!(ignored.results().len(), page.results().len());

    let initech = client.list(INITECH, "/ats/applications", &[]).await;
    assert_eq!(initech.code(), "INTEGRATION.MODEL_NOT_AVAILABLE");
    assert_eq!(client.list(INITECH, "/ats/jobs", &[]).await.status, 200);
    assert_eq!(
        integration(INITECH).await.body["data"]["read_models"][0]["is_available"],
        false
    );

    let jobs = client.list(UMBRELLA, "/ats/jobs", &[]).await;
    let stages = jobs.results()[0]["stages"].as_array().unwrap();
    assert!(stages.iter().all(|stage| stage.get("index").is_none()));
    let applications = client.list(UMBRELLA, "/ats/applications", &[]).await;
    assert!(
        applications
            .results()
            .iter()
            .all(|item| item["current_stage"]["index"].is_null())
    );
    let acme_jobs = client.list(ACME, "/ats/jobs", &[]).await;
    assert!(acme_jobs.results()[0]["stages"][0]["index"].is_number());
}

#[tokio::test]
async fn an_integration_in_its_initial_sync_answers_409_until_ready() {
    let config = SandboxConfig::new("key").with_integration(
        IntegrationConfig::new("late-lever", "lever", AtsProfile::Full)
            .with_jobs(1, 2)
            .not_ready(),
    );
    let (sandbox, client) = start(config).await;
    let pending = client.list("late-lever", "/ats/applications", &[]).await;
    assert_eq!(
        (pending.status, pending.code()),
        (409, "INTEGRATION.SETUP_SYNC_PENDING")
    );
    let integration = client
        .send(client.get("late-lever", "/integrations/late-lever"))
        .await;
    assert_eq!(
        integration.body["data"]["setup_status"],
        "FINAL_SYNC_PENDING"
    );
    sandbox.handle().mark_ready("late-lever");
    let ready = client.list("late-lever", "/ats/applications", &[]).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.results().len(), 2);
}

#[tokio::test]
async fn only_tracked_applications_are_served_until_imported_or_synced_all() {
    let config = SandboxConfig::new("key")
        .with_integration(
            IntegrationConfig::new("fresh", "greenhouse", AtsProfile::Full).with_jobs(2, 0),
        )
        .with_integration(
            IntegrationConfig::new("everything", "greenhouse", AtsProfile::Full)
                .with_jobs(2, 0)
                .sync_all(),
        );
    let (_sandbox, client) = start(config).await;
    assert!(
        client
            .list("fresh", "/ats/applications", &[])
            .await
            .results()
            .is_empty()
    );
    let all = client.list("everything", "/ats/applications", &[]).await;
    assert_eq!(
        all.results().len(),
        2,
        "one untracked ATS application per job"
    );
    let remote_id = all.results()[0]["remote_id"].as_str().unwrap().to_owned();
    // The same ATS id does not exist in the other integration.
    let foreign = client
        .send(client.write(
            Method::POST,
            "fresh",
            "/ats/import-tracked-application",
            &json!({
                "tracked_at": "2026-11-01T00:00:00.000Z",
                "greenhouse": {"id_type": "application_id", "application_id": remote_id},
            }),
        ))
        .await;
    assert_eq!(foreign.status, 404);
}

#[tokio::test]
async fn import_tracked_application_starts_serving_it() {
    let config = SandboxConfig::new("key").with_integration(
        IntegrationConfig::new("fresh", "greenhouse", AtsProfile::Full).with_jobs(1, 0),
    );
    let (sandbox, client) = start(config).await;
    assert!(sandbox.handle().current_applications("fresh").is_empty());
    let remote_ids = sandbox.handle().untracked_remote_ids("fresh");
    assert_eq!(remote_ids.len(), 1);
    let imported = client
        .send(client.write(
            Method::POST,
            "fresh",
            "/ats/import-tracked-application",
            &json!({
                "tracked_at": "2026-11-01T00:00:00.000Z",
                "greenhouse": {"id_type": "application_id", "application_id": remote_ids[0]},
            }),
        ))
        .await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert!(sandbox.handle().untracked_remote_ids("fresh").is_empty());
    assert_eq!(
        imported.body["data"]["imported_id"]["greenhouse"]["id_type"],
        "application_id"
    );
    let served = client.list("fresh", "/ats/applications", &[]).await;
    assert_eq!(
        ids(served.results()),
        vec![imported.body["data"]["id"].as_str().unwrap().to_owned()]
    );
    assert_eq!(
        sandbox.handle().truth("fresh").last().unwrap().change,
        TruthChange::Tracked
    );
}

#[tokio::test]
async fn create_move_and_reject_change_the_data_and_the_truth() {
    let (sandbox, client) = start(SandboxConfig::showcase(3, 7, 2)).await;
    let handle = sandbox.handle();
    let jobs = client
        .list(ACME, "/ats/jobs", &[("statuses", "OPEN")])
        .await;
    let job = &jobs.results()[0];
    let job_id = job["id"].as_str().unwrap();
    let body = json!({"candidate": {"first_name": "Mary", "last_name": "Jackson", "email_address": "mary@example.com"}});
    let created = client
        .send(client.write(
            Method::POST,
            ACME,
            &format!("/ats/jobs/{job_id}/applications"),
            &body,
        ))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["warnings"], json!([]));
    let application = &created.body["data"];
    let id = application["id"].as_str().unwrap().to_owned();
    assert_eq!(application["candidate"]["first_name"], "Mary");
    assert_eq!(application["outcome"], "PENDING");

    let again = client
        .send(client.write(
            Method::POST,
            ACME,
            &format!(
                "/ats/jobs/remote:{}/applications",
                job["remote_id"].as_str().unwrap()
            ),
            &body,
        ))
        .await;
    assert_eq!(again.code(), "ATS.APPLICATION_ALREADY_EXISTS");
    let closed = client
        .list(ACME, "/ats/jobs", &[("statuses", "CLOSED")])
        .await;
    let closed_id = closed.results()[0]["id"].as_str().unwrap();
    let refused = client
        .send(client.write(
            Method::POST,
            ACME,
            &format!("/ats/jobs/{closed_id}/applications"),
            &body,
        ))
        .await;
    assert_eq!(refused.code(), "ATS.JOB_CLOSED");

    let target_stage = job["stages"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let moved = client
        .send(client.write(
            Method::PUT,
            ACME,
            &format!("/ats/applications/{id}/stage"),
            &json!({"stage_id": target_stage}),
        ))
        .await;
    assert_eq!(moved.status, 200);
    let after_move = client
        .list(ACME, "/ats/applications", &[("ids", &id)])
        .await;
    let moved_application = &after_move.results()[0];
    assert_eq!(moved_application["current_stage_id"], target_stage.as_str());
    assert_ne!(moved_application["changed_at"], application["changed_at"]);
    assert_ne!(
        moved_application["remote_updated_at"],
        application["remote_updated_at"]
    );
    let foreign_stage = client
        .send(client.write(
            Method::PUT,
            ACME,
            &format!("/ats/applications/{id}/stage"),
            &json!({"stage_id": "elsewhere"}),
        ))
        .await;
    assert_eq!(foreign_stage.code(), "PLATFORM.INPUT_INVALID");

    let rejected = client
        .send(client.write(
            Method::POST,
            ACME,
            &format!("/ats/applications/{id}/reject"),
            &json!({"rejection_reason_id": "position-filled"}),
        ))
        .await;
    assert_eq!(rejected.status, 200);
    let after_reject = client
        .list(ACME, "/ats/applications", &[("ids", &id)])
        .await;
    assert_eq!(after_reject.results()[0]["outcome"], "DECLINED");
    assert_eq!(
        after_reject.results()[0]["rejection_reason_name"],
        "Position filled"
    );
    assert!(after_reject.results()[0]["rejected_at"].is_string());

    let changes: Vec<TruthChange> = handle
        .truth(ACME)
        .into_iter()
        .filter(|entry| entry.application_id == id)
        .map(|entry| entry.change)
        .collect();
    assert!(matches!(changes[0], TruthChange::Created { .. }));
    assert!(matches!(&changes[1], TruthChange::StageMoved { to, .. } if *to == target_stage));
    assert_eq!(
        changes[2],
        TruthChange::Declined {
            reason: Some("Position filled".to_owned())
        }
    );
}

#[tokio::test]
async fn the_same_seed_makes_the_same_history() {
    let run = || async {
        let (sandbox, _client) = start(SandboxConfig::showcase(99, 3, 10)).await;
        let handle = sandbox.handle();
        handle.advance(200);
        let history: Vec<(String, TruthChange)> = handle
            .truth(ACME)
            .into_iter()
            .map(|entry| (entry.application_id, entry.change))
            .collect();
        sandbox.shutdown().await;
        history
    };
    let first = run().await;
    assert!(first.len() > 20);
    assert_eq!(first, run().await);
}

#[tokio::test]
async fn every_change_moves_updated_at_and_transitions_move_changed_at() {
    let (sandbox, _client) = start(SandboxConfig::showcase(5, 3, 10)).await;
    let handle = sandbox.handle();
    let entries = handle.advance(150);
    let current = handle.current_applications(ACME);
    for entry in entries
        .iter()
        .filter(|entry| entry.integration == ACME && !entry.application_id.is_empty())
    {
        let later = handle.truth(ACME).iter().any(|other| {
            other.at > entry.at
                && (other.application_id == entry.application_id
                    || (other.application_id.is_empty() && other.job_id == entry.job_id))
        });
        if later {
            continue;
        }
        let item = current
            .iter()
            .find(|item| item["id"] == entry.application_id.as_str())
            .unwrap();
        let stamp = entry
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(
            item["remote_updated_at"],
            stamp.as_str(),
            "{:?}",
            entry.change
        );
        if entry.change.is_transition() {
            assert_eq!(item["changed_at"], stamp.as_str(), "{:?}", entry.change);
        } else {
            assert_ne!(item["changed_at"], stamp.as_str(), "{:?}", entry.change);
        }
    }
}

#[tokio::test]
async fn a_ticking_sandbox_moves_by_itself() {
    let config = SandboxConfig::showcase(8, 2, 5).with_tick(std::time::Duration::from_millis(5));
    let sandbox = kombo_sandbox::Sandbox::start(config).await.unwrap();
    let handle = sandbox.handle();
    let mut changes = 0;
    for _ in 0..400 {
        changes = ALL_IDS.iter().map(|id| handle.truth(id).len()).sum();
        if changes >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(changes >= 3, "background activity happened");
    sandbox.shutdown().await;
}

const ALL_IDS: [&str; 4] = [ACME, GLOBEX, INITECH, UMBRELLA];

#[tokio::test]
async fn steps_in_one_integration_change_only_that_one() {
    let (sandbox, _client) = start(SandboxConfig::showcase(9, 3, 10)).await;
    let handle = sandbox.handle();
    let before: Vec<usize> = handle
        .integration_ids()
        .iter()
        .map(|id| handle.truth(id).len())
        .collect();
    let entries = handle.advance_in(ACME, 40);
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|entry| entry.integration == ACME));
    for (id, count) in handle.integration_ids().iter().zip(before) {
        let grown = handle.truth(id).len() - count;
        if id == ACME {
            assert_eq!(grown, entries.len());
        } else {
            assert_eq!(grown, 0, "{id} changed");
        }
    }
    assert!(handle.advance_in("nobody", 5).is_empty());
}
