//! Properties of `detect` over generated histories: idempotence, stale-snapshot invariance, id
//! determinism, no event without a change, and prefix-replay equivalence.
//!
//! Histories follow what Kombo promises: `changed_at` never goes back, and it moves whenever the
//! application's own fields (stage, outcome, job, deletion) change. Descriptive data (a renamed
//! stage, an edited candidate) may change under an unchanged `changed_at`.

use std::collections::HashSet;

use chrono::Duration;
use domain::fixtures::{at, job, pipeline, stage};
use domain::{
    ApplicationSnapshot, DetectContext, Detection, Outcome, Pipeline, StageId, TrackedApplication,
    detect,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const STAGES: [&str; 6] = [
    "applied",
    "phone_screen",
    "take_home",
    "onsite",
    "offer",
    "archived",
];

/// One generated observation of the application.
#[derive(Debug, Clone)]
struct Step {
    stage: Option<u8>,
    outcome: Option<u8>,
    other_job: bool,
    deleted: bool,
    candidate_variant: u8,
    minutes_later: u8,
}

fn step() -> impl Strategy<Value = Step> {
    (
        proptest::option::weighted(0.85, 0u8..7),
        proptest::option::weighted(0.85, 0u8..4),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.1),
        0u8..3,
        0u8..4,
    )
        .prop_map(
            |(stage, outcome, other_job, deleted, candidate_variant, minutes_later)| Step {
                stage,
                outcome,
                other_job,
                deleted,
                candidate_variant,
                minutes_later,
            },
        )
}

fn history() -> impl Strategy<Value = Vec<ApplicationSnapshot>> {
    proptest::collection::vec(step(), 1..12).prop_map(|steps| {
        let mut snapshots: Vec<ApplicationSnapshot> = Vec::new();
        for step in steps {
            let mut s = domain::fixtures::snapshot("app", "applied", 0);
            s.current_stage_id = step.stage.map(|i| match STAGES.get(usize::from(i)) {
                Some(id) => StageId::parse(*id).unwrap(),
                None => StageId::parse("not_in_pipeline").unwrap(),
            });
            s.current_stage = s
                .current_stage_id
                .as_ref()
                .map(|id| stage(id.as_str(), None));
            s.outcome = step.outcome.map(|i| match i {
                0 => Outcome::Pending,
                1 => Outcome::Hired,
                2 => Outcome::Declined,
                _ => Outcome::Unrecognized("ON_HOLD".into()),
            });
            if step.other_job {
                s.job_id = Some(job("frontend"));
            }
            s.candidate_name = Some(format!("Jane Doe {}", step.candidate_variant));
            let previous = snapshots.last();
            let own_fields_changed = previous.is_some_and(|p| own_fields(p) != own_fields(&s));
            let minutes = i64::from(step.minutes_later.max(u8::from(own_fields_changed)));
            s.changed_at = previous.map_or(at(0), |p| p.changed_at) + Duration::minutes(minutes);
            s.remote_deleted_at = step.deleted.then(|| at(0));
            // Deletion is an own field too: recompute after setting it.
            if previous
                .is_some_and(|p| own_fields(p) != own_fields(&s) && p.changed_at == s.changed_at)
            {
                s.changed_at += Duration::minutes(1);
            }
            snapshots.push(s);
        }
        snapshots
    })
}

type OwnFields = (
    Option<StageId>,
    Option<Outcome>,
    Option<domain::JobId>,
    bool,
);

fn own_fields(s: &ApplicationSnapshot) -> OwnFields {
    (
        s.current_stage_id.clone(),
        s.outcome.clone(),
        s.job_id.clone(),
        s.remote_deleted_at.is_some(),
    )
}

fn pipeline_for(s: &ApplicationSnapshot) -> Option<Pipeline> {
    let mut p = pipeline();
    p.job_id = s.job_id.clone()?;
    Some(p)
}

fn ctx() -> DetectContext {
    DetectContext::sync(at(10_000))
}

fn run(
    previous: Option<&TrackedApplication>,
    s: &ApplicationSnapshot,
    ctx: &DetectContext,
) -> Detection {
    detect(previous, s, pipeline_for(s).as_ref(), ctx)
}

