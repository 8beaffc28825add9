use std::collections::HashSet;
use std::time::Duration;

use adapters_postgres::{Backend, Claim, NewIntegration, Store};
use chrono::Duration as Minutes;

use crate::contract;
use crate::support::{TestDb, at, integration};

contract!(
    two_concurrent_claimers_never_share_an_integration,
    an_expired_lease_can_be_claimed_by_another_owner,
    every_claim_increases_the_fencing_token,
    a_sync_on_demand_claims_the_lease_or_names_its_holder,
    a_release_keeps_a_sync_requested_during_the_pass,
    a_requested_sync_is_claimed_before_overdue_integrations,
);

const LEASE: Duration = Duration::from_mins(1);

async fn register(store: &Store, count: usize) {
    for n in 0..count {
        store
            .register_integration(
                &NewIntegration {
                    id: integration(&format!("i{n}")),
                    tool: None,
                    label: None,
                    poll_interval: None,
                },
                at(0),
            )
            .await
            .unwrap();
    }
}

async fn two_concurrent_claimers_never_share_an_integration(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, b) = (db.store().await, db.store().await);
    register(&a, 8).await;
    for round in 0..5 {
        let now = at(round * 10);
        let (claimed_a, claimed_b) = tokio::join!(
            a.claim_due("replica-a", 5, LEASE, now),
            b.claim_due("replica-b", 5, LEASE, now),
        );
        let (claimed_a, claimed_b) = (claimed_a.unwrap(), claimed_b.unwrap());
        let ids_a: HashSet<_> = claimed_a.iter().map(|r| r.id.clone()).collect();
        let ids_b: HashSet<_> = claimed_b.iter().map(|r| r.id.clone()).collect();
        assert!(
            ids_a.is_disjoint(&ids_b),
            "round {round}: {ids_a:?} and {ids_b:?} overlap"
        );
        assert_eq!(
            ids_a.len() + ids_b.len(),
            8,
            "round {round}: every due integration is claimed once"
        );
        assert!(
            claimed_a
                .iter()
                .all(|r| r.lease_owner.as_deref() == Some("replica-a"))
        );
        assert!(
            claimed_b
                .iter()
                .all(|r| r.lease_expires_at == Some(now + Minutes::minutes(1)))
        );
        for (store, owner, records) in
            [(&a, "replica-a", &claimed_a), (&b, "replica-b", &claimed_b)]
        {
            for record in records {
                assert_eq!(record.lease_owner.as_deref(), Some(owner));
                store.release_lease(record, now, None).await.unwrap();
            }
        }
    }
}

async fn an_expired_lease_can_be_claimed_by_another_owner(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    register(&store, 1).await;
    let id = integration("i0");

    let claimed_a = store.claim_due("a", 10, LEASE, at(0)).await.unwrap();
    assert_eq!(claimed_a.len(), 1);
    let claimed_a = &claimed_a[0];
    assert!(
        store
            .claim_due("b", 10, LEASE, at(0))
            .await
            .unwrap()
            .is_empty(),
        "held lease"
    );
    assert!(
        store
            .renew_lease(claimed_a, LEASE, at(0) + Minutes::seconds(50))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_due("b", 10, LEASE, at(1))
            .await
            .unwrap()
            .is_empty(),
        "renewed lease"
    );

    // `a` crashed: its lease (renewed until 01:50) runs out.
    let taken = store.claim_due("b", 10, LEASE, at(2)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].lease_owner.as_deref(), Some("b"));
    assert!(
        !store.renew_lease(claimed_a, LEASE, at(2)).await.unwrap(),
        "a lost its lease"
    );
    store.release_lease(claimed_a, at(100), None).await.unwrap();
    assert_eq!(
        store
            .integration(&id)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .as_deref(),
        Some("b"),
        "a stale release is ignored"
    );

    store
        .release_lease(&taken[0], at(30), Some(at(2)))
        .await
        .unwrap();
    let record = store.integration(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            record.lease_owner,
            record.next_sync_at,
            record.last_full_pass_at
        ),
        (None, at(30), Some(at(2)))
    );
    assert!(
        store
            .claim_due("c", 10, LEASE, at(29))
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );

    assert!(store.set_paused(&id, true).await.unwrap());
    assert!(
        store
            .claim_due("c", 10, LEASE, at(31))
            .await
            .unwrap()
            .is_empty(),
        "paused"
    );
    assert!(store.set_paused(&id, false).await.unwrap());
    assert!(store.make_due(&id, at(20)).await.unwrap());
    assert_eq!(
        store.claim_due("c", 10, LEASE, at(20)).await.unwrap().len(),
        1
    );
    assert!(
        !store
            .make_due(&integration("unknown"), at(20))
            .await
            .unwrap()
    );
}

