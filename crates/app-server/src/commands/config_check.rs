use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use super::out;
use crate::config::{ConfigSource, describe};

/// `stagewatch config check`: validates and prints the effective configuration.
pub(super) fn run(source: &ConfigSource) -> anyhow::Result<()> {
    let figment = source.figment()?;
    let settings = source.load()?;
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["key", "value", "from"]);
    for line in describe(&settings, &figment) {
        table.add_row([line.key, line.value, line.source]);
    }
    out(&table.to_string());
    out("configuration is valid");
    Ok(())
}
