//! The benchmark report: one row per figure, printed as a table and written as JSON.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    /// Which figure of the design this row belongs to, e.g. `1 ingest`.
    pub(crate) name: String,
    /// What was measured, in words.
    pub(crate) measured: String,
    /// The measured value in `unit`.
    pub(crate) value: f64,
    pub(crate) unit: String,
    /// The target, in words; empty when the figure is only reported.
    pub(crate) target: String,
    /// `None` for figures that are reported, not judged.
    pub(crate) pass: Option<bool>,
}

impl Figure {
    pub(crate) fn reported(
        figure: &str,
        measured: impl Into<String>,
        value: f64,
        unit: &str,
    ) -> Self {
        Self {
            name: figure.to_owned(),
            measured: measured.into(),
            value,
            unit: unit.to_owned(),
            target: String::new(),
            pass: None,
        }
    }

    #[must_use]
    pub(crate) fn judged(mut self, target: impl Into<String>, pass: bool) -> Self {
        self.target = target.into();
        self.pass = Some(pass);
        self
    }
}

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) scale: String,
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
    pub(crate) cpus: usize,
    pub(crate) figures: Vec<Figure>,
}

impl Report {
    pub(crate) fn table(&self) -> comfy_table::Table {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(["figure", "measured", "value", "target", "result"]);
        for figure in &self.figures {
            table.add_row([
                figure.name.clone(),
                figure.measured.clone(),
                format!("{} {}", format_value(figure.value), figure.unit),
                figure.target.clone(),
                match figure.pass {
                    Some(true) => "pass".to_owned(),
                    Some(false) => "FAIL".to_owned(),
                    None => "reported".to_owned(),
                },
            ]);
        }
        table
    }

    pub(crate) fn failures(&self) -> usize {
        self.figures
            .iter()
            .filter(|figure| figure.pass == Some(false))
            .count()
    }

    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("could not write {}", path.display()))
    }
}

/// Three significant digits are all a benchmark on a shared machine can claim.
pub(crate) fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Prints a progress line.
#[allow(clippy::print_stderr)] // the benchmark talks to a developer's terminal
pub(crate) fn progress(message: &str) {
    eprintln!("[{}] {message}", chrono::Utc::now().format("%H:%M:%S"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_three_significant_digits() {
        assert_eq!(format_value(12_345.6), "12346");
        assert_eq!(format_value(42.42), "42.4");
        assert_eq!(format_value(1.234_5), "1.23");
        assert_eq!(format_value(0.012_34), "0.012");
    }

    #[test]
    fn only_judged_failures_count() {
        let report = Report {
            scale: "test".to_owned(),
            started_at: chrono::Utc::now(),
            cpus: 1,
            figures: vec![
                Figure::reported("a", "x", 1.0, "s"),
                Figure::reported("b", "y", 2.0, "s").judged("< 1 s", false),
                Figure::reported("c", "z", 0.5, "s").judged("< 1 s", true),
            ],
        };
        assert_eq!(report.failures(), 1);
        assert!(report.table().to_string().contains("FAIL"));
    }
}
