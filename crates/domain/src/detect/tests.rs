//! One test (or a few) per row of the rule table in `docs/change-detection.md`.

use super::*;
use crate::application::Origin;
use crate::event::{Direction, EventKind};
use crate::fixtures::{at, job, pipeline, snapshot, stage, stage_id};
use crate::outcome::Outcome;

fn ctx(minute: i64) -> DetectContext {
    DetectContext::sync(at(minute))
}

/// The state after the sync first saw `snapshot`.
fn held(snapshot: &ApplicationSnapshot) -> TrackedApplication {
    detect(None, snapshot, Some(&pipeline()), &ctx(0)).next_state
}

fn types(detection: &Detection) -> Vec<&'static str> {
    detection
        .events
        .iter()
        .map(ChangeEvent::type_name)
        .collect()
}

fn stage_change(detection: &Detection) -> &StageChange {
    detection
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StageChanged(change) => Some(change),
            _ => None,
        })
        .expect("a stage_changed event")
}

// Rule 1 ---------------------------------------------------------------------------------------

#[test]
fn rule1_unknown_application_is_discovered_without_transitions() {
    let s = snapshot("a1", "phone_screen", 5);
    let d = detect(None, &s, Some(&pipeline()), &ctx(6));
    assert_eq!(types(&d), ["application.discovered"]);
    let EventKind::ApplicationDiscovered(baseline) = &d.events[0].kind else {
        unreachable!()
    };
    assert_eq!(baseline.stage.as_ref().unwrap().index, Some(1));
    assert_eq!(baseline.outcome, Some(Outcome::Pending));
    assert_eq!(d.next_state.origin, Origin::Discovered);
    assert_eq!(d.next_state.first_seen_at, at(6));
    // When a discovered application entered its stage is not known.
    assert_eq!(d.next_state.entered_current_stage_at, None);
    assert_eq!(d.stage_entry.as_ref().unwrap().entered_at, None);
    assert_eq!(d.events[0].occurred_at, at(5));
    assert_eq!(d.events[0].detected_at, at(6));
}

#[test]
fn rule1_application_created_here_is_created_and_entered_its_stage_now() {
    let s = snapshot("a1", "applied", 5);
    let context = DetectContext {
        detected_at: at(5),
        origin_for_new: Origin::CreatedHere,
    };
    let d = detect(None, &s, Some(&pipeline()), &context);
    assert_eq!(types(&d), ["application.created"]);
    assert_eq!(d.next_state.origin, Origin::CreatedHere);
    assert_eq!(d.next_state.entered_current_stage_at, Some(at(5)));
}

#[test]
fn rule1_deleted_on_first_sight_is_a_deleted_baseline_not_a_deletion() {
    let mut s = snapshot("a1", "applied", 5);
    s.remote_deleted_at = Some(at(4));
    let d = detect(None, &s, Some(&pipeline()), &ctx(6));
    assert_eq!(types(&d), ["application.discovered"]);
    assert!(d.next_state.is_deleted());
}

// Rule 2 ---------------------------------------------------------------------------------------

#[test]
fn rule2_older_snapshot_is_stale_and_ignored() {
    let state = held(&snapshot("a1", "onsite", 10));
    let old = snapshot("a1", "phone_screen", 9);
    let d = detect(Some(&state), &old, Some(&pipeline()), &ctx(11));
    assert!(d.stale);
    assert!(d.events.is_empty());
    assert_eq!(d.next_state, state);
}

#[test]
fn rule2_equal_changed_at_is_still_compared() {
    let state = held(&snapshot("a1", "phone_screen", 10));
    let same_time = snapshot("a1", "onsite", 10);
    let d = detect(Some(&state), &same_time, Some(&pipeline()), &ctx(11));
    assert!(!d.stale);
    assert_eq!(types(&d), ["application.stage_changed"]);
}

// Rule 3 ---------------------------------------------------------------------------------------

