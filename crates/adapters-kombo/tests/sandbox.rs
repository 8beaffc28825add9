//! The client against `kombo-sandbox` over real HTTP: reads and filters compared with what the
//! sandbox serves, writes compared with its ground truth, profiles, errors, faults and webhooks.

#[path = "sandbox/support.rs"]
mod sandbox_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use adapters_kombo::KomboClient;
use adapters_kombo::webhook::{self, KomboWebhook};
use chrono::{DateTime, Utc};
use domain::ports::{
    ApplicationQuery, AtsError, AtsGateway, ImportRequest, NewApplication, NewCandidate,
};
use domain::{
    ApplicationId, IntegrationStatus, JobId, Outcome, RemoteId, SetupStatus, StageId, Support,
};
use kombo_sandbox::{
    AtsProfile, Endpoint, Fault, FaultRule, IntegrationConfig, SandboxConfig, Trigger, TruthChange,
};
use sandbox_support::{
    Settings, all_applications, all_jobs, client, id, integration, sorted_ids, start, wait_for,
    webhook_receiver,
};
use serde_json::{Value, json};

const FULL: &str = "acme-greenhouse";

/// Which served applications a query must return.
type Filter = Box<dyn Fn(&Value) -> bool>;

/// A full-support integration with some history: moves, outcomes, deletions, new applications.
async fn busy_full_sandbox() -> (kombo_sandbox::RunningSandbox, KomboClient) {
    let sandbox = start(SandboxConfig::new("key").with_seed(7).with_integration(
        IntegrationConfig::new(FULL, "greenhouse", AtsProfile::Full).with_jobs(4, 5),
    ))
    .await;
    sandbox.handle().advance(120);
    let client = client(&sandbox, Settings::default());
    (sandbox, client)
}

fn text<'a>(application: &'a Value, field: &str) -> Option<&'a str> {
    application[field].as_str()
}

fn time(application: &Value, field: &str) -> DateTime<Utc> {
    text(application, field)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or_else(
            || panic!("{field} of {application}"),
            |at| at.with_timezone(&Utc),
        )
}

/// The middle value of a field over the applications, so a filter on it keeps some and drops some.
fn median_time(applications: &[Value], field: &str) -> DateTime<Utc> {
    let mut times: Vec<_> = applications.iter().map(|a| time(a, field)).collect();
    times.sort();
    times[times.len() / 2]
}

#[tokio::test]
async fn every_filter_returns_exactly_what_the_sandbox_serves_across_pages() {
    let (sandbox, client) = busy_full_sandbox().await;
    let served = sandbox.handle().current_applications(FULL);
    let live: Vec<&Value> = served
        .iter()
        .filter(|a| a["remote_deleted_at"].is_null())
        .collect();
    assert!(live.len() < served.len(), "the history deleted nothing");
    let job_remote_ids: BTreeMap<String, String> = all_jobs(&client, FULL, 2)
        .await
        .into_iter()
        .map(|job| {
            let remote = job.job_remote_id.expect("jobs have remote ids");
            (job.job_id.as_str().to_owned(), remote.as_str().to_owned())
        })
        .collect();
    let updated_after = median_time(&served, "remote_updated_at");
    let created_after = median_time(&served, "remote_created_at");
    let some: Vec<&Value> = live.iter().step_by(3).copied().collect();
    let job = text(live[0], "job_id").unwrap().to_owned();
    let stage = text(live[1], "current_stage_id").unwrap().to_owned();
    let base = ApplicationQuery {
        page_size: 3,
        ..ApplicationQuery::default()
    };

    let is_live: fn(&Value) -> bool = |a| a["remote_deleted_at"].is_null();
    let cases: Vec<(&str, ApplicationQuery, Filter)> = vec![
        ("none", base.clone(), Box::new(is_live)),
        (
            "include_deleted",
            ApplicationQuery {
                include_deleted: true,
                ..base.clone()
            },
            Box::new(|_| true),
        ),
        (
            "updated_after",
            ApplicationQuery {
                updated_after: Some(updated_after),
                include_deleted: true,
                ..base.clone()
            },
            Box::new(move |a| time(a, "remote_updated_at") >= updated_after),
        ),
        (
            "remote_created_after",
            ApplicationQuery {
                remote_created_after: Some(created_after),
                ..base.clone()
            },
            Box::new(move |a| is_live(a) && time(a, "remote_created_at") >= created_after),
        ),
        (
            "ids",
            ApplicationQuery {
                ids: some.iter().map(|a| id(text(a, "id"))).collect(),
                ..base.clone()
            },
            {
                let wanted: BTreeSet<String> = some.iter().map(|a| a["id"].to_string()).collect();
                Box::new(move |a| wanted.contains(&a["id"].to_string()))
            },
        ),
        (
            "remote_ids",
            ApplicationQuery {
                remote_ids: some.iter().map(|a| id(text(a, "remote_id"))).collect(),
                ..base.clone()
            },
            {
                let wanted: BTreeSet<String> =
                    some.iter().map(|a| a["remote_id"].to_string()).collect();
                Box::new(move |a| is_live(a) && wanted.contains(&a["remote_id"].to_string()))
            },
        ),
        (
            "outcomes",
            ApplicationQuery {
                outcomes: vec![Outcome::Hired, Outcome::Declined],
                include_deleted: true,
                ..base.clone()
            },
            Box::new(|a| matches!(text(a, "outcome"), Some("HIRED" | "DECLINED"))),
        ),
        (
            "job_ids",
            ApplicationQuery {
                job_ids: vec![id(Some(&job))],
                ..base.clone()
            },
            {
                let job = job.clone();
                Box::new(move |a| is_live(a) && text(a, "job_id") == Some(job.as_str()))
            },
        ),
        (
            "job_remote_ids",
            ApplicationQuery {
                job_remote_ids: vec![id(Some(&job_remote_ids[&job]))],
                ..base.clone()
            },
            {
                let job = job.clone();
                Box::new(move |a| is_live(a) && text(a, "job_id") == Some(job.as_str()))
            },
        ),
        (
            "current_stage_ids",
            ApplicationQuery {
                current_stage_ids: vec![id(Some(&stage))],
                ..base.clone()
            },
            Box::new(move |a| is_live(a) && text(a, "current_stage_id") == Some(stage.as_str())),
        ),
    ];

    for (name, query, wanted) in cases {
        let expected: Vec<String> = sorted_ids(served.iter().filter(|a| wanted(a)));
        assert!(!expected.is_empty(), "{name}: the filter keeps nothing");
        if name != "include_deleted" {
            assert!(
                expected.len() < served.len(),
                "{name}: the filter drops nothing"
            );
        }
        let fetched = all_applications(&client, FULL, &query).await.unwrap();
        let mut ids: Vec<String> = fetched.iter().map(|a| a.id.as_str().to_owned()).collect();
        ids.sort();
        assert_eq!(ids, expected, "filter {name}");
    }
}

