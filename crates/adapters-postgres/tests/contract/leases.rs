use std::collections::HashSet;
use std::time::Duration;

use adapters_postgres::{Backend, NewIntegration, Store};
use chrono::Duration as Minutes;

use crate::contract;
use crate::support::{TestDb, at, integration};

contract!(
    two_concurrent_claimers_never_share_an_integration,
    an_expired_lease_can_be_claimed_by_another_owner,
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
                store
                    .release_lease(&record.id, owner, now, None)
                    .await
                    .unwrap();
            }
        }
    }
}

async fn an_expired_lease_can_be_claimed_by_another_owner(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    register(&store, 1).await;
    let id = integration("i0");

    assert_eq!(
        store.claim_due("a", 10, LEASE, at(0)).await.unwrap().len(),
        1
    );
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
            .renew_lease(&id, "a", LEASE, at(0) + Minutes::seconds(50))
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
        !store.renew_lease(&id, "a", LEASE, at(2)).await.unwrap(),
        "a lost its lease"
    );
    store.release_lease(&id, "a", at(100), None).await.unwrap();
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
        .release_lease(&id, "b", at(30), Some(at(2)))
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