#[test]
fn rule3_same_snapshot_twice_gives_no_events() {
    let s = snapshot("a1", "onsite", 10);
    let first = detect(
        Some(&held(&snapshot("a1", "applied", 1))),
        &s,
        Some(&pipeline()),
        &ctx(11),
    );
    assert_eq!(first.events.len(), 1);
    let again = detect(Some(&first.next_state), &s, Some(&pipeline()), &ctx(11));
    assert!(again.events.is_empty());
    assert_eq!(again.next_state, first.next_state);
}

#[test]
fn rule3_event_ids_do_not_depend_on_detection_time() {
    let state = held(&snapshot("a1", "applied", 1));
    let s = snapshot("a1", "onsite", 10);
    let early = detect(Some(&state), &s, Some(&pipeline()), &ctx(11));
    let late = detect(Some(&state), &s, Some(&pipeline()), &ctx(99));
    assert_eq!(early.events[0].id, late.events[0].id);
    let other = detect(
        Some(&state),
        &snapshot("a1", "offer", 10),
        Some(&pipeline()),
        &ctx(11),
    );
    assert_ne!(early.events[0].id, other.events[0].id);
}

// Rule 4 ---------------------------------------------------------------------------------------

#[test]
fn rule4_forward_move_names_stages_skipped_and_time_spent() {
    let mut state = held(&snapshot("a1", "phone_screen", 0));
    state.entered_current_stage_at = Some(at(0));
    let d = detect(
        Some(&state),
        &snapshot("a1", "onsite", 90),
        Some(&pipeline()),
        &ctx(91),
    );
    assert_eq!(types(&d), ["application.stage_changed"]);
    let change = stage_change(&d);
    assert_eq!(
        change.from.as_ref().unwrap().name.as_deref(),
        Some("Phone screen")
    );
    assert_eq!(change.to.name.as_deref(), Some("Onsite"));
    assert_eq!(
        (change.from.as_ref().unwrap().index, change.to.index),
        (Some(1), Some(3))
    );
    assert_eq!(change.direction, Direction::Forward);
    let skipped: Vec<_> = change.skipped.iter().map(|s| s.stage_id.as_str()).collect();
    assert_eq!(skipped, ["take_home"]);
    assert_eq!(change.time_in_previous_stage_seconds, Some(90 * 60));
    assert_eq!(d.next_state.entered_current_stage_at, Some(at(90)));
    assert_eq!(
        d.stage_entry.as_ref().unwrap().stage.stage_id,
        stage_id("onsite")
    );
}

#[test]
fn rule4_backward_move_skips_nothing() {
    let state = held(&snapshot("a1", "onsite", 0));
    let d = detect(
        Some(&state),
        &snapshot("a1", "applied", 5),
        Some(&pipeline()),
        &ctx(6),
    );
    let change = stage_change(&d);
    assert_eq!(change.direction, Direction::Backward);
    assert!(change.skipped.is_empty());
    // Discovered in `onsite`: when it got there is unknown, so is the time spent.
    assert_eq!(change.time_in_previous_stage_seconds, None);
}

#[test]
fn rule4_adjacent_forward_move_skips_nothing_and_inactive_stages_are_not_skipped() {
    let state = held(&snapshot("a1", "applied", 0));
    let d = detect(
        Some(&state),
        &snapshot("a1", "phone_screen", 5),
        Some(&pipeline()),
        &ctx(6),
    );
    assert!(stage_change(&d).skipped.is_empty());

    let mut long = pipeline();
    long.stages.push(stage("hired", Some(6)));
    let state = detect(None, &snapshot("a1", "offer", 0), Some(&long), &ctx(0)).next_state;
    let mut s = snapshot("a1", "offer", 5);
    s.current_stage_id = Some(stage_id("hired"));
    s.current_stage = long.stage(&stage_id("hired")).cloned();
    let d = detect(Some(&state), &s, Some(&long), &ctx(6));
    // `archived` (5) lies between offer (4) and hired (6) but is inactive.
    assert!(stage_change(&d).skipped.is_empty());
    assert_eq!(stage_change(&d).direction, Direction::Forward);
}