#[tokio::test]
async fn applications_are_mapped_as_the_sandbox_renders_them() {
    let (sandbox, client) = busy_full_sandbox().await;
    let served: BTreeMap<String, Value> = sandbox
        .handle()
        .current_applications(FULL)
        .into_iter()
        .map(|a| (text(&a, "id").unwrap().to_owned(), a))
        .collect();
    let query = ApplicationQuery {
        page_size: 4,
        include_deleted: true,
        ..ApplicationQuery::default()
    };
    let fetched = all_applications(&client, FULL, &query).await.unwrap();
    assert_eq!(fetched.len(), served.len());
    for snapshot in fetched {
        let wire = &served[snapshot.id.as_str()];
        assert_eq!(
            snapshot.outcome.as_ref().map(Outcome::as_str),
            text(wire, "outcome")
        );
        assert_eq!(
            snapshot.current_stage_id.as_ref().map(StageId::as_str),
            text(wire, "current_stage_id")
        );
        assert_eq!(
            snapshot.job_id.as_ref().map(JobId::as_str),
            text(wire, "job_id")
        );
        assert_eq!(snapshot.changed_at, time(wire, "changed_at"));
        assert_eq!(
            snapshot.remote_deleted_at.is_some(),
            !wire["remote_deleted_at"].is_null()
        );
        let stage = snapshot.current_stage.expect("current stage expanded");
        assert_eq!(
            stage.index.is_some(),
            wire["current_stage"]["index"].is_number()
        );
        assert!(stage.index.is_some(), "the Full profile has stage indexes");
    }
}

#[tokio::test]
async fn jobs_come_with_their_stages_with_or_without_index() {
    let sandbox = start(SandboxConfig::showcase(3, 5, 2)).await;
    let client = client(&sandbox, Settings::default());
    for (name, indexed) in [(FULL, true), ("umbrella-recruitee", false)] {
        let jobs = all_jobs(&client, name, 2).await;
        let unique: BTreeSet<&str> = jobs.iter().map(|job| job.job_id.as_str()).collect();
        assert_eq!(unique.len(), 5, "{name}: every job once");
        for job in &jobs {
            assert!(
                !job.stages.is_empty(),
                "{name}: {} has no stages",
                job.job_id
            );
            assert!(
                job.stages.iter().all(|s| s.index.is_some() == indexed),
                "{name}"
            );
        }
        let applications = all_applications(&client, name, &ApplicationQuery::default())
            .await
            .unwrap();
        assert_eq!(applications.len(), 10);
        for application in applications {
            let stage = application.current_stage.expect("current stage expanded");
            assert_eq!(stage.index.is_some(), indexed, "{name}");
            let job = jobs
                .iter()
                .find(|job| Some(&job.job_id) == application.job_id.as_ref())
                .expect("the application's job is listed");
            assert!(
                job.stage(&stage.id).is_some(),
                "the stage is one of its job"
            );
        }
    }
}

