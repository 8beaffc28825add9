//! The funnel totals kept at write time answer as the exact computation over the stays does
//! (times within their bucket's width), and every write keeps them equal to a recount.

use std::collections::BTreeSet;

use adapters_postgres::{Backend, Store};
use chrono::Duration;
use domain::detect::StageEntry;
use domain::fixtures::{pipeline, stage as fixture_stage};
use domain::ports::{PageChanges, TrackerStore};
use domain::{
    ApplicationId, Funnel, FunnelQuery, IntegrationId, JobId, Outcome, Pipeline, TrackedApplication,
};
use sea_orm::{ConnectionTrait, Statement};

use crate::contract;
use crate::funnel::{frontend, seed, stage_ref};
use crate::support::{TestDb, at, registered, tracked};

contract!(
    totals_answer_as_the_stays_do,
    totals_follow_every_write,
    a_job_with_two_stages_of_one_name_is_computed_exactly
);

/// The same funnel, but for times in stage, which the totals keep in buckets: equal below 64
/// seconds, within 1.6 % above.
fn assert_same(summed: &Funnel, exact: &Funnel, what: &str) {
    assert_eq!(summed.applications, exact.applications, "{what}: cohort");
    assert_eq!(summed.stages.len(), exact.stages.len(), "{what}: stages");
    for (s, e) in summed.stages.iter().zip(&exact.stages) {
        let mut without_times = s.clone();
        without_times.median_seconds = e.median_seconds;
        without_times.p90_seconds = e.p90_seconds;
        assert_eq!(&without_times, e, "{what}: stage {:?}", e.name);
        for (got, want) in [
            (s.median_seconds, e.median_seconds),
            (s.p90_seconds, e.p90_seconds),
        ] {
            match (got, want) {
                (Some(got), Some(want)) if want < 64 => assert_eq!(got, want, "{what}"),
                (Some(got), Some(want)) => {
                    #[allow(clippy::cast_precision_loss)]
                    let error = (got - want).abs() as f64 / want as f64;
                    assert!(error <= 0.016, "{what}: {got} s for {want} s");
                }
                (got, want) => assert_eq!(got, want, "{what}"),
            }
        }
    }
}

fn queries(acme: &IntegrationId) -> Vec<(&'static str, FunnelQuery)> {
    let backend = Some(JobId::parse("backend").unwrap());
    let midnight = at(0) - Duration::hours(10);
    vec![
        (
            "job",
            FunnelQuery {
                integration: Some(acme.clone()),
                job: backend.clone(),
                ..FunnelQuery::default()
            },
        ),
        (
            "job, within one day",
            FunnelQuery {
                integration: Some(acme.clone()),
                job: backend.clone(),
                since: Some(at(0)),
                until: Some(at(1000)),
            },
        ),
        (
            "job, part of a day then whole days",
            FunnelQuery {
                integration: Some(acme.clone()),
                job: backend.clone(),
                since: Some(at(1500)),
                until: None,
            },
        ),
        (
            "job, a whole day then part of one",
            FunnelQuery {
                integration: Some(acme.clone()),
                job: backend.clone(),
                since: Some(midnight),
                until: Some(midnight + Duration::hours(30)),
            },
        ),
        (
            "other job",
            FunnelQuery {
                integration: Some(acme.clone()),
                job: Some(JobId::parse("frontend").unwrap()),
                ..FunnelQuery::default()
            },
        ),
        (
            "integration",
            FunnelQuery {
                integration: Some(acme.clone()),
                ..FunnelQuery::default()
            },
        ),
        ("everything", FunnelQuery::default()),
        (
            "everything, until a whole day",
            FunnelQuery {
                until: Some(midnight + Duration::days(1)),
                ..FunnelQuery::default()
            },
        ),
    ]
}

async fn compare_paths(store: &Store, acme: &IntegrationId) {
    for (what, query) in queries(acme) {
        let summed = store
            .funnel_from_totals(&query, 0)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: answered from the totals"));
        let exact = store.exact_funnel(&query).await.unwrap();
        assert_same(&summed, &exact, what);
    }
}