#[test]
fn rule4_stage_missing_from_pipeline_asks_for_refresh_and_has_no_index() {
    let state = held(&snapshot("a1", "applied", 0));
    let mut s = snapshot("a1", "applied", 5);
    s.current_stage_id = Some(stage_id("brand_new"));
    s.current_stage = Some(stage("brand_new", Some(7)));
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert_eq!(d.signals.refresh_pipeline, Some(job("backend")));
    let change = stage_change(&d);
    assert_eq!(change.to.name.as_deref(), Some("Brand new"));
    assert_eq!(change.to.index, None);
    assert_eq!(change.direction, Direction::Unknown);
}

#[test]
fn rule4_equal_indices_give_unknown_direction() {
    let mut flat = pipeline();
    for stage in &mut flat.stages {
        stage.index = None;
    }
    let state = detect(None, &snapshot("a1", "applied", 0), Some(&flat), &ctx(0)).next_state;
    let mut s = snapshot("a1", "onsite", 5);
    s.current_stage = flat.stage(&stage_id("onsite")).cloned();
    let d = detect(Some(&state), &s, Some(&flat), &ctx(6));
    assert_eq!(stage_change(&d).direction, Direction::Unknown);
    assert!(stage_change(&d).skipped.is_empty());
}

#[test]
fn rule4_first_known_stage_is_a_change_from_nothing() {
    let mut s = snapshot("a1", "applied", 0);
    s.current_stage_id = None;
    s.current_stage = None;
    let state = held(&s);
    let d = detect(
        Some(&state),
        &snapshot("a1", "onsite", 5),
        Some(&pipeline()),
        &ctx(6),
    );
    let change = stage_change(&d);
    assert_eq!(change.from, None);
    assert_eq!(change.direction, Direction::Unknown);
}

// Rule 5 ---------------------------------------------------------------------------------------

#[test]
fn rule5_stage_going_null_is_unknown_not_a_change() {
    let state = held(&snapshot("a1", "onsite", 0));
    let mut s = snapshot("a1", "onsite", 5);
    s.current_stage_id = None;
    s.current_stage = None;
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert!(d.events.is_empty());
    assert!(d.signals.stage_went_unknown);
    assert_eq!(d.next_state.stage_unknown_since, Some(at(6)));
    assert_eq!(
        d.next_state.current_stage, state.current_stage,
        "last known stage kept"
    );

    // Still unknown: flagged once, not again.
    let again = detect(Some(&d.next_state), &s, Some(&pipeline()), &ctx(7));
    assert!(!again.signals.stage_went_unknown);
    assert_eq!(again.next_state.stage_unknown_since, Some(at(6)));

    // Back with the same stage: no event; with another: a change from the last known one.
    let back = detect(
        Some(&d.next_state),
        &snapshot("a1", "onsite", 8),
        Some(&pipeline()),
        &ctx(9),
    );
    assert!(back.events.is_empty());
    assert_eq!(back.next_state.stage_unknown_since, None);
    let moved = detect(
        Some(&d.next_state),
        &snapshot("a1", "offer", 8),
        Some(&pipeline()),
        &ctx(9),
    );
    assert_eq!(
        stage_change(&moved).from.as_ref().unwrap().stage_id,
        stage_id("onsite")
    );
}

#[test]
fn rule5_outcome_going_null_is_unknown_not_a_change() {
    let mut decided = snapshot("a1", "onsite", 0);
    decided.outcome = Some(Outcome::Declined);
    let state = held(&decided);
    let mut s = snapshot("a1", "onsite", 5);
    s.outcome = None;
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert!(d.events.is_empty());
    assert!(d.signals.outcome_went_unknown);
    assert_eq!(d.next_state.outcome, Some(Outcome::Declined));
    assert_eq!(d.next_state.outcome_unknown_since, Some(at(6)));

    // Comes back pending: reopened, from the last known outcome.
    let back = detect(
        Some(&d.next_state),
        &snapshot("a1", "onsite", 8),
        Some(&pipeline()),
        &ctx(9),
    );
    assert_eq!(
        types(&back),
        ["application.outcome_changed", "application.reopened"]
    );
}

// Rule 6 ---------------------------------------------------------------------------------------

