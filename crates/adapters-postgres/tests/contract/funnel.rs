//! Funnel analytics over a small history with known answers: forward moves, a skipped stage,
//! a backward move, declined (with reasons), hired and deleted applications, a job change, an
//! application in an inactive stage, and a creation-time window.

use adapters_postgres::entity::stage_visit;
use adapters_postgres::{Backend, Store};
use domain::fixtures::{pipeline, stage as fixture_stage};
use domain::ports::{PageChanges, TrackerStore};
use domain::{
    Funnel, FunnelQuery, FunnelStage, IntegrationId, JobId, Outcome, Pipeline, ReasonCount,
    StageRef, TrackedApplication,
};
use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, ConnectionTrait, EntityTrait, Statement};

use crate::contract;
use crate::support::{TestDb, at, registered, tracked};

contract!(funnel_counts_stays_reaches_times_and_outcomes);

pub(crate) fn frontend() -> Pipeline {
    let mut applied = fixture_stage("fe-applied", Some(0));
    applied.name = Some(" applied ".into());
    let mut onsite = fixture_stage("fe-onsite", Some(1));
    onsite.name = Some("ONSITE".into());
    Pipeline {
        job_id: JobId::parse("frontend").unwrap(),
        job_remote_id: None,
        job_name: Some("Frontend Engineer".into()),
        stages: vec![applied, onsite],
    }
}

pub(crate) fn stage_ref(id: &str) -> StageRef {
    StageRef {
        stage_id: domain::StageId::parse(id).unwrap(),
        name: None,
        index: None,
    }
}

/// An application of `job` now in `stage` (`None`: no known stage).
fn app(
    integration: &IntegrationId,
    id: &str,
    job: &str,
    stage: Option<&str>,
    outcome: Outcome,
) -> TrackedApplication {
    let mut state = tracked(integration, id, stage_ref("applied"), 100);
    state.job_id = Some(JobId::parse(job).unwrap());
    state.current_stage = stage.map(stage_ref);
    state.outcome = Some(outcome);
    state
}

/// Stays of one application: `(stage, entered minute, left minute)`; the last one stays open.
fn stays(
    integration: &IntegrationId,
    application: &str,
    stays: &[(&str, Option<i64>, Option<i64>)],
) -> Vec<stage_visit::ActiveModel> {
    stays
        .iter()
        .map(|(stage, entered, left)| stage_visit::ActiveModel {
            id: NotSet,
            integration_id: Set(integration.as_str().to_owned()),
            application_id: Set(application.to_owned()),
            stage_id: Set((*stage).to_owned()),
            stage_name: Set(None),
            stage_index: Set(None),
            entered_at: Set(entered.map(at)),
            left_at: Set(left.map(at)),
            closed: Set(left.is_some()),
        })
        .collect()
}

/// `(name, current, entered, reached, conversion, median, p90, timed, hired, declined)`.
type Row = (
    Option<String>,
    u64,
    u64,
    u64,
    Option<f64>,
    Option<i64>,
    Option<i64>,
    u64,
    u64,
    u64,
);

fn rows(funnel: &Funnel) -> Vec<Row> {
    funnel
        .stages
        .iter()
        .map(|s: &FunnelStage| {
            (
                s.name.clone(),
                s.current,
                s.entered,
                s.reached,
                s.conversion_to_next.map(|c| (c * 1000.0).round() / 1000.0),
                s.median_seconds,
                s.p90_seconds,
                s.completed_stays,
                s.hired,
                s.declined,
            )
        })
        .collect()
}

#[allow(clippy::unnecessary_wraps)] // names are optional in the rows compared
fn name(n: &str) -> Option<String> {
    Some(n.to_owned())
}

