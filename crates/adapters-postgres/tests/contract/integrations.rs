use std::time::Duration;

use adapters_postgres::{Backend, NewIntegration, Registered, StoreError};
use domain::event::{FailureReport, SyncFailed};
use domain::ports::{
    HeldChange, IntegrationUpdate, LeaseEpoch, PageChanges, PassCompletion, PassFailure,
    TrackerStore,
};
use domain::{Capabilities, ChangeEvent, EventKind, IntegrationStatus};

use crate::contract;
use crate::support::{TestDb, at, integration, stage, tracked, whole_feed};

contract!(
    registration_is_idempotent,
    passes_and_failures_are_recorded_with_their_events,
    kombo_webhooks_are_seen_once,
);

async fn registration_is_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let new = NewIntegration {
        id: integration("acme"),
        tool: None,
        label: Some("Acme".into()),
        poll_interval: Some(Duration::from_mins(5)),
    };
    let Registered::Created(record) = store.register_integration(&new, at(0)).await.unwrap() else {
        panic!("the first registration creates");
    };
    assert_eq!(record.tool.as_deref(), Some("greenhouse"));
    assert_eq!(record.poll_interval, Some(Duration::from_mins(5)));
    assert_eq!(
        (record.next_sync_at, record.created_at, record.paused),
        (at(0), at(0), false)
    );

    let again = store
        .register_integration(
            &NewIntegration {
                label: None,
                ..new.clone()
            },
            at(5),
        )
        .await
        .unwrap();
    assert_eq!(again, Registered::AlreadyRegistered(record.clone()));
    assert_eq!(store.list_integrations().await.unwrap(), vec![record]);
    assert!(!store.set_paused(&integration("nope"), true).await.unwrap());
    assert_eq!(
        store.sync_state(&integration("nope")).await.unwrap_err(),
        StoreError::UnknownIntegration(integration("nope"))
    );
}

async fn passes_and_failures_are_recorded_with_their_events(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let id = integration("acme");
    store
        .register_integration(
            &NewIntegration {
                id: id.clone(),
                tool: None,
                label: None,
                poll_interval: None,
            },
            at(0),
        )
        .await
        .unwrap();

    let error = FailureReport {
        kind: "transient".into(),
        message: "timeout".into(),
    };
    let failed = ChangeEvent::for_integration(
        &id,
        EventKind::SyncFailed(SyncFailed {
            error: error.clone(),
            failing_since: at(1),
        }),
        "1",
        at(1),
    );
    store
        .record_failure(PassFailure {
            integration_id: id.clone(),
            lease: LeaseEpoch(0),
            at: at(1),
            error: error.clone(),
            failing_since: Some(at(1)),
            events: vec![failed.clone()],
        })
        .await
        .unwrap();
    let record = store.integration(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            record.failing_since,
            record.last_error.clone(),
            record.last_error_at
        ),
        (Some(at(1)), Some(error), Some(at(1)))
    );

    let capabilities = Capabilities::unknown();
    store
        .update_integration(IntegrationUpdate {
            integration_id: id.clone(),
            lease: LeaseEpoch(0),
            capabilities: Some(capabilities.clone()),
            status: Some(IntegrationStatus::Active),
            events: Vec::new(),
        })
        .await
        .unwrap();
    // The hold flag stays set only while a held change waits for the operator.
    store
        .apply_page(PageChanges {
            integration_id: id.clone(),
            lease: Some(LeaseEpoch(0)),
            applications: Vec::new(),
            events: Vec::new(),
            stage_entries: Vec::new(),
            held: vec![HeldChange {
                application: tracked(&id, "gone", stage("applied", 0), 2),
                events: Vec::new(),
                stage_entry: None,
            }],
            pipelines: Vec::new(),
        })
        .await
        .unwrap();
    store
        .complete_pass(PassCompletion {
            integration_id: id.clone(),
            lease: LeaseEpoch(0),
            watermark: Some(at(2)),
            full: true,
            started_at: at(3),
            finished_at: at(4),
            capabilities: None,
            deletions_held: true,
            events: Vec::new(),
        })
        .await
        .unwrap();
    let state = store.sync_state(&id).await.unwrap();
    assert_eq!(state.watermark, Some(at(2)));
    assert_eq!(state.capabilities, Some(capabilities));
    assert_eq!(state.status, Some(IntegrationStatus::Active));
    assert_eq!(state.failing_since, None);
    assert!(state.deletions_held);
    let record = store.integration(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            record.last_pass_started_at,
            record.last_pass_finished_at,
            record.last_full_pass_at
        ),
        (Some(at(3)), Some(at(4)), Some(at(4)))
    );

    // A pass that read nothing keeps the watermark.
    store
        .complete_pass(PassCompletion {
            integration_id: id.clone(),
            lease: LeaseEpoch(0),
            watermark: None,
            full: false,
            started_at: at(5),
            finished_at: at(6),
            capabilities: None,
            deletions_held: false,
            events: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(store.sync_state(&id).await.unwrap().watermark, Some(at(2)));
    let feed = whole_feed(&store, 10).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].event, failed);

    let unknown = store
        .complete_pass(PassCompletion {
            integration_id: integration("nope"),
            lease: LeaseEpoch(0),
            watermark: None,
            full: false,
            started_at: at(5),
            finished_at: at(6),
            capabilities: None,
            deletions_held: false,
            events: vec![failed],
        })
        .await
        .unwrap_err();
    assert_eq!(unknown, StoreError::UnknownIntegration(integration("nope")));
}

async fn kombo_webhooks_are_seen_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    assert!(store.record_kombo_webhook("wh_1", at(0)).await.unwrap());
    assert!(!store.record_kombo_webhook("wh_1", at(1)).await.unwrap());
    assert!(store.record_kombo_webhook("wh_2", at(1)).await.unwrap());
    assert_eq!(store.purge_kombo_webhooks(at(1)).await.unwrap(), 1);
    assert!(store.record_kombo_webhook("wh_1", at(2)).await.unwrap());
    assert!(!store.record_kombo_webhook("wh_2", at(2)).await.unwrap());
}
