//! Query parameters of the list endpoints, parsed as Kombo parses them, and opaque cursors.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::errors::KomboError;

/// The page size when a request names none.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page size Kombo accepts.
pub const MAX_PAGE_SIZE: usize = 250;

/// Which list endpoint a query is for: each accepts its own filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Applications,
    Jobs,
}

impl ListKind {
    fn multi_value_filters(self) -> &'static [&'static str] {
        match self {
            ListKind::Applications => &[
                "ids",
                "remote_ids",
                "outcomes",
                "job_ids",
                "job_remote_ids",
                "current_stage_ids",
            ],
            ListKind::Jobs => &[
                "ids",
                "remote_ids",
                "job_codes",
                "statuses",
                "employment_types",
                "visibilities",
            ],
        }
    }

    fn single_value_filters(self) -> &'static [&'static str] {
        match self {
            ListKind::Applications => &[],
            ListKind::Jobs => &["name_contains", "post_url"],
        }
    }
}

/// A parsed list query.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub(crate) cursor: Option<String>,
    pub(crate) page_size: usize,
    pub(crate) include_deleted: bool,
    pub(crate) ignore_unsupported_filters: bool,
    pub(crate) updated_after: Option<DateTime<Utc>>,
    pub(crate) remote_created_after: Option<DateTime<Utc>>,
    /// Comma-separated filters, split; any value of one filter passes, every filter must pass.
    pub(crate) lists: BTreeMap<String, Vec<String>>,
    pub(crate) texts: BTreeMap<String, String>,
    /// Identifies the filter set, so a cursor cannot be replayed with other filters.
    fingerprint: u64,
}

impl ListQuery {
    pub(crate) fn parse(kind: ListKind, pairs: &[(String, String)]) -> Result<Self, KomboError> {
        let mut query = ListQuery {
            page_size: DEFAULT_PAGE_SIZE,
            ..ListQuery::default()
        };
        let mut filters: Vec<(&str, &str)> = Vec::new();
        for (name, value) in pairs {
            match name.as_str() {
                "cursor" => query.cursor = Some(value.clone()),
                "page_size" => query.page_size = parse_page_size(value)?,
                "include_deleted" => {
                    query.include_deleted = parse_bool(name, value)?;
                    filters.push((name, value));
                }
                "ignore_unsupported_filters" => {
                    query.ignore_unsupported_filters = parse_bool(name, value)?;
                    filters.push((name, value));
                }
                "updated_after" => {
                    query.updated_after = Some(parse_utc(name, value)?);
                    filters.push((name, value));
                }
                "remote_created_after" => {
                    query.remote_created_after = Some(parse_utc(name, value)?);
                    filters.push((name, value));
                }
                other if kind.multi_value_filters().contains(&other) => {
                    let values: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if other == "outcomes"
                        && let Some(bad) = values
                            .iter()
                            .find(|item| !["PENDING", "HIRED", "DECLINED"].contains(&item.as_str()))
                    {
                        return Err(KomboError::input_invalid(format!(
                            "Invalid value \"{bad}\" in outcomes: expected PENDING, HIRED or DECLINED."
                        )));
                    }
                    query.lists.insert(other.to_owned(), values);
                    filters.push((name, value));
                }
                other if kind.single_value_filters().contains(&other) => {
                    query.texts.insert(other.to_owned(), value.clone());
                    filters.push((name, value));
                }
                // Kombo ignores parameters it does not know; so does the sandbox.
                _ => {}
            }
        }
        filters.sort_unstable();
        let mut hasher = DefaultHasher::new();
        filters.hash(&mut hasher);
        query.fingerprint = hasher.finish();
        Ok(query)
    }

    /// Whether `value` passes the multi-value filter `name` (absent filter: everything passes).
    pub(crate) fn allows(&self, name: &str, value: Option<&str>) -> bool {
        self.lists.get(name).is_none_or(|allowed| {
            value.is_some_and(|value| allowed.iter().any(|item| item == value))
        })
    }

    /// Where to start reading, from the cursor if there is one.
    pub(crate) fn start(&self, integration: &str) -> Result<usize, KomboError> {
        let Some(cursor) = &self.cursor else {
            return Ok(0);
        };
        let invalid = || {
            KomboError::input_invalid(
                "The cursor is invalid. Pass the `next` value of the previous page.",
            )
        };
        let decoded = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let mut parts = decoded.rsplitn(3, ':');
        let fingerprint = parts.next().ok_or_else(invalid)?;
        let position = parts.next().ok_or_else(invalid)?;
        let owner = parts.next().ok_or_else(invalid)?;
        if owner != integration {
            return Err(invalid());
        }
        if fingerprint != format!("{:x}", self.fingerprint) {
            return Err(KomboError::input_invalid(
                "The cursor was issued for other filters. Send the same filters while paging.",
            ));
        }
        position.parse().map_err(|_| invalid())
    }