pub(crate) async fn seed(store: &Store) -> (IntegrationId, IntegrationId) {
    let acme = registered(store, "acme").await;
    let globex = registered(store, "globex").await;
    store
        .save_pipelines(&acme, &[pipeline(), frontend()])
        .await
        .unwrap();
    store.save_pipelines(&globex, &[pipeline()]).await.unwrap();

    let pending = Outcome::Pending;
    let mut applications = vec![
        app(
            &acme,
            "a1-forward",
            "backend",
            Some("take_home"),
            pending.clone(),
        ),
        app(&acme, "a2-skip", "backend", Some("onsite"), pending.clone()),
        app(
            &acme,
            "a3-back",
            "backend",
            Some("phone_screen"),
            pending.clone(),
        ),
        app(
            &acme,
            "a4-declined",
            "backend",
            Some("phone_screen"),
            Outcome::Declined,
        ),
        app(&acme, "a5-hired", "backend", Some("offer"), Outcome::Hired),
        app(
            &acme,
            "a6-deleted",
            "backend",
            Some("phone_screen"),
            pending.clone(),
        ),
        app(
            &acme,
            "a7-moved",
            "backend",
            Some("applied"),
            pending.clone(),
        ),
        app(
            &acme,
            "a8-archived",
            "backend",
            Some("archived"),
            pending.clone(),
        ),
        app(
            &acme,
            "a9-late",
            "backend",
            Some("applied"),
            pending.clone(),
        ),
        app(
            &acme,
            "a10-declined",
            "backend",
            Some("phone_screen"),
            Outcome::Declined,
        ),
        app(
            &acme,
            "a11-declined",
            "backend",
            Some("phone_screen"),
            Outcome::Declined,
        ),
        app(&acme, "a12-nowhere", "backend", None, pending.clone()),
        app(&acme, "f1", "frontend", Some("fe-onsite"), pending.clone()),
    ];
    for state in &mut applications {
        match state.id.as_str() {
            "a4-declined" | "a11-declined" => {
                state.rejection_reason_name = Some("Not a fit".into());
            }
            "a10-declined" => state.rejection_reason_name = Some("Salary".into()),
            "a6-deleted" => state.deleted_at = Some(at(90)),
            "a9-late" => state.remote_created_at = Some(at(2000)),
            "a12-nowhere" => {
                // Created when first seen, exactly at the window's (exclusive) end.
                state.remote_created_at = None;
                state.first_seen_at = at(1000);
            }
            _ => {}
        }
    }
    for (integration, states) in [
        (acme.clone(), applications),
        (
            globex.clone(),
            vec![app(&globex, "g1", "backend", Some("applied"), pending)],
        ),
    ] {
        store
            .apply_page(PageChanges {
                integration_id: integration,
                lease: None,
                applications: states,
                events: Vec::new(),
                stage_entries: Vec::new(),
                held: Vec::new(),
                pipelines: Vec::new(),
            })
            .await
            .unwrap();
    }

    let mut visits = Vec::new();
    for (application, history) in [
        (
            "a1-forward",
            vec![
                ("applied", Some(0), Some(10)),
                ("phone_screen", Some(10), Some(30)),
                ("take_home", Some(30), None),
            ],
        ),
        // Skips phone_screen and take_home.
        (
            "a2-skip",
            vec![("applied", Some(0), Some(20)), ("onsite", Some(20), None)],
        ),
        // Back to applied, then on again.
        (
            "a3-back",
            vec![
                ("applied", Some(0), Some(5)),
                ("phone_screen", Some(5), Some(15)),
                ("applied", Some(15), Some(25)),
                ("phone_screen", Some(25), None),
            ],
        ),
        (
            "a4-declined",
            vec![
                ("applied", Some(0), Some(30)),
                ("phone_screen", Some(30), None),
            ],
        ),
        (
            "a5-hired",
            vec![
                ("applied", Some(0), Some(10)),
                ("phone_screen", Some(10), Some(20)),
                ("take_home", Some(20), Some(40)),
                ("onsite", Some(40), Some(60)),
                ("offer", Some(60), None),
            ],
        ),
        (
            "a6-deleted",
            vec![
                ("applied", Some(0), Some(50)),
                ("phone_screen", Some(50), None),
            ],
        ),
        // Its stay in the frontend job's stage counts nowhere: its job is backend now.
        (
            "a7-moved",
            vec![
                ("fe-applied", Some(0), Some(10)),
                ("applied", Some(10), None),
            ],
        ),
        (
            "a8-archived",
            vec![("applied", Some(0), Some(5)), ("archived", Some(5), None)],
        ),
        ("a9-late", vec![("applied", Some(2000), None)]),
        (
            "a10-declined",
            vec![
                ("applied", Some(0), Some(10)),
                ("phone_screen", Some(10), None),
            ],
        ),
        (
            "a11-declined",
            vec![
                ("applied", Some(0), Some(10)),
                ("phone_screen", Some(10), None),
            ],
        ),
        (
            "f1",
            vec![
                ("fe-applied", Some(0), Some(60)),
                ("fe-onsite", Some(60), None),
            ],
        ),
    ] {
        visits.extend(stays(&acme, application, &history));
    }
    // In applied since before tracking began (entry unknown), then moved on.
    visits.extend(stays(&globex, "g1", &[("applied", None, Some(30))]));
    visits.last_mut().unwrap().closed = Set(true);
    let mut open = stays(&globex, "g1", &[("applied", Some(30), None)]);
    visits.append(&mut open);
    stage_visit::Entity::insert_many(visits)
        .exec_without_returning(store.connection())
        .await
        .unwrap();
    (acme, globex)
}

