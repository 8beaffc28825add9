use super::out;
use crate::cli::MigrateArgs;
use crate::config::Settings;
use crate::wiring;

/// `stagewatch migrate`: applies pending migrations, and recounts the funnel totals if asked.
pub(super) async fn run(settings: &Settings, args: &MigrateArgs) -> anyhow::Result<()> {
    let store = wiring::store(settings, false).await?;
    let applied = store.migrate().await?;
    if applied.is_empty() {
        out("the database schema is up to date");
    } else {
        for name in &applied {
            out(&format!("applied {name}"));
        }
    }
    if args.recount_funnel_totals {
        store.rebuild_funnel_totals().await?;
        out("funnel totals recounted");
    }
    Ok(())
}
