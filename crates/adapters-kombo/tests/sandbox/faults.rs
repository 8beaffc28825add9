//! Each sandbox fault: cured by the client's retries, or the right typed error.

use super::*;

/// A sandbox with two full pages of three and a last one.
async fn paged_sandbox() -> kombo_sandbox::RunningSandbox {
    start(SandboxConfig::new("key").with_integration(
        IntegrationConfig::new(FULL, "greenhouse", AtsProfile::Full).with_jobs(2, 4),
    ))
    .await
}

fn small_pages() -> ApplicationQuery {
    ApplicationQuery {
        page_size: 3,
        ..ApplicationQuery::default()
    }
}

fn live_ids(sandbox: &kombo_sandbox::RunningSandbox) -> Vec<String> {
    sorted_ids(
        sandbox
            .handle()
            .current_applications(FULL)
            .iter()
            .filter(|a| a["remote_deleted_at"].is_null()),
    )
}

fn once(fault: Fault, endpoint: Endpoint) -> FaultRule {
    FaultRule::new(fault, Trigger::Next(1)).on(&[endpoint])
}

async fn first_page_error(sandbox: &kombo_sandbox::RunningSandbox, settings: Settings) -> AtsError {
    client(sandbox, settings)
        .fetch_applications(&integration(FULL), &small_pages(), None)
        .await
        .expect_err("the fault reaches the caller")
}

fn without_retries() -> Settings {
    Settings {
        max_retries: 0,
        ..Settings::default()
    }
}

/// The live applications after the truth's creations, imports, deletions and restorations are
/// applied to the `seeded` ones, sorted.
fn replay_truth(seeded: Vec<String>, truth: &[kombo_sandbox::TruthEntry]) -> Vec<String> {
    let mut live: BTreeSet<String> = seeded.into_iter().collect();
    let mut created = 0;
    for entry in truth {
        let id = entry.application_id.clone();
        match entry.change {
            TruthChange::Created { .. } | TruthChange::Tracked | TruthChange::Restored => {
                created += usize::from(!matches!(entry.change, TruthChange::Restored));
                live.insert(id);
            }
            TruthChange::Deleted => {
                live.remove(&id);
            }
            _ => {}
        }
    }
    assert!(created > 0, "the history created no application");
    live.into_iter().collect()
}