#[test]
fn rule6_hired_gives_outcome_changed_and_hired() {
    let state = held(&snapshot("a1", "offer", 0));
    let mut s = snapshot("a1", "offer", 5);
    s.outcome = Some(Outcome::Hired);
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert_eq!(
        types(&d),
        ["application.outcome_changed", "application.hired"]
    );
    let EventKind::Hired(hired) = &d.events[1].kind else {
        unreachable!()
    };
    assert_eq!(hired.previous_outcome, Some(Outcome::Pending));
    assert_eq!(hired.stage.as_ref().unwrap().stage_id, stage_id("offer"));
    assert_eq!(
        d.events[1].application.as_ref().unwrap().outcome,
        Some(Outcome::Hired)
    );
}

#[test]
fn rule6_declined_carries_the_rejection_reason() {
    let state = held(&snapshot("a1", "phone_screen", 0));
    let mut s = snapshot("a1", "phone_screen", 5);
    s.outcome = Some(Outcome::Declined);
    s.rejection_reason_name = Some("Withdrew".into());
    s.rejected_at = Some(at(4));
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert_eq!(
        types(&d),
        ["application.outcome_changed", "application.declined"]
    );
    let EventKind::Declined(declined) = &d.events[1].kind else {
        unreachable!()
    };
    assert_eq!(declined.rejection_reason.as_deref(), Some("Withdrew"));
    assert_eq!(declined.rejected_at, Some(at(4)));
}

#[test]
fn rule6_decided_back_to_pending_is_reopened() {
    let mut hired = snapshot("a1", "offer", 0);
    hired.outcome = Some(Outcome::Hired);
    let d = detect(
        Some(&held(&hired)),
        &snapshot("a1", "offer", 5),
        Some(&pipeline()),
        &ctx(6),
    );
    assert_eq!(
        types(&d),
        ["application.outcome_changed", "application.reopened"]
    );
}

#[test]
fn rule6_unrecognized_outcome_is_a_plain_outcome_change() {
    let state = held(&snapshot("a1", "offer", 0));
    let mut s = snapshot("a1", "offer", 5);
    s.outcome = Some(Outcome::Unrecognized("ON_HOLD".into()));
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert_eq!(types(&d), ["application.outcome_changed"]);
}

#[test]
fn rule6_first_known_outcome_is_a_change_from_nothing() {
    let mut unknown = snapshot("a1", "offer", 0);
    unknown.outcome = None;
    let mut s = snapshot("a1", "offer", 5);
    s.outcome = Some(Outcome::Hired);
    let d = detect(Some(&held(&unknown)), &s, Some(&pipeline()), &ctx(6));
    assert_eq!(
        types(&d),
        ["application.outcome_changed", "application.hired"]
    );
    let EventKind::OutcomeChanged(change) = &d.events[0].kind else {
        unreachable!()
    };
    assert_eq!(change.from, None);
}

// Rule 7 ---------------------------------------------------------------------------------------

#[test]
fn rule7_deletion_and_restore() {
    let state = held(&snapshot("a1", "onsite", 0));
    let mut gone = snapshot("a1", "onsite", 5);
    gone.remote_deleted_at = Some(at(4));
    let d = detect(Some(&state), &gone, Some(&pipeline()), &ctx(6));
    assert_eq!(types(&d), ["application.deleted"]);
    assert!(d.deletes());
    assert_eq!(d.next_state.deleted_at, Some(at(4)));

    let back = detect(
        Some(&d.next_state),
        &snapshot("a1", "onsite", 9),
        Some(&pipeline()),
        &ctx(10),
    );
    assert_eq!(types(&back), ["application.restored"]);
    assert!(!back.deletes());
    assert!(!back.next_state.is_deleted());
}

#[test]
fn rule7_anonymized_deletion_does_not_flag_unknown_fields() {
    let state = held(&snapshot("a1", "onsite", 0));
    let mut gone = snapshot("a1", "onsite", 5);
    gone.remote_deleted_at = Some(at(4));
    gone.current_stage_id = None;
    gone.current_stage = None;
    gone.outcome = None;
    let d = detect(Some(&state), &gone, Some(&pipeline()), &ctx(6));
    assert_eq!(types(&d), ["application.deleted"]);
    assert_eq!(d.signals, Signals::default());
}