    pub(crate) fn cursor_at(&self, integration: &str, position: usize) -> String {
        URL_SAFE_NO_PAD.encode(format!("{integration}:{position}:{:x}", self.fingerprint))
    }
}

/// Reads `page_size` matching items from `start`; returns their positions and where the next
/// page starts (`None` when nothing matches beyond this page). `skip` gives, for a position, the
/// first one from there that may match (the position itself when nothing is known).
pub(crate) fn page(
    len: usize,
    start: usize,
    page_size: usize,
    skip: impl Fn(usize) -> usize,
    matches: impl Fn(usize) -> bool,
) -> (Vec<usize>, Option<usize>) {
    let next_match = |mut position: usize| loop {
        position = skip(position);
        if position >= len {
            return None;
        }
        if matches(position) {
            return Some(position);
        }
        position += 1;
    };
    let mut found = Vec::with_capacity(page_size.min(len));
    let mut position = start;
    while found.len() < page_size {
        let Some(at) = next_match(position) else {
            return (found, None);
        };
        found.push(at);
        position = at + 1;
    }
    (found, next_match(position))
}

fn parse_page_size(value: &str) -> Result<usize, KomboError> {
    match value.parse::<usize>() {
        Ok(size) if (1..=MAX_PAGE_SIZE).contains(&size) => Ok(size),
        _ => Err(KomboError::input_invalid(format!(
            "page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got \"{value}\"."
        ))),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, KomboError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(KomboError::input_invalid(format!(
            "{name} must be \"true\" or \"false\", got \"{value}\"."
        ))),
    }
}

/// Kombo's pattern `^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?)?Z?$`: UTC only, no offsets.
pub(crate) fn parse_utc(name: &str, value: &str) -> Result<DateTime<Utc>, KomboError> {
    let invalid = || {
        KomboError::input_invalid(format!(
            "{name} must be a UTC date-time like 2026-11-28T10:00:00.000Z (no offsets), got \"{value}\"."
        ))
    };
    let bare = value.strip_suffix('Z').unwrap_or(value);
    if bare.len() == 10 {
        let date = NaiveDate::parse_from_str(bare, "%Y-%m-%d").map_err(|_| invalid())?;
        return Ok(date.and_hms_opt(0, 0, 0).ok_or_else(invalid)?.and_utc());
    }
    let well_formed = bare.len() >= 19
        && bare.as_bytes()[10] == b'T'
        && bare[19..]
            .strip_prefix('.')
            .map_or(bare.len() == 19, |fraction| {
                !fraction.is_empty() && fraction.bytes().all(|byte| byte.is_ascii_digit())
            });
    if !well_formed {
        return Err(invalid());
    }
    NaiveDateTime::parse_from_str(bare, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|at| at.and_utc())
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_utc_forms_and_rejects_offsets() {
        assert!(parse_utc("t", "2026-11-28T10:00:00.000Z").is_ok());
        assert!(parse_utc("t", "2026-11-28T10:00:00Z").is_ok());
        assert!(parse_utc("t", "2026-11-28T10:00:00").is_ok());
        assert!(parse_utc("t", "2026-11-28").is_ok());
        assert!(parse_utc("t", "2026-11-28T10:00:00+01:00").is_err());
        assert!(parse_utc("t", "2026-11-28T10:00:00.000-05:00").is_err());
        assert!(parse_utc("t", "yesterday").is_err());
    }

    #[test]
    fn page_reports_the_next_match_only_when_there_is_one() {
        let (found, next) = page(10, 0, 3, |position| position, |position| position % 2 == 0);
        assert_eq!(found, vec![0, 2, 4]);
        assert_eq!(next, Some(6));
        let (found, next) = page(10, 6, 3, |position| position, |position| position % 2 == 0);
        assert_eq!(found, vec![6, 8]);
        assert_eq!(next, None);
    }

    #[test]
    fn skipped_positions_are_never_read_and_the_rest_are() {
        // Nothing below 5 or in 10..20 may match: those positions must not be looked at.
        let skip = |position: usize| match position {
            0..5 => 5,
            10..20 => 20,
            other => other,
        };
        let looked = std::cell::RefCell::new(Vec::new());
        let matches = |position: usize| {
            looked.borrow_mut().push(position);
            position.is_multiple_of(3)
        };
        let (found, next) = page(30, 0, 3, skip, matches);
        assert_eq!(found, vec![6, 9, 21]);
        assert_eq!(next, Some(24));
        assert!(
            looked
                .borrow()
                .iter()
                .all(|p| !(0..5).contains(p) && !(10..20).contains(p))
        );
        let (found, next) = page(30, 25, 3, skip, |position| position.is_multiple_of(3));
        assert_eq!((found, next), (vec![27], None));
    }
}