async fn every_claim_increases_the_fencing_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    register(&store, 1).await;
    let id = integration("i0");
    let registered = store.integration(&id).await.unwrap().unwrap().lease_epoch;
    let first = store.claim_due("a", 1, LEASE, at(0)).await.unwrap();
    assert_eq!(first[0].lease_epoch.0, registered.0 + 1);
    // Renewing keeps the epoch; only a new claim moves it.
    assert!(store.renew_lease(&first[0], LEASE, at(0)).await.unwrap());
    let second = store.claim_due("b", 1, LEASE, at(2)).await.unwrap();
    assert_eq!(second[0].lease_epoch.0, registered.0 + 2);
    let Claim::Claimed(third) = store
        .claim_integration(&id, "cli", LEASE, at(4))
        .await
        .unwrap()
    else {
        panic!("the expired lease is free")
    };
    assert_eq!(third.lease_epoch.0, registered.0 + 3);
    assert!(
        !store.renew_lease(&second[0], LEASE, at(4)).await.unwrap(),
        "b's lease was claimed again"
    );
}

async fn a_sync_on_demand_claims_the_lease_or_names_its_holder(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    register(&store, 1).await;
    let id = integration("i0");
    // Not due (scheduled an hour ahead), yet claimed on demand.
    let due = store.claim_due("worker", 1, LEASE, at(0)).await.unwrap();
    store.release_lease(&due[0], at(60), None).await.unwrap();
    let Claim::Claimed(claimed) = store
        .claim_integration(&id, "cli-1", LEASE, at(1))
        .await
        .unwrap()
    else {
        panic!("a free lease is claimed even when the integration is not due")
    };
    assert_eq!(claimed.lease_owner.as_deref(), Some("cli-1"));
    assert_eq!(
        store
            .claim_integration(&id, "cli-2", LEASE, at(1) + Minutes::seconds(30))
            .await
            .unwrap(),
        Claim::HeldBy {
            owner: "cli-1".to_owned(),
            expires_at: at(2),
        }
    );
    assert!(store.make_due(&id, at(1)).await.unwrap());
    assert!(
        store
            .claim_due("worker", 1, LEASE, at(1) + Minutes::seconds(30))
            .await
            .unwrap()
            .is_empty(),
        "the workers wait for the lease too"
    );
    assert_eq!(
        store
            .claim_integration(&integration("unknown"), "cli", LEASE, at(1))
            .await
            .unwrap(),
        Claim::Unknown
    );
    // The release leaves the schedule as it was, or earlier when made due during the pass.
    store
        .release_lease(&claimed, claimed.next_sync_at, None)
        .await
        .unwrap();
    let record = store.integration(&id).await.unwrap().unwrap();
    assert_eq!(
        (record.lease_owner, record.next_sync_at),
        (None, at(1)),
        "made due meanwhile: stays due"
    );
}

async fn a_release_keeps_a_sync_requested_during_the_pass(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    register(&store, 2).await;
    let claimed = store.claim_due("a", 2, LEASE, at(0)).await.unwrap();
    let (requested, quiet) = (&claimed[0], &claimed[1]);
    // A `data-changed` webhook makes i0 due while its pass runs, just before the release.
    assert!(store.make_due(&requested.id, at(1)).await.unwrap());
    store.release_lease(requested, at(30), None).await.unwrap();
    store.release_lease(quiet, at(30), None).await.unwrap();
    let next = |id| {
        let store = store.clone();
        async move { store.integration(&id).await.unwrap().unwrap().next_sync_at }
    };
    assert_eq!(
        next(requested.id.clone()).await,
        at(1),
        "the request is not overwritten"
    );
    assert_eq!(next(quiet.id.clone()).await, at(30));
    let requested_at = |id| {
        let store = store.clone();
        async move {
            store
                .integration(&id)
                .await
                .unwrap()
                .unwrap()
                .sync_requested_at
        }
    };
    assert_eq!(
        requested_at(requested.id.clone()).await,
        Some(at(1)),
        "still requested, so still claimed first"
    );
    assert_eq!(requested_at(quiet.id.clone()).await, None);
}

async fn a_requested_sync_is_claimed_before_overdue_integrations(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    // Three integrations due since minute 0; a webhook asks for i2 at minute 5.
    register(&store, 3).await;
    assert!(store.make_due(&integration("i2"), at(5)).await.unwrap());
    let first = store.claim_due("a", 1, LEASE, at(6)).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [integration("i2")],
        "the requested integration goes ahead of those due longer"
    );
    assert_eq!(first[0].sync_requested_at, Some(at(5)));
    // Its pass ends: the request is answered, and the overdue ones come next in their order.
    store.release_lease(&first[0], at(60), None).await.unwrap();
    let record = store
        .integration(&integration("i2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.sync_requested_at, record.next_sync_at),
        (None, at(60))
    );
    let next = store.claim_due("b", 3, LEASE, at(7)).await.unwrap();
    assert_eq!(
        next.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [integration("i0"), integration("i1")]
    );
    // Two requests: the older goes first, and asking again keeps a waiting request's time.
    for claimed in &next {
        store.release_lease(claimed, at(60), None).await.unwrap();
    }
    assert!(store.make_due(&integration("i1"), at(8)).await.unwrap());
    assert!(store.make_due(&integration("i0"), at(9)).await.unwrap());
    assert!(store.make_due(&integration("i1"), at(10)).await.unwrap());
    let requested = store.claim_due("c", 3, LEASE, at(11)).await.unwrap();
    assert_eq!(
        requested.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [integration("i1"), integration("i0")]
    );
}