/// Every total, its slots summed: `(integration, job, day, metric, stage, detail, n)`, zeros
/// left out.
async fn stored_totals(store: &Store) -> Vec<(String, String, i64, String, String, String, i64)> {
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT integration_id, job_id, created_day, metric, stage_id, detail, \
             CAST(SUM(n) AS BIGINT) AS n FROM funnel_totals \
             GROUP BY integration_id, job_id, created_day, total_key, metric, stage_id, detail \
             HAVING SUM(n) <> 0 \
             ORDER BY integration_id, job_id, created_day, total_key",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "integration_id").unwrap(),
                row.try_get("", "job_id").unwrap(),
                row.try_get("", "created_day").unwrap(),
                row.try_get("", "metric").unwrap(),
                row.try_get("", "stage_id").unwrap(),
                row.try_get("", "detail").unwrap(),
                row.try_get("", "n").unwrap(),
            )
        })
        .collect()
}

/// The slots the stored totals use.
async fn slots(store: &Store) -> Vec<i64> {
    let rows = store
        .connection()
        .query_all_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT DISTINCT CAST(slot AS BIGINT) AS slot FROM funnel_totals",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get("", "slot").unwrap())
        .collect()
}

async fn totals_answer_as_the_stays_do(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // The seed writes its stays directly, as a database from before the totals would hold
    // them: the recount is what the migration does.
    let (acme, _globex) = seed(&store).await;
    store.rebuild_funnel_totals().await.unwrap();
    compare_paths(&store, &acme).await;

    // A small cohort is answered exactly; an empty window too.
    let job = &queries(&acme)[0].1;
    assert!(store.funnel_from_totals(job, 13).await.unwrap().is_none());
    assert!(store.funnel_from_totals(job, 12).await.unwrap().is_some());
    let empty = FunnelQuery {
        since: Some(at(10)),
        until: Some(at(10)),
        ..job.clone()
    };
    assert!(store.funnel_from_totals(&empty, 0).await.unwrap().is_none());
    drop(store);
    db.drop_database().await;
}

/// One round of a deterministic hiring simulation over `n` applications: moves forward, back
/// and past stages, outcomes, rejection reasons, a job change, a deletion, and new arrivals.
fn round(
    integration: &IntegrationId,
    round: i64,
    n: usize,
    states: &mut Vec<TrackedApplication>,
) -> (Vec<TrackedApplication>, Vec<StageEntry>) {
    let backend = [
        "applied",
        "phone_screen",
        "take_home",
        "onsite",
        "offer",
        "archived",
    ];
    let frontend = ["fe-applied", "fe-onsite"];
    let minute = round * 100;
    let mut changed = Vec::new();
    let mut entries = Vec::new();
    let mut enter = |state: &mut TrackedApplication, stage: &str, minute: i64| {
        state.current_stage = Some(stage_ref(stage));
        entries.push(StageEntry {
            application_id: state.id.clone(),
            stage: stage_ref(stage),
            entered_at: Some(at(minute)),
        });
    };
    for i in states.len()..n.min(states.len() + 9) {
        let mut state = tracked(
            integration,
            &format!("app-{i}"),
            stage_ref("applied"),
            minute,
        );
        state.remote_created_at = Some(at(minute - 60 * 24 * i64::try_from(i % 3).unwrap()));
        enter(&mut state, "applied", minute + 1);
        states.push(state.clone());
        changed.push(state);
    }
    for (i, state) in states.iter_mut().enumerate() {
        let number = i64::try_from(i).unwrap();
        let turn = (number + round) % 7;
        let at_minute = minute + 2 + number;
        state.changed_at = at(at_minute);
        let in_frontend = state
            .job_id
            .as_ref()
            .is_some_and(|j| j.as_str() == "frontend");
        let pipeline: &[&str] = if in_frontend { &frontend } else { &backend };
        let position = state
            .current_stage
            .as_ref()
            .and_then(|s| pipeline.iter().position(|p| *p == s.stage_id.as_str()))
            .unwrap_or(0);
        match turn {
            0 | 1 => enter(
                state,
                pipeline[(position + 1).min(pipeline.len() - 1)],
                at_minute,
            ),
            2 => enter(
                state,
                pipeline[(position + 2).min(pipeline.len() - 1)],
                at_minute,
            ),
            3 => enter(state, pipeline[position.saturating_sub(1)], at_minute),
            4 => {
                state.outcome = Some(Outcome::Declined);
                state.rejection_reason_name = Some(["Salary", "Not a fit"][i % 2].into());
            }
            5 if i % 11 == 0 && !in_frontend => {
                state.job_id = Some(JobId::parse("frontend").unwrap());
                enter(state, "fe-applied", at_minute);
            }
            5 if i % 13 == 1 => state.deleted_at = Some(at(at_minute)),
            6 if i % 5 == 0 => state.outcome = Some(Outcome::Hired),
            _ => continue,
        }
        changed.push(state.clone());
    }
    (changed, entries)
}

