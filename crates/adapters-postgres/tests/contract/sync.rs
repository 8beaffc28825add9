//! The domain's sync use case running on the real store, with Kombo scripted.

use std::sync::{Arc, Mutex};

use adapters_postgres::{Backend, NewIntegration, Store};
use chrono::{DateTime, Utc};
use domain::fixtures::{fully_supported, integration, integration_info, pipeline, snapshot, stage};
use domain::ports::{Clock, LeaseEpoch, MockAtsGateway, Page};
use domain::sync::{PassMode, SyncService, SyncSettings};
use domain::{ApplicationSnapshot, IntegrationStatus};

use crate::contract;
use crate::support::{TestDb, assert_gap_free, at, whole_feed};

contract!(sync_passes_fill_the_feed_and_the_timeline);

struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A Kombo whose applications are whatever `state` holds.
fn kombo(state: Arc<Mutex<Vec<ApplicationSnapshot>>>) -> MockAtsGateway {
    let mut ats = MockAtsGateway::new();
    ats.expect_integration_info()
        .returning(|_| Ok(integration_info(fully_supported())));
    ats.expect_fetch_jobs()
        .returning(|_, _, _| Ok(Page::last(vec![pipeline()])));
    ats.expect_fetch_applications()
        .returning(move |_, _, _| Ok(Page::last(state.lock().unwrap().clone())));
    ats
}

async fn sync_passes_fill_the_feed_and_the_timeline(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store: Store = db.store().await;
    store
        .register_integration(
            &NewIntegration {
                id: integration(),
                tool: None,
                label: None,
                poll_interval: None,
            },
            at(0),
        )
        .await
        .unwrap();
    let state = Arc::new(Mutex::new(vec![
        snapshot("app-1", "applied", 1),
        snapshot("app-2", "phone_screen", 1),
    ]));
    let clock = Arc::new(TestClock(Mutex::new(at(5))));
    let service = SyncService::new(
        Arc::new(kombo(Arc::clone(&state))),
        Arc::new(store.clone()),
        clock.clone(),
        SyncSettings::default(),
    );

    service
        .run_pass(&integration(), LeaseEpoch(0), PassMode::Full, &())
        .await
        .unwrap();
    let first = whole_feed(&store, 100).await;
    let discovered = first
        .iter()
        .filter(|e| e.event.type_name() == "application.discovered")
        .count();
    assert_eq!(discovered, 2);

    // app-1 moves on in the ATS; the next pass sees it, and a repeat of that pass adds nothing.
    state.lock().unwrap()[0] = snapshot("app-1", "onsite", 10);
    *clock.0.lock().unwrap() = at(15);
    service
        .run_pass(&integration(), LeaseEpoch(0), PassMode::Incremental, &())
        .await
        .unwrap();
    let head = store.feed_head().await.unwrap();
    *clock.0.lock().unwrap() = at(20);
    service
        .run_pass(&integration(), LeaseEpoch(0), PassMode::Incremental, &())
        .await
        .unwrap();
    assert_eq!(store.feed_head().await.unwrap(), head);

    let feed = whole_feed(&store, 100).await;
    assert_gap_free(&feed);
    let moved = feed
        .iter()
        .find(|e| e.event.type_name() == "application.stage_changed")
        .expect("the move is in the feed");
    assert_eq!(
        moved.event.application.as_ref().unwrap().current_stage,
        Some(stage("onsite", Some(3)).to_ref())
    );
    let app = domain::ApplicationId::parse("app-1").unwrap();
    let timeline = store
        .application_timeline(&integration(), &app)
        .await
        .unwrap();
    let stages: Vec<&str> = timeline.iter().map(|v| v.stage.stage_id.as_str()).collect();
    assert_eq!(stages, ["applied", "onsite"]);
    let record = store.integration(&integration()).await.unwrap().unwrap();
    assert!(record.watermark.is_some());
    assert_eq!(record.status, Some(IntegrationStatus::Active));
}
