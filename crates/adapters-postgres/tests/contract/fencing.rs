//! Fencing: a pass whose lease was claimed again since cannot write, and a stored state never
//! goes back in time.

use std::time::Duration;

use adapters_postgres::{Backend, IntegrationRecord, Store, StoreError};
use domain::event::{Deleted, FailureReport};
use domain::ports::{
    HeldChange, IntegrationUpdate, PageChanges, PassCompletion, PassFailure, TrackerStore,
};
use domain::{ChangeEvent, EventKind, StageRef, TrackedApplication};

use crate::contract;
use crate::support::{
    TestDb, assert_gap_free, at, discovered, entry, moved, registered, stage, tracked, whole_feed,
};

contract!(
    a_pass_with_a_stale_lease_writes_nothing,
    a_stored_state_never_goes_back_in_time,
    overlapping_passes_cannot_count_a_move_twice,
);

const LEASE: Duration = Duration::from_mins(1);

/// The one integration's claim by `owner` at minute `minute`.
async fn claim(store: &Store, owner: &str, minute: i64) -> IntegrationRecord {
    let mut claimed = store.claim_due(owner, 1, LEASE, at(minute)).await.unwrap();
    assert_eq!(claimed.len(), 1, "{owner} claims the integration");
    claimed.remove(0)
}

/// A page of `states` moved from `from`, written under `claimed`'s lease.
fn moves(
    claimed: &IntegrationRecord,
    from: &StageRef,
    states: &[TrackedApplication],
) -> PageChanges {
    PageChanges {
        integration_id: claimed.id.clone(),
        lease: Some(claimed.lease_epoch),
        applications: states.to_vec(),
        events: states.iter().map(|s| moved(s, from.clone())).collect(),
        stage_entries: states.iter().map(entry).collect(),
        held: Vec::new(),
        pipelines: Vec::new(),
    }
}

fn assert_lease_lost(result: Result<impl std::fmt::Debug, StoreError>, operation: &str) {
    match result {
        Err(StoreError::LeaseLost {
            operation: refused, ..
        }) => assert_eq!(refused, operation),
        other => panic!("{operation} with a stale lease must be refused, got {other:?}"),
    }
}