// Rule 8 ---------------------------------------------------------------------------------------

#[test]
fn rule8_several_changes_come_in_a_fixed_order() {
    let mut state = held(&snapshot("a1", "phone_screen", 0));
    state.deleted_at = Some(at(1));
    let mut s = snapshot("a1", "offer", 5);
    s.job_id = Some(job("frontend"));
    s.job_name = Some("Frontend Engineer".into());
    s.outcome = Some(Outcome::Declined);
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert_eq!(
        types(&d),
        [
            "application.restored",
            "application.job_changed",
            "application.stage_changed",
            "application.outcome_changed",
            "application.declined"
        ]
    );
    // Every event shows the application as it stands after the whole snapshot.
    for event in &d.events {
        let app = event.application.as_ref().unwrap();
        assert_eq!(app.outcome, Some(Outcome::Declined));
        assert_eq!(app.job_id, Some(job("frontend")));
        assert_eq!(
            event.job.as_ref().unwrap().name.as_deref(),
            Some("Frontend Engineer")
        );
    }
    // Across jobs, the direction is not comparable.
    assert_eq!(stage_change(&d).direction, Direction::Unknown);
    let ids: std::collections::HashSet<_> = d.events.iter().map(|e| &e.id).collect();
    assert_eq!(ids.len(), d.events.len());
}

#[test]
fn rule8_change_then_deletion_puts_deletion_last() {
    let state = held(&snapshot("a1", "phone_screen", 0));
    let mut s = snapshot("a1", "onsite", 5);
    s.remote_deleted_at = Some(at(5));
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert_eq!(
        types(&d),
        ["application.stage_changed", "application.deleted"]
    );
}

// Rule 9 ---------------------------------------------------------------------------------------

#[test]
fn rule9_renamed_stage_updates_names_without_an_event() {
    let state = held(&snapshot("a1", "onsite", 0));
    let mut s = snapshot("a1", "onsite", 0);
    let mut renamed = stage("onsite", Some(6));
    renamed.name = Some("Final interview".into());
    s.current_stage = Some(renamed.clone());
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert!(d.events.is_empty());
    assert_eq!(d.signals.stage_update, Some((job("backend"), renamed)));
    let current = d.next_state.current_stage.unwrap();
    assert_eq!(current.name.as_deref(), Some("Final interview"));
    assert_eq!(current.index, Some(6));
    assert!(d.stage_entry.is_none());
}

#[test]
fn rule9_unchanged_expansion_asks_for_nothing() {
    let state = held(&snapshot("a1", "onsite", 0));
    let d = detect(
        Some(&state),
        &snapshot("a1", "onsite", 0),
        Some(&pipeline()),
        &ctx(6),
    );
    assert_eq!(d.signals, Signals::default());
}

// Rule 10 --------------------------------------------------------------------------------------

#[test]
fn rule10_field_changes_on_a_deleted_application_are_not_transitions() {
    let mut gone = snapshot("a1", "onsite", 0);
    gone.remote_deleted_at = Some(at(0));
    let state = held(&gone);
    // Fourteen days on, Kombo nulls every field.
    let mut nulled = snapshot("a1", "applied", 14 * 24 * 60);
    nulled.remote_deleted_at = Some(at(0));
    nulled.current_stage_id = None;
    nulled.outcome = Some(Outcome::Declined);
    nulled.job_id = None;
    let d = detect(
        Some(&state),
        &nulled,
        Some(&pipeline()),
        &ctx(14 * 24 * 60 + 1),
    );
    assert!(d.events.is_empty());
    assert_eq!(d.signals, Signals::default());
    assert_eq!(d.next_state.current_stage, state.current_stage);
    assert_eq!(d.next_state.outcome, Some(Outcome::Pending));
}

// Around the rules -----------------------------------------------------------------------------

#[test]
fn descriptive_changes_alone_give_no_events() {
    let state = held(&snapshot("a1", "onsite", 0));
    let mut s = snapshot("a1", "onsite", 3);
    s.candidate_name = Some("Jane Smith".into());
    let d = detect(Some(&state), &s, Some(&pipeline()), &ctx(6));
    assert!(d.events.is_empty());
    assert_eq!(d.next_state.candidate_name.as_deref(), Some("Jane Smith"));
    assert_eq!(d.next_state.changed_at, at(3));
}

