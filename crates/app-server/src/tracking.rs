//! Starting to track an application stagewatch itself just created through Kombo: stored at once
//! with its `application.created` event, so the product sees it before the next sync pass.

use domain::ports::{PageChanges, StoreError, TrackerStore};
use domain::{ApplicationSnapshot, DetectContext, Origin, Pipeline, detect};

/// Stores the created application as tracked and appends its `application.created` event, in
/// one transaction. The event's id is derived from the application, so a later sync pass that
/// sees the same application does not announce it again.
pub async fn track_created(
    store: &dyn TrackerStore,
    snapshot: &ApplicationSnapshot,
    pipeline: Option<&Pipeline>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<domain::ChangeEvent, StoreError> {
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
    store
        .apply_page(PageChanges {
            integration_id: snapshot.integration_id.clone(),
            applications: vec![detection.next_state],
            events: detection.events,
            stage_entries: detection.stage_entry.into_iter().collect(),
            held: Vec::new(),
            pipelines: Vec::new(),
        })
        .await?;
    Ok(event)
}