async fn totals_follow_every_write(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let acme = registered(&store, "acme").await;
    let mut states = Vec::new();
    let mut slots_seen = BTreeSet::new();
    for number in 0..6 {
        let (applications, stage_entries) = round(&acme, number, 40, &mut states);
        let pipelines: Vec<Pipeline> = if number == 0 {
            vec![pipeline(), frontend()]
        } else {
            Vec::new()
        };
        store
            .apply_page(PageChanges {
                integration_id: acme.clone(),
                lease: None,
                applications,
                events: Vec::new(),
                stage_entries,
                held: Vec::new(),
                pipelines,
            })
            .await
            .unwrap();
        let kept = stored_totals(&store).await;
        assert!(!kept.is_empty());
        slots_seen.extend(slots(&store).await);
        store.rebuild_funnel_totals().await.unwrap();
        assert_eq!(kept, stored_totals(&store).await, "round {number}");
        compare_paths(&store, &acme).await;
    }
    // On PostgreSQL successive writes add to different slots, which the reads sum; SQLite
    // writes one at a time, into one.
    let expected: BTreeSet<i64> = match backend {
        Backend::Postgres => (0..4).collect(),
        Backend::Sqlite => [0].into(),
    };
    assert_eq!(slots_seen, expected);
    // Something of each kind happened.
    let integration = store
        .exact_funnel(&FunnelQuery {
            integration: Some(acme.clone()),
            ..FunnelQuery::default()
        })
        .await
        .unwrap();
    let counts = &integration.applications;
    assert!(
        counts.hired > 0 && counts.declined > 0 && counts.deleted > 0,
        "{counts:?}"
    );
    assert!(integration.stages.iter().any(|s| s.completed_stays > 0));
    drop(store);
    db.drop_database().await;
}

async fn a_job_with_two_stages_of_one_name_is_computed_exactly(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let acme = registered(&store, "acme").await;
    let mut twice = fixture_stage("screen-again", Some(1));
    twice.name = Some("Phone screen".into());
    let mut job = pipeline();
    job.stages.insert(2, twice);
    let application = {
        let mut state = tracked(&acme, "a1", stage_ref("applied"), 1);
        state.id = ApplicationId::parse("a1").unwrap();
        state
    };
    store
        .apply_page(PageChanges {
            integration_id: acme.clone(),
            lease: None,
            applications: vec![application],
            events: Vec::new(),
            stage_entries: Vec::new(),
            held: Vec::new(),
            pipelines: vec![job],
        })
        .await
        .unwrap();
    let by_name = FunnelQuery {
        integration: Some(acme.clone()),
        ..FunnelQuery::default()
    };
    assert!(
        store
            .funnel_from_totals(&by_name, 0)
            .await
            .unwrap()
            .is_none()
    );
    let one_job = FunnelQuery {
        job: Some(JobId::parse("backend").unwrap()),
        ..by_name.clone()
    };
    assert!(
        store
            .funnel_from_totals(&one_job, 0)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.funnel(&by_name).await.unwrap().applications.total, 1);
    drop(store);
    db.drop_database().await;
}