#[tokio::test]
async fn a_fault_on_page_two_is_retried_without_skipping_or_repeating_a_page() {
    let faults = [
        Fault::Status(500),
        Fault::Status(503),
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        Fault::ConnectionDrop,
        Fault::TruncatedBody,
        Fault::Slow(Duration::from_millis(600)),
    ];
    for fault in faults {
        let sandbox = paged_sandbox().await;
        let handle = sandbox.handle();
        let seeded = live_ids(&sandbox);
        handle.advance(60);
        let expected_from_truth = replay_truth(seeded, &handle.truth(FULL));
        let client = client(
            &sandbox,
            Settings {
                timeout: Duration::from_millis(300),
                ..Settings::default()
            },
        );
        let integration = integration(FULL);
        let query = small_pages();
        let first = client
            .fetch_applications(&integration, &query, None)
            .await
            .unwrap();
        handle.add_fault(once(fault.clone(), Endpoint::Applications));
        let mut ids: Vec<String> = first
            .items
            .iter()
            .map(|a| a.id.as_str().to_owned())
            .collect();
        let mut cursor = first.next;
        let mut pages = 1;
        while let Some(next) = cursor {
            let page = client
                .fetch_applications(&integration, &query, Some(next))
                .await
                .unwrap_or_else(|error| panic!("{fault:?} on page {}: {error:?}", pages + 1));
            ids.extend(page.items.iter().map(|a| a.id.as_str().to_owned()));
            cursor = page.next;
            pages += 1;
        }
        assert!(pages >= 3, "{fault:?}: the fault hit a middle page");
        assert_eq!(
            handle.request_count(Endpoint::Applications),
            pages + 1,
            "{fault:?}: one retry"
        );
        ids.sort();
        assert_eq!(ids, live_ids(&sandbox), "{fault:?}");
        assert_eq!(ids, expected_from_truth, "{fault:?}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let sandbox = paged_sandbox().await;
    let handle = sandbox.handle();
    handle.set_faults(vec![
        once(Fault::Status(500), Endpoint::Applications),
        once(Fault::Status(503), Endpoint::Applications),
    ]);
    let read = all_applications(&client(&sandbox, Settings::default()), FULL, &small_pages())
        .await
        .unwrap();
    assert_eq!(read.len(), 8);
    assert_eq!(handle.request_count(Endpoint::Applications), 3 + 2);
}

#[tokio::test]
async fn without_retries_each_fault_is_the_right_error() {
    let sandbox = paged_sandbox().await;
    let handle = sandbox.handle();

    handle.add_fault(once(
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        Endpoint::Applications,
    ));
    let error = first_page_error(&sandbox, without_retries()).await;
    assert_eq!(
        error,
        AtsError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );

    for status in [500, 502, 503, 504] {
        handle.add_fault(once(Fault::Status(status), Endpoint::Applications));
        let error = first_page_error(&sandbox, without_retries()).await;
        assert!(
            matches!(error, AtsError::Transient { .. }),
            "{status}: {error:?}"
        );
    }

    handle.add_fault(once(Fault::ConnectionDrop, Endpoint::Applications));
    let error = first_page_error(&sandbox, without_retries()).await;
    assert!(matches!(error, AtsError::Transient { .. }), "{error:?}");

    handle.add_fault(once(Fault::TruncatedBody, Endpoint::Applications));
    let error = first_page_error(&sandbox, without_retries()).await;
    assert!(
        matches!(
            error,
            AtsError::Transient { .. } | AtsError::Malformed { .. }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_transient_after_the_retries() {
    let sandbox = paged_sandbox().await;
    let handle = sandbox.handle();
    handle.add_fault(
        FaultRule::new(Fault::Slow(Duration::from_millis(800)), Trigger::Next(3))
            .on(&[Endpoint::Applications]),
    );
    let error = first_page_error(
        &sandbox,
        Settings {
            max_retries: 2,
            timeout: Duration::from_millis(150),
            ..Settings::default()
        },
    )
    .await;
    assert!(matches!(error, AtsError::Transient { .. }), "{error:?}");
    assert_eq!(handle.request_count(Endpoint::Applications), 3);
}

#[tokio::test]
async fn an_expired_cursor_is_reported_as_such_and_not_retried() {
    let sandbox = paged_sandbox().await;
    let handle = sandbox.handle();
    let client = client(&sandbox, Settings::default());
    let integration = integration(FULL);
    let first = client
        .fetch_applications(&integration, &small_pages(), None)
        .await
        .unwrap();
    handle.add_fault(once(Fault::ExpiredCursor, Endpoint::Applications));
    let error = client
        .fetch_applications(&integration, &small_pages(), first.next)
        .await
        .unwrap_err();
    assert!(matches!(error, AtsError::CursorExpired { .. }), "{error:?}");
    assert_eq!(handle.request_count(Endpoint::Applications), 2);
    // Starting the pass over works.
    let read = all_applications(&client, FULL, &small_pages())
        .await
        .unwrap();
    assert_eq!(read.len(), 8);
}

#[tokio::test]
async fn a_create_that_failed_is_never_retried() {
    let sandbox = paged_sandbox().await;
    let handle = sandbox.handle();
    let client = client(&sandbox, Settings::default());
    let jobs = all_jobs(&client, FULL, 10).await;
    let truth_before = handle.truth(FULL).len();
    handle.add_fault(FaultRule::new(Fault::Status(500), Trigger::Next(1)));
    let new = NewApplication {
        job_id: jobs[0].job_id.clone(),
        candidate: candidate("grace@example.com"),
        stage_id: None,
        extra: serde_json::Map::new(),
    };
    let error = client
        .create_application(&integration(FULL), &new)
        .await
        .unwrap_err();
    assert!(matches!(error, AtsError::Transient { .. }), "{error:?}");
    assert_eq!(handle.request_count(Endpoint::CreateApplication), 1);
    assert_eq!(
        handle.truth(FULL).len(),
        truth_before,
        "nothing was created"
    );
}

#[tokio::test]
async fn requests_are_paced_to_the_limit_kombo_reports_without_a_429() {
    // 12 requests per second for the key, and 30 reads sent at once with the configured rates
    // far above it: the client learns the window from the answers and spreads the reads.
    let sandbox = start(
        SandboxConfig::new("key")
            .with_integration(
                IntegrationConfig::new(FULL, "greenhouse", AtsProfile::Full).with_jobs(1, 2),
            )
            .with_rate_limit(12, Duration::from_secs(1)),
    )
    .await;
    let client = std::sync::Arc::new(client(&sandbox, without_retries()));
    let reads: Vec<_> = (0..30)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .fetch_applications(&integration(FULL), &ApplicationQuery::default(), None)
                    .await
            })
        })
        .collect();
    let mut failed = Vec::new();
    for read in reads {
        if let Err(error) = read.await.unwrap() {
            failed.push(error.to_string());
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(sandbox.handle().rate_limited_count(), 0);
    assert_eq!(sandbox.handle().request_count(Endpoint::Applications), 30);
}