#[test]
fn job_change_keeps_the_previous_job_name() {
    let state = held(&snapshot("a1", "onsite", 0));
    let mut s = snapshot("a1", "onsite", 5);
    s.job_id = Some(job("frontend"));
    s.job_name = Some("Frontend Engineer".into());
    let d = detect(Some(&state), &s, None, &ctx(6));
    assert_eq!(types(&d), ["application.job_changed"]);
    let EventKind::JobChanged(change) = &d.events[0].kind else {
        unreachable!()
    };
    assert_eq!(
        change.from.as_ref().unwrap().name.as_deref(),
        Some("Backend Engineer")
    );
    assert_eq!(change.to.name.as_deref(), Some("Frontend Engineer"));
}

#[test]
fn a_previous_stage_removed_from_a_reindexed_pipeline_gives_no_direction() {
    // Phone screen is removed and the pipeline re-indexed: applied 0, take-home 1, onsite 2.
    let state = held(&snapshot("a1", "phone_screen", 0));
    let mut reindexed = pipeline();
    reindexed.stages.retain(|s| s.id.as_str() != "phone_screen");
    for (index, stage) in reindexed.stages.iter_mut().enumerate() {
        stage.index = Some(i32::try_from(index).unwrap());
    }
    let mut s = snapshot("a1", "onsite", 5);
    s.current_stage = reindexed.stage(&stage_id("onsite")).cloned();
    let d = detect(Some(&state), &s, Some(&reindexed), &ctx(6));
    let change = stage_change(&d);
    assert_eq!(
        change.from.as_ref().unwrap().stage_id.as_str(),
        "phone_screen"
    );
    assert_eq!(change.to.index, Some(2));
    // Phone screen's index 1 is from the old numbering: "forward, nothing skipped" would be
    // wrong (take-home was jumped over), so nothing is claimed.
    assert_eq!(change.direction, Direction::Unknown);
    assert!(change.skipped.is_empty());
}

#[test]
fn a_stage_after_a_job_change_with_no_stage_gives_no_direction() {
    // Job-specific stage ids: the frontend job has its own pipeline.
    let frontend = Pipeline {
        job_id: job("frontend"),
        job_remote_id: None,
        job_name: Some("Frontend Engineer".into()),
        stages: vec![
            crate::fixtures::stage("fe_applied", Some(0)),
            crate::fixtures::stage("fe_screen", Some(1)),
            crate::fixtures::stage("fe_panel", Some(2)),
            crate::fixtures::stage("fe_offer", Some(3)),
            crate::fixtures::stage("fe_final", Some(4)),
        ],
    };
    let state = held(&snapshot("a1", "phone_screen", 0));
    let mut moved_job = snapshot("a1", "phone_screen", 5);
    moved_job.job_id = Some(job("frontend"));
    moved_job.job_name = Some("Frontend Engineer".into());
    moved_job.current_stage_id = None;
    moved_job.current_stage = None;
    let d = detect(Some(&state), &moved_job, Some(&frontend), &ctx(6));
    assert_eq!(types(&d), ["application.job_changed"]);

    // The new job's stage appears later: the previous stage (index 1 of the backend job) is
    // not a stage of this pipeline, so its index says nothing about this one's.
    let mut staged = moved_job.clone();
    staged.changed_at = at(10);
    staged.current_stage_id = Some(stage_id("fe_final"));
    staged.current_stage = frontend.stage(&stage_id("fe_final")).cloned();
    let d = detect(Some(&d.next_state), &staged, Some(&frontend), &ctx(11));
    let change = stage_change(&d);
    assert_eq!(
        change.from.as_ref().unwrap().stage_id.as_str(),
        "phone_screen"
    );
    assert_eq!(change.direction, Direction::Unknown);
    assert!(
        change.skipped.is_empty(),
        "fe_panel and fe_offer were never between anything: {:?}",
        change.skipped
    );
}