/// Folds snapshots into a state, collecting every event id in order.
fn fold(
    start: Option<TrackedApplication>,
    snapshots: &[ApplicationSnapshot],
) -> (Option<TrackedApplication>, Vec<String>) {
    let mut state = start;
    let mut ids = Vec::new();
    for s in snapshots {
        let d = run(state.as_ref(), s, &ctx());
        ids.extend(d.events.iter().map(|e| e.id.to_string()));
        state = Some(d.next_state);
    }
    (state, ids)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_a_snapshot_twice_changes_nothing_the_second_time(
        history in history(), pick in any::<prop::sample::Index>()
    ) {
        let k = pick.index(history.len());
        let (state, _) = fold(None, &history[..k]);
        let first = run(state.as_ref(), &history[k], &ctx());
        let second = run(Some(&first.next_state), &history[k], &ctx());
        prop_assert!(second.events.is_empty(), "{:?}", second.events);
        prop_assert_eq!(second.next_state, first.next_state);
    }

    #[test]
    fn stale_snapshots_change_nothing(history in history(), pick in any::<prop::sample::Index>()) {
        let (state, _) = fold(None, &history);
        let state = state.unwrap();
        let mut old = history[pick.index(history.len())].clone();
        old.changed_at = state.changed_at - Duration::seconds(1);
        let d = run(Some(&state), &old, &ctx());
        prop_assert!(d.stale);
        prop_assert!(d.events.is_empty());
        prop_assert_eq!(d.next_state, state);
    }

    #[test]
    fn event_ids_are_deterministic_and_unique(
        history in history(), pick in any::<prop::sample::Index>(), later in 1i64..10_000
    ) {
        let k = pick.index(history.len());
        let (state, _) = fold(None, &history[..k]);
        let now = run(state.as_ref(), &history[k], &ctx());
        let other_time = DetectContext::sync(at(10_000 + later));
        let again = run(state.as_ref(), &history[k], &other_time);
        let ids: Vec<_> = now.events.iter().map(|e| &e.id).collect();
        let ids_again: Vec<_> = again.events.iter().map(|e| &e.id).collect();
        prop_assert_eq!(&ids, &ids_again);
        prop_assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }

    #[test]
    fn no_event_without_a_change(history in history(), pick in any::<prop::sample::Index>()) {
        let k = pick.index(history.len()).max(1);
        let (state, _) = fold(None, &history[..k]);
        let state = state.unwrap();
        let s = &history[k.min(history.len() - 1)];
        let d = run(Some(&state), s, &ctx());
        let stage_moved = s.current_stage_id.as_ref().is_some_and(|id| {
            state.current_stage.as_ref().map(|held| &held.stage_id) != Some(id)
        });
        let outcome_moved = s.outcome.as_ref().is_some_and(|o| state.outcome.as_ref() != Some(o));
        let job_moved = s.job_id.as_ref().is_some_and(|j| state.job_id.as_ref() != Some(j));
        let deletion_moved = s.remote_deleted_at.is_some() != state.is_deleted();
        if !(stage_moved || outcome_moved || job_moved || deletion_moved) {
            prop_assert!(d.events.is_empty(), "{:?}", d.events);
        }
        // The mirror of what is held, seen later with other descriptive data, is no change.
        let mut mirror = s.clone();
        mirror.current_stage_id = state.current_stage.as_ref().map(|st| st.stage_id.clone());
        mirror.current_stage = None;
        mirror.outcome.clone_from(&state.outcome);
        mirror.job_id.clone_from(&state.job_id);
        mirror.remote_deleted_at = state.deleted_at;
        mirror.changed_at = state.changed_at + Duration::minutes(5);
        mirror.candidate_name = Some("Someone Else".into());
        prop_assert!(run(Some(&state), &mirror, &ctx()).events.is_empty());
    }

    #[test]
    fn replaying_a_prefix_then_the_rest_equals_replaying_all(
        history in history(),
        split in any::<prop::sample::Index>(),
        overlap in any::<prop::sample::Index>(),
    ) {
        let k = split.index(history.len() + 1);
        let j = overlap.index(k + 1);
        let (all_state, all_ids) = fold(None, &history);
        let (prefix_state, prefix_ids) = fold(None, &history[..k]);
        // A crash after the prefix: the next pass re-reads from an earlier point (the overlap).
        let (replayed_state, rest_ids) = fold(prefix_state, &history[j..]);
        let seen: HashSet<_> = prefix_ids.iter().cloned().collect();
        let mut combined = prefix_ids.clone();
        combined.extend(rest_ids.into_iter().filter(|id| !seen.contains(id)));
        prop_assert_eq!(combined, all_ids);
        prop_assert_eq!(replayed_state, all_state);
    }
}

#[test]
fn generated_histories_exercise_every_event_kind() {
    // Guards the generator itself: properties over histories that never change anything would
    // pass vacuously.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut kinds = HashSet::new();
    for _ in 0..400 {
        let history = history().new_tree(&mut runner).unwrap().current();
        let mut state = None;
        for s in &history {
            let d = run(state.as_ref(), s, &ctx());
            kinds.extend(d.events.iter().map(domain::ChangeEvent::type_name));
            state = Some(d.next_state);
        }
    }
    for kind in domain::event::EVENT_TYPES
        .iter()
        .take(10)
        .filter(|k| **k != "application.created")
    {
        assert!(kinds.contains(kind), "no generated history produced {kind}");
    }
}
