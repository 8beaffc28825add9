//! Starting to track an application stagewatch itself just created through Kombo: stored at once
//! with its `application.created` event, so the product sees it before the next sync pass.

use domain::ports::{PageChanges, StoreError, TrackerStore};
use domain::{ApplicationSnapshot, DetectContext, Origin, Pipeline, detect};

/// Stores the created application as tracked and appends its `application.created` event, in
/// one transaction, and returns that event. A later sync pass that sees the same application
/// finds it stored and does not announce it again. When a pass stored it first (Kombo answered
/// slowly), that pass has announced it as `application.discovered` and may have recorded newer
/// changes: nothing is written and `None` is returned, so the product never gets both events and
/// the stored state never goes back to the create's snapshot.
pub async fn track_created(
    store: &dyn TrackerStore,
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<domain::ChangeEvent>, StoreError> {
    let detection = detect(
        None,
        snapshot,
        pipeline,
        &DetectContext {
            detected_at: now,
            origin_for_new: Origin::CreatedHere,
        },
    );
    let event = detection
        .events
        .first()
        .cloned()
        .expect("a first sighting always yields its baseline event");
    let stored = store
        .apply_first_sighting(PageChanges {
            integration_id: snapshot.integration_id.clone(),
            lease: None,
            applications: vec![detection.next_state],
            events: detection.events,
            stage_entries: detection.stage_entry.into_iter().collect(),
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await?;
    Ok(stored.then_some(event))
}
