use super::out;
use crate::config::Settings;
use crate::wiring;

/// `stagewatch migrate`: applies pending migrations.
pub(super) async fn run(settings: &Settings) -> anyhow::Result<()> {
    let store = wiring::store(settings, false).await?;
    let applied = store.migrate().await?;
    if applied.is_empty() {
        out("the database schema is up to date");
    } else {
        for name in &applied {
            out(&format!("applied {name}"));
        }
    }
    Ok(())
}
