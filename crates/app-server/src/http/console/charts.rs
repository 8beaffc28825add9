//! Charts as SVG drawn on the server: horizontal bars for funnels and times in stage, and a
//! time chart of an application's stays. No script, no external asset; every chart has a text
//! alternative, and the page shows the same numbers in a table.

#![allow(
    clippy::cast_precision_loss,
    reason = "drawn sizes: counts and milliseconds far below 2^52, rounded to a tenth of a pixel"
)]

use chrono::{DateTime, Utc};
use maud::{Markup, html};

const WIDTH: f64 = 720.0;
const LABEL_WIDTH: f64 = 190.0;
const ROW: f64 = 28.0;
const BAR: f64 = 18.0;

/// One row of a bar chart: the full bar, an optional inner (lighter) bar, and the text at its end.
#[derive(Debug, Clone)]
pub(super) struct BarRow {
    pub(super) label: String,
    pub(super) value: f64,
    pub(super) inner: Option<f64>,
    pub(super) caption: String,
}

/// Horizontal bars scaled to the largest value.
pub(super) fn bars(description: &str, rows: &[BarRow]) -> Markup {
    let max = rows
        .iter()
        .map(|r| r.value.max(r.inner.unwrap_or(0.0)))
        .fold(0.0_f64, f64::max);
    // Room for the caption after the longest bar.
    let room = WIDTH - LABEL_WIDTH - 230.0;
    let scale = if max > 0.0 { room / max } else { 0.0 };
    let height = ROW * rows.len().max(1) as f64 + 8.0;
    html! {
        svg.chart role="img" aria-label=(description) viewBox={ "0 0 " (WIDTH) " " (height) }
            xmlns="http://www.w3.org/2000/svg" {
            title { (description) }
            @for (i, row) in rows.iter().enumerate() {
                @let y = 4.0 + ROW * i as f64;
                @let width = (row.value * scale).max(if row.value > 0.0 { 2.0 } else { 0.0 });
                text x=(LABEL_WIDTH - 8.0) y=(y + BAR - 4.0) text-anchor="end" { (clip(&row.label, 26)) }
                rect.bar x=(LABEL_WIDTH) y=(y) width=(format!("{width:.1}")) height=(BAR) {}
                @if let Some(inner) = row.inner {
                    @let inner_width = (inner * scale).max(if inner > 0.0 { 2.0 } else { 0.0 });
                    rect class="bar light" x=(LABEL_WIDTH) y=(y + 4.0) width=(format!("{inner_width:.1}")) height=(BAR - 8.0) {}
                }
                text x=(LABEL_WIDTH + width + 6.0) y=(y + BAR - 4.0) { (row.caption) }
            }
        }
    }
}

/// One stay on a time chart.
#[derive(Debug, Clone)]
pub(super) struct Stay {
    pub(super) label: String,
    pub(super) from: DateTime<Utc>,
    /// `None` while the application is still there.
    pub(super) until: Option<DateTime<Utc>>,
}

/// Stays as bars along a shared time axis, one row per stay, oldest first.
pub(super) fn timeline(description: &str, stays: &[Stay], now: DateTime<Utc>) -> Markup {
    let Some(start) = stays.iter().map(|s| s.from).min() else {
        return html! { p.muted { "No stay with a known start yet." } };
    };
    let end = stays
        .iter()
        .map(|s| s.until.unwrap_or(now))
        .max()
        .unwrap_or(now)
        .max(start + chrono::TimeDelta::seconds(1));
    let span = (end - start).num_milliseconds() as f64;
    let room = WIDTH - LABEL_WIDTH - 20.0;
    let x =
        |at: DateTime<Utc>| LABEL_WIDTH + room * ((at - start).num_milliseconds() as f64 / span);
    let height = ROW * stays.len() as f64 + 30.0;
    html! {
        svg.chart role="img" aria-label=(description) viewBox={ "0 0 " (WIDTH) " " (height) }
            xmlns="http://www.w3.org/2000/svg" {
            title { (description) }
            @for (i, stay) in stays.iter().enumerate() {
                @let y = 4.0 + ROW * i as f64;
                @let left = x(stay.from);
                @let right = x(stay.until.unwrap_or(now)).max(left + 2.0);
                text x=(LABEL_WIDTH - 8.0) y=(y + BAR - 4.0) text-anchor="end" { (clip(&stay.label, 26)) }
                rect class={ "bar" @if stay.until.is_none() { " open" } } x=(format!("{left:.1}")) y=(y)
                    width=(format!("{:.1}", right - left)) height=(BAR) {}
            }
            @let axis = ROW * stays.len() as f64 + 8.0;
            line.axis x1=(LABEL_WIDTH) x2=(WIDTH - 20.0) y1=(axis) y2=(axis) {}
            text x=(LABEL_WIDTH) y=(axis + 16.0) { (start.format("%Y-%m-%d %H:%M")) }
            text x=(WIDTH - 20.0) y=(axis + 16.0) text-anchor="end" { (end.format("%Y-%m-%d %H:%M")) }
        }
    }
}

/// At most `max` characters, with an ellipsis when cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, value: f64) -> BarRow {
        BarRow {
            label: label.to_owned(),
            value,
            inner: None,
            caption: value.to_string(),
        }
    }

    fn widths(svg: &str) -> Vec<f64> {
        // Full bars (`bar`, `bar open`), not the inner ones (`bar light`).
        svg.split("class=\"bar")
            .skip(1)
            .filter(|rest| !rest.starts_with(" light"))
            .filter_map(|rest| {
                let start = rest.find("width=\"")? + 7;
                rest[start..].split('"').next()?.parse().ok()
            })
            .collect()
    }

    #[test]
    fn bars_are_proportional_to_their_values() {
        let svg = bars("test", &[row("a", 100.0), row("b", 50.0), row("c", 0.0)]).into_string();
        let w = widths(&svg);
        assert_eq!(w.len(), 3, "{svg}");
        assert!((w[0] - 2.0 * w[1]).abs() < 0.2, "{w:?}");
        assert!(w[2].abs() < f64::EPSILON);
    }

    #[test]
    fn a_timeline_places_stays_in_time_order() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let day = chrono::TimeDelta::days(1);
        let stays = [
            Stay {
                label: "Applied".into(),
                from: t0,
                until: Some(t0 + day),
            },
            Stay {
                label: "Interview".into(),
                from: t0 + day,
                until: None,
            },
        ];
        let svg = timeline("t", &stays, t0 + day * 3).into_string();
        let w = widths(&svg);
        // The open stay runs to now: twice as long as the closed one.
        assert!((w[1] - 2.0 * w[0]).abs() < 0.5, "{w:?} {svg}");
        assert!(svg.contains("bar open"));
    }

    #[test]
    fn long_labels_are_clipped_by_characters() {
        assert_eq!(clip("Senior Backend Engineer", 10), "Senior Ba…");
        assert_eq!(clip("Überprüfung der Unterlagen", 6), "Überp…");
        assert_eq!(clip("short", 10), "short");
    }
}