/// More job ids than one request may carry: the client reads them chunk by chunk, and the
/// caller pages through one listing that has every job once.
#[tokio::test]
async fn jobs_asked_for_by_many_ids_come_back_in_one_listing() {
    let sandbox = start(SandboxConfig::new("key").with_seed(9).with_integration(
        IntegrationConfig::new(FULL, "greenhouse", AtsProfile::Full).with_jobs(120, 1),
    ))
    .await;
    let client = client(&sandbox, Settings::default());
    let every = all_jobs(&client, FULL, 250).await;
    assert_eq!(every.len(), 120);
    let mut wanted: Vec<JobId> = every.iter().map(|job| job.job_id.clone()).collect();
    wanted.retain(|id| !id.as_str().ends_with('7')); // not simply all of them
    let before = sandbox.handle().request_count(Endpoint::Jobs);
    let query = domain::ports::JobQuery {
        ids: wanted.clone(),
        // Pages large enough for every id: only chunking makes more than one request.
        page_size: 250,
    };
    let mut listed = Vec::new();
    let mut cursor = None;
    for _ in 0..50 {
        let page = client
            .fetch_jobs(&integration(FULL), &query, cursor)
            .await
            .unwrap();
        listed.extend(page.items.into_iter().map(|job| job.job_id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let listed_set: BTreeSet<&JobId> = listed.iter().collect();
    assert_eq!(listed.len(), listed_set.len(), "every job once");
    assert_eq!(listed_set, wanted.iter().collect::<BTreeSet<_>>());
    let requests = sandbox.handle().request_count(Endpoint::Jobs) - before;
    assert_eq!(
        requests,
        wanted.len().div_ceil(50) as u64,
        "one request per 50 ids"
    );
}

fn candidate(email: &str) -> NewCandidate {
    NewCandidate {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email_address: email.into(),
        phone_number: None,
        company: None,
        title: None,
    }
}

#[tokio::test]
async fn writes_through_the_client_land_in_the_sandboxs_truth() {
    let sandbox = start(SandboxConfig::new("key").with_integration(
        IntegrationConfig::new(FULL, "greenhouse", AtsProfile::Full).with_jobs(8, 1),
    ))
    .await;
    let handle = sandbox.handle();
    let client = client(&sandbox, Settings::default());
    let integration = integration(FULL);
    let jobs = all_jobs(&client, FULL, 100).await;

    // Closed jobs refuse applications; the first open one takes it.
    let mut created = None;
    for job in &jobs {
        let new = NewApplication {
            job_id: job.job_id.clone(),
            candidate: candidate("ada@example.com"),
            stage_id: None,
            extra: serde_json::Map::new(),
        };
        match client.create_application(&integration, &new).await {
            Ok(application) => {
                created = Some((job, new, application));
                break;
            }
            Err(AtsError::Rejected { code, .. }) => assert_eq!(code, "ATS.JOB_CLOSED"),
            Err(other) => panic!("create failed: {other:?}"),
        }
    }
    let (job, new, application) = created.expect("an open job");
    let last = handle.truth(FULL).pop().unwrap();
    assert_eq!(last.application_id, application.id.as_str());
    assert!(
        matches!(last.change, TruthChange::Created { .. }),
        "{last:?}"
    );
    assert_eq!(application.candidate_name.as_deref(), Some("Ada Lovelace"));
    let again = client.create_application(&integration, &new).await;
    assert!(
        matches!(again, Err(AtsError::AlreadyExists { .. })),
        "{again:?}"
    );

    let target = job
        .stages
        .iter()
        .find(|s| Some(&s.id) != application.current_stage_id.as_ref())
        .expect("a job has several stages");
    client
        .move_application(&integration, &application.id, &target.id)
        .await
        .unwrap();
    let last = handle.truth(FULL).pop().unwrap();
    assert_eq!(
        last.change,
        TruthChange::StageMoved {
            from: application
                .current_stage_id
                .as_ref()
                .unwrap()
                .as_str()
                .to_owned(),
            to: target.id.as_str().to_owned(),
        }
    );

    client
        .reject_application(&integration, &application.id, "position-filled", None)
        .await
        .unwrap();
    let last = handle.truth(FULL).pop().unwrap();
    assert_eq!(
        last.change,
        TruthChange::Declined {
            reason: Some("Position filled".into())
        }
    );
    let query = ApplicationQuery {
        ids: vec![application.id.clone()],
        ..ApplicationQuery::default()
    };
    let read = all_applications(&client, FULL, &query).await.unwrap();
    assert_eq!(read[0].outcome, Some(Outcome::Declined));
    assert_eq!(
        read[0].rejection_reason_name.as_deref(),
        Some("Position filled")
    );
    assert_eq!(read[0].current_stage_id.as_ref(), Some(&target.id));

    let remote_id = handle
        .untracked_remote_ids(FULL)
        .pop()
        .expect("one to import");
    let mut identifiers = serde_json::Map::new();
    identifiers.insert("id_type".into(), json!("application_id"));
    identifiers.insert("application_id".into(), json!(remote_id));
    let request = ImportRequest {
        tracked_at: None,
        tool: "greenhouse".into(),
        identifiers,
    };
    let imported = client
        .import_tracked_application(&integration, &request)
        .await
        .unwrap();
    let last = handle.truth(FULL).pop().unwrap();
    assert_eq!(last.application_id, imported.id.as_str());
    assert_eq!(last.change, TruthChange::Tracked);
    assert!(!handle.untracked_remote_ids(FULL).contains(&remote_id));
    let query = ApplicationQuery {
        remote_ids: vec![RemoteId::parse(remote_id).unwrap()],
        ..ApplicationQuery::default()
    };
    let read = all_applications(&client, FULL, &query).await.unwrap();
    let ids: Vec<&ApplicationId> = read.iter().map(|a| &a.id).collect();
    assert_eq!(ids, [&imported.id]);
}

#[tokio::test]
async fn capabilities_follow_the_profile() {
    let sandbox = start(SandboxConfig::showcase(5, 1, 1)).await;
    let client = client(&sandbox, Settings::default());
    let full = client.integration_info(&integration(FULL)).await.unwrap();
    assert_eq!(full.capabilities.outcome, Support::Supported);
    assert_eq!(full.capabilities.current_stage, Support::Supported);
    assert_eq!(full.status, IntegrationStatus::Active);
    assert_eq!(full.setup_status, Some(SetupStatus::Completed));

    let personio = integration("globex-personio");
    let info = client.integration_info(&personio).await.unwrap();
    assert_eq!(info.capabilities.outcome, Support::Unsupported);
    assert_eq!(info.capabilities.current_stage, Support::Supported);
    let read = all_applications(&client, "globex-personio", &ApplicationQuery::default())
        .await
        .unwrap();
    assert!(!read.is_empty() && read.iter().all(|a| a.outcome.is_none()));

    let workday = integration("initech-workday");
    client.integration_info(&workday).await.unwrap();
    let refused = client
        .fetch_applications(&workday, &ApplicationQuery::default(), None)
        .await;
    assert!(
        matches!(&refused, Err(AtsError::Unsupported { code, .. }) if code == "INTEGRATION.MODEL_NOT_AVAILABLE"),
        "{refused:?}"
    );
    assert_eq!(all_jobs(&client, "initech-workday", 10).await.len(), 1);
}

#[tokio::test]
async fn a_pending_integration_is_not_ready_until_its_sync_ends() {
    let sandbox = start(
        SandboxConfig::new("key").with_integration(
            IntegrationConfig::new("hooli-greenhouse", "greenhouse", AtsProfile::Full)
                .with_jobs(1, 2)
                .not_ready(),
        ),
    )
    .await;
    let client = client(&sandbox, Settings::default());
    let pending = integration("hooli-greenhouse");
    let query = ApplicationQuery::default();
    let refused = client.fetch_applications(&pending, &query, None).await;
    assert!(
        matches!(refused, Err(AtsError::NotReady { .. })),
        "{refused:?}"
    );
    assert_eq!(
        sandbox.handle().request_count(Endpoint::Applications),
        1,
        "not retried"
    );

    sandbox.handle().mark_ready("hooli-greenhouse");
    let page = client
        .fetch_applications(&pending, &query, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
}

#[tokio::test]
async fn a_wrong_api_key_is_unauthorized() {
    let sandbox = start(SandboxConfig::showcase(5, 1, 1)).await;
    let client = client(
        &sandbox,
        Settings {
            api_key: Some("not-the-key".into()),
            ..Settings::default()
        },
    );
    let refused = client.check_api_key().await;
    assert!(
        matches!(refused, Err(AtsError::Unauthorized { .. })),
        "{refused:?}"
    );
    let refused = client
        .fetch_applications(&integration(FULL), &ApplicationQuery::default(), None)
        .await;
    assert!(
        matches!(refused, Err(AtsError::Unauthorized { .. })),
        "{refused:?}"
    );
}

#[path = "sandbox/faults.rs"]
mod faults;
#[path = "sandbox/webhooks.rs"]
mod webhooks;