async fn a_pass_with_a_stale_lease_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = registered(&store, "acme").await;
    let old = claim(&store, "replica-a", 0).await;
    let start = tracked(&id, "app-1", stage("applied", 0), 1);
    store
        .apply_page(PageChanges {
            integration_id: id.clone(),
            lease: Some(old.lease_epoch),
            applications: vec![start.clone()],
            events: vec![discovered(&start)],
            stage_entries: vec![entry(&start)],
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
    let mut gone = tracked(&id, "app-1", stage("applied", 0), 2);
    gone.deleted_at = Some(at(2));
    let deletion = ChangeEvent::for_application(
        &gone,
        EventKind::Deleted(Deleted {
            remote_deleted_at: at(2),
        }),
        at(2),
        at(2),
    );
    store
        .apply_page(PageChanges {
            integration_id: id.clone(),
            lease: Some(old.lease_epoch),
            applications: Vec::new(),
            events: Vec::new(),
            stage_entries: Vec::new(),
            held: vec![HeldChange {
                application: gone,
                events: vec![deletion],
                stage_entry: None,
            }],
            pipelines: Vec::new(),
        })
        .await
        .unwrap();

    // replica-a froze past its lease; replica-b claimed the integration.
    let new = claim(&store, "replica-b", 2).await;
    assert!(new.lease_epoch > old.lease_epoch);
    let head = store.feed_head().await.unwrap();
    let before = store.integration(&id).await.unwrap().unwrap();

    let later = tracked(&id, "app-1", stage("onsite", 3), 5);
    assert_lease_lost(
        store
            .apply_page(moves(
                &old,
                &stage("applied", 0),
                std::slice::from_ref(&later),
            ))
            .await,
        "apply_page",
    );
    assert_lease_lost(
        store
            .complete_pass(PassCompletion {
                integration_id: id.clone(),
                lease: old.lease_epoch,
                watermark: Some(at(4)),
                full: true,
                started_at: at(3),
                finished_at: at(4),
                capabilities: None,
                deletions_held: false,
                events: Vec::new(),
            })
            .await,
        "complete_pass",
    );
    assert_lease_lost(
        store.release_held(&id, Some(old.lease_epoch)).await,
        "release_held",
    );
    assert_lease_lost(
        store
            .update_integration(IntegrationUpdate {
                integration_id: id.clone(),
                lease: old.lease_epoch,
                capabilities: None,
                status: Some(domain::IntegrationStatus::Invalid),
                events: Vec::new(),
            })
            .await,
        "update_integration",
    );
    assert_lease_lost(
        store
            .record_failure(PassFailure {
                integration_id: id.clone(),
                lease: old.lease_epoch,
                at: at(4),
                error: FailureReport {
                    kind: "transient".into(),
                    message: "timeout".into(),
                },
                failing_since: Some(at(4)),
                events: Vec::new(),
            })
            .await,
        "record_failure",
    );

    // Nothing of it was written.
    assert_eq!(store.feed_head().await.unwrap(), head);
    assert_eq!(store.integration(&id).await.unwrap().unwrap(), before);
    assert_eq!(
        store
            .load_applications(&id, std::slice::from_ref(&start.id))
            .await
            .unwrap(),
        vec![start.clone()]
    );
    assert_eq!(store.hold_stats(&id).await.unwrap().held, 1);

    // The new lease writes.
    store
        .apply_page(moves(
            &new,
            &stage("applied", 0),
            std::slice::from_ref(&later),
        ))
        .await
        .unwrap();
    assert_eq!(
        store
            .load_applications(&id, std::slice::from_ref(&start.id))
            .await
            .unwrap(),
        vec![later]
    );
}

async fn a_stored_state_never_goes_back_in_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = registered(&store, "acme").await;
    let newer = tracked(&id, "app-1", stage("onsite", 3), 10);
    let older = tracked(&id, "app-1", stage("phone_screen", 1), 5);
    for state in [&newer, &older] {
        store
            .apply_page(PageChanges {
                integration_id: id.clone(),
                lease: None,
                applications: vec![state.clone()],
                events: Vec::new(),
                stage_entries: Vec::new(),
                held: Vec::new(),
                pipelines: Vec::new(),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .load_applications(&id, std::slice::from_ref(&newer.id))
            .await
            .unwrap(),
        vec![newer.clone()],
        "the older snapshot must not overwrite the newer state"
    );
    // An equal `changed_at` still writes: Kombo changes nested values without touching it.
    let mut renamed = newer.clone();
    renamed.candidate_name = Some("Jane Roe".into());
    renamed.last_seen_at = at(11);
    store
        .apply_page(PageChanges {
            integration_id: id.clone(),
            lease: None,
            applications: vec![renamed.clone()],
            events: Vec::new(),
            stage_entries: Vec::new(),
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .load_applications(&id, std::slice::from_ref(&newer.id))
            .await
            .unwrap(),
        vec![renamed]
    );
}

/// Pass A reads stage B, freezes past its lease; pass B claims the integration, reads stage C
/// and stores `A→C`; pass A wakes and tries to store `A→B`. The feed must say `A→C` once, and
/// never `A→B` then `B→C`.
async fn overlapping_passes_cannot_count_a_move_twice(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = registered(&store, "acme").await;
    let (a, b, c) = (
        stage("applied", 0),
        stage("phone_screen", 1),
        stage("onsite", 3),
    );
    let first = claim(&store, "replica-a", 0).await;
    let s0 = tracked(&id, "app-1", a.clone(), 1);
    store
        .apply_page(PageChanges {
            integration_id: id.clone(),
            lease: Some(first.lease_epoch),
            applications: vec![s0.clone()],
            events: vec![discovered(&s0)],
            stage_entries: vec![entry(&s0)],
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await
        .unwrap();

    // Both passes loaded S0 (stage A). Pass A fetched the older snapshot S1 (stage B)…
    let s1 = tracked(&id, "app-1", b, 5);
    // …then froze; its lease ran out and replica-b claimed the integration, fetched S2 (C).
    let second = claim(&store, "replica-b", 2).await;
    let s2 = tracked(&id, "app-1", c, 8);
    store
        .apply_page(moves(&second, &a, std::slice::from_ref(&s2)))
        .await
        .unwrap();
    // Pass A wakes up and writes what it detected against S0.
    assert_lease_lost(
        store.apply_page(moves(&first, &a, &[s1])).await,
        "apply_page",
    );
    // The next pass sees C, as stored: nothing to add.
    assert_eq!(
        store
            .load_applications(&id, std::slice::from_ref(&s0.id))
            .await
            .unwrap(),
        vec![s2.clone()]
    );

    let feed = whole_feed(&store, 100).await;
    assert_gap_free(&feed);
    let moves: Vec<(String, String)> = feed
        .iter()
        .filter_map(|e| match &e.event.kind {
            EventKind::StageChanged(change) => Some((
                change.from.as_ref().unwrap().stage_id.to_string(),
                change.to.stage_id.to_string(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(moves, [("applied".to_owned(), "onsite".to_owned())]);
}