async fn funnel_counts_stays_reaches_times_and_outcomes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let (acme, _globex) = seed(&store).await;

    // How the timestamps are stored decides how SQLite computes times: RFC 3339 text there.
    if backend == Backend::Sqlite {
        let row = store
            .connection()
            .query_one_raw(Statement::from_string(
                store.connection().get_database_backend(),
                "SELECT typeof(entered_at) AS t, entered_at AS v FROM stage_visits \
                 WHERE entered_at IS NOT NULL LIMIT 1",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<String>("", "t").unwrap(), "text");
        assert_eq!(
            row.try_get::<String>("", "v").unwrap(),
            "2026-11-28T10:00:00+00:00"
        );
    }

    let backend_job = JobId::parse("backend").unwrap();
    let job = store
        .funnel(&FunnelQuery {
            integration: Some(acme.clone()),
            job: Some(backend_job.clone()),
            since: None,
            until: None,
        })
        .await
        .unwrap();
    assert_eq!(
        job.applications,
        domain::CohortCounts {
            total: 12,
            active: 7,
            hired: 1,
            declined: 3,
            deleted: 1,
            without_known_stage: 1,
        }
    );
    let ids: Vec<Option<&str>> = job.stages.iter().map(|s| s.stage_id.as_deref()).collect();
    assert_eq!(
        ids,
        [
            Some("applied"),
            Some("phone_screen"),
            Some("take_home"),
            Some("onsite"),
            Some("offer"),
            Some("archived")
        ],
        "the inactive stage is listed: an application is in it"
    );
    let positions: Vec<i32> = job.stages.iter().map(|s| s.position).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
    assert_eq!(
        rows(&job),
        [
            // Applied: 9 timed stays, 300 … 3000 s; a3's two stays add up to 900 s.
            (
                name("Applied"),
                2,
                11,
                11,
                Some(0.818),
                Some(600),
                Some(3000),
                9,
                0,
                0
            ),
            (
                name("Phone screen"),
                1,
                7,
                9,
                Some(0.444),
                Some(600),
                Some(1200),
                3,
                0,
                3
            ),
            // a2 skipped it, and counts as having passed it.
            (
                name("Take home"),
                1,
                2,
                4,
                Some(0.75),
                Some(1200),
                Some(1200),
                1,
                0,
                0
            ),
            (
                name("Onsite"),
                1,
                2,
                3,
                Some(0.667),
                Some(1200),
                Some(1200),
                1,
                0,
                0
            ),
            (name("Offer"), 0, 1, 2, Some(0.5), None, None, 0, 1, 0),
            (name("Archived"), 1, 1, 1, None, None, None, 0, 0, 0),
        ]
    );
    assert_eq!(
        job.stages[1].top_rejection_reasons,
        [
            ReasonCount {
                reason: "Not a fit".into(),
                count: 2
            },
            ReasonCount {
                reason: "Salary".into(),
                count: 1
            }
        ]
    );
    assert!(job.stages[0].top_rejection_reasons.is_empty());

    // The window: created in [0, 1000) leaves out a9 (2000) and a12 (1000).
    let window = store
        .funnel(&FunnelQuery {
            integration: Some(acme.clone()),
            job: Some(backend_job.clone()),
            since: Some(at(0)),
            until: Some(at(1000)),
        })
        .await
        .unwrap();
    assert_eq!(
        (
            window.applications.total,
            window.applications.active,
            window.applications.without_known_stage
        ),
        (10, 5, 0)
    );
    assert_eq!(
        rows(&window)[0],
        (
            name("Applied"),
            1,
            10,
            10,
            Some(0.9),
            Some(600),
            Some(3000),
            9,
            0,
            0
        )
    );
    // Only a9: nobody is in the inactive stage, so it is not listed.
    let late = store
        .funnel(&FunnelQuery {
            integration: Some(acme.clone()),
            job: Some(backend_job),
            since: Some(at(1500)),
            until: None,
        })
        .await
        .unwrap();
    assert_eq!(late.applications.total, 1);
    assert_eq!(late.stages.len(), 5);
    assert_eq!(
        rows(&late)[0],
        (name("Applied"), 1, 1, 1, Some(0.0), None, None, 0, 0, 0)
    );

    // The integration: backend and frontend stages grouped by name, by lowest position.
    let integration = store
        .funnel(&FunnelQuery {
            integration: Some(acme.clone()),
            ..FunnelQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(integration.applications.total, 13);
    assert!(integration.stages.iter().all(|s| s.stage_id.is_none()));
    let summary: Vec<(Option<String>, i32, u64, u64, u64)> = integration
        .stages
        .iter()
        .map(|s| (s.name.clone(), s.position, s.current, s.entered, s.reached))
        .collect();
    assert_eq!(
        summary,
        [
            (name("Applied"), 0, 2, 12, 12),
            // Frontend's onsite is its second stage: the group's lowest position is 1.
            (name("ONSITE"), 1, 2, 3, 4),
            (name("Phone screen"), 1, 1, 7, 9),
            (name("Take home"), 2, 1, 2, 4),
            (name("Offer"), 4, 0, 1, 2),
            (name("Archived"), 5, 1, 1, 1),
        ]
    );
    // f1's applied stay (60 min) joins backend's nine.
    assert_eq!(
        (
            integration.stages[0].completed_stays,
            integration.stages[0].median_seconds,
            integration.stages[0].p90_seconds
        ),
        (10, Some(600), Some(3000))
    );

    // Everything: globex's g1 too; its first stay has no known entry, so no time.
    let all = store.funnel(&FunnelQuery::default()).await.unwrap();
    assert_eq!(all.applications.total, 14);
    assert_eq!(
        (
            all.stages[0].name.clone(),
            all.stages[0].current,
            all.stages[0].entered,
            all.stages[0].completed_stays
        ),
        (name("Applied"), 3, 13, 10)
    );

    assert!(
        store
            .job_known(&acme, &JobId::parse("frontend").unwrap())
            .await
            .unwrap()
    );
    assert!(
        !store
            .job_known(&acme, &JobId::parse("nope").unwrap())
            .await
            .unwrap()
    );
    drop(store);
    db.drop_database().await;
}
