//! Query strings as Kombo expects them: timestamps in UTC with `Z`, booleans as `"true"` /
//! `"false"`, multi-value filters comma-separated, empty filters left out.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::ports::{ApplicationQuery, JobQuery, PageCursor};

/// Kombo's largest `page_size` (its default is 100).
pub(crate) const MAX_PAGE_SIZE: u16 = 250;

/// `2026-11-28T10:00:00.000Z`: Kombo refuses `+00:00` offsets.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn boolean(value: bool) -> String {
    if value { "true" } else { "false" }.to_owned()
}

fn list<T: AsRef<str>>(values: &[T]) -> Option<String> {
    (!values.is_empty()).then(|| {
        values
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn page_size(requested: u16) -> String {
    requested.clamp(1, MAX_PAGE_SIZE).to_string()
}

/// The query pairs of `GET /ats/applications`, in a stable order.
pub(crate) fn applications(
    query: &ApplicationQuery,
    cursor: Option<&PageCursor>,
) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.0.clone()));
    }
    pairs.push(("page_size", page_size(query.page_size)));
    if let Some(at) = query.updated_after {
        pairs.push(("updated_after", timestamp(at)));
    }
    pairs.push(("include_deleted", boolean(query.include_deleted)));
    pairs.push((
        "ignore_unsupported_filters",
        boolean(query.ignore_unsupported_filters),
    ));
    let outcomes: Vec<&str> = query.outcomes.iter().map(domain::Outcome::as_str).collect();
    for (name, values) in [
        ("ids", list(&query.ids)),
        ("remote_ids", list(&query.remote_ids)),
        ("outcomes", list(&outcomes)),
        ("job_ids", list(&query.job_ids)),
        ("job_remote_ids", list(&query.job_remote_ids)),
        ("current_stage_ids", list(&query.current_stage_ids)),
    ] {
        if let Some(values) = values {
            pairs.push((name, values));
        }
    }
    if let Some(at) = query.remote_created_after {
        pairs.push(("remote_created_after", timestamp(at)));
    }
    pairs
}

/// `GET /ats/rejection-reasons`: the largest pages, since the whole list is always read.
pub(crate) fn rejection_reasons(cursor: Option<&PageCursor>) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::with_capacity(2);
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.0.clone()));
    }
    pairs.push(("page_size", page_size(u16::MAX)));
    pairs
}

/// The query pairs of `GET /ats/jobs`.
pub(crate) fn jobs(query: &JobQuery, cursor: Option<&PageCursor>) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.0.clone()));
    }
    pairs.push(("page_size", page_size(query.page_size)));
    if let Some(ids) = list(&query.ids) {
        pairs.push(("ids", ids));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use domain::{ApplicationId, JobId, Outcome, StageId};

    use super::*;

    fn value<'a>(pairs: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn timestamps_are_utc_with_z_and_milliseconds() {
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
        assert_eq!(timestamp(at), "2026-11-28T10:00:00.000Z");
        let at = at + chrono::Duration::microseconds(123_456);
        assert_eq!(timestamp(at), "2026-11-28T10:00:00.123Z");
    }

    #[test]
    fn every_application_filter_is_encoded() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let query = ApplicationQuery {
            updated_after: Some(at),
            include_deleted: true,
            page_size: 50,
            ids: vec![
                ApplicationId::parse("a1").unwrap(),
                ApplicationId::parse("a2").unwrap(),
            ],
            remote_ids: vec![domain::RemoteId::parse("r1").unwrap()],
            outcomes: vec![Outcome::Hired, Outcome::Declined],
            job_ids: vec![JobId::parse("j1").unwrap()],
            job_remote_ids: vec![domain::RemoteId::parse("jr1").unwrap()],
            current_stage_ids: vec![StageId::parse("s1").unwrap(), StageId::parse("s2").unwrap()],
            remote_created_after: Some(at),
            ignore_unsupported_filters: true,
        };
        let pairs = applications(&query, Some(&PageCursor("next-1".into())));
        assert_eq!(
            pairs,
            [
                ("cursor", "next-1".to_owned()),
                ("page_size", "50".to_owned()),
                ("updated_after", "2026-01-02T03:04:05.000Z".to_owned()),
                ("include_deleted", "true".to_owned()),
                ("ignore_unsupported_filters", "true".to_owned()),
                ("ids", "a1,a2".to_owned()),
                ("remote_ids", "r1".to_owned()),
                ("outcomes", "HIRED,DECLINED".to_owned()),
                ("job_ids", "j1".to_owned()),
                ("job_remote_ids", "jr1".to_owned()),
                ("current_stage_ids", "s1,s2".to_owned()),
                (
                    "remote_created_after",
                    "2026-01-02T03:04:05.000Z".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn empty_filters_are_left_out_and_booleans_spelled_false() {
        let pairs = applications(&ApplicationQuery::default(), None);
        assert_eq!(
            pairs,
            [
                ("page_size", "250".to_owned()),
                ("include_deleted", "false".to_owned()),
                ("ignore_unsupported_filters", "false".to_owned()),
            ]
        );
    }

    #[test]
    fn page_size_is_kept_within_kombos_bounds() {
        let mut query = ApplicationQuery {
            page_size: 0,
            ..ApplicationQuery::default()
        };
        assert_eq!(value(&applications(&query, None), "page_size"), Some("1"));
        query.page_size = 1000;
        assert_eq!(value(&applications(&query, None), "page_size"), Some("250"));
    }

    #[test]
    fn jobs_query_lists_ids_comma_separated() {
        let query = JobQuery {
            ids: vec![JobId::parse("j1").unwrap(), JobId::parse("j2").unwrap()],
            page_size: 10,
        };
        let pairs = jobs(&query, None);
        assert_eq!(value(&pairs, "ids"), Some("j1,j2"));
        assert_eq!(value(&pairs, "cursor"), None);
    }
}
