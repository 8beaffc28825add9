//! The shape of a webhook URL on a server that delivers only to public addresses: `http(s)`,
//! a DNS host name, an optional port and the characters RFC 3986 allows. [`PATTERN`] states the
//! same rule in the OpenAPI document; [`shape_error`] enforces it, so the two cannot disagree.

/// The rule as a JSON Schema (ECMA-262) pattern.
pub(super) const PATTERN: &str = concat!(
    r"^https?://([A-Za-z0-9-]+\.)+[A-Za-z]{2,}",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    // path, query, fragment: RFC 3986's `pchar` (and `/`, `?` after the path).
    r"(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?",
    r"(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?",
    r"(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?",
    r"(?![\s\S])", // the end of the value (`input_rules::END`)
);

/// Why `raw` does not have the shape [`PATTERN`] describes, if it does not.
pub(super) fn shape_error(raw: &str) -> Option<&'static str> {
    let Some(rest) = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
    else {
        return Some("must start with `https://` or `http://`");
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if !is_host_name(host) {
        return Some(
            "must name a host such as `hooks.example.com` (no address literal, user or trailing dot)",
        );
    }
    if let Some(port) = port
        && !is_port(port)
    {
        return Some("the port must be 1 to 65535");
    }
    if !is_uri_tail(tail) {
        return Some("path, query and fragment must be percent-encoded (RFC 3986)");
    }
    None
}

/// Two or more labels of letters, digits and hyphens, the last one letters only.
fn is_host_name(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let label =
        |l: &&str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let top = labels.last().copied().unwrap_or_default();
    labels.len() >= 2
        && labels.iter().all(label)
        && top.len() >= 2
        && top.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_port(port: &str) -> bool {
    !port.starts_with('0')
        && (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p))
}

/// An RFC 3986 path (empty or from `/`), query and fragment.
fn is_uri_tail(tail: &str) -> bool {
    let (rest, fragment) = tail.split_once('#').unwrap_or((tail, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    (path.is_empty() || path.starts_with('/'))
        && only_pchars(path, b"/")
        && only_pchars(query, b"/?")
        && only_pchars(fragment, b"/?")
}

/// Whether `part` holds only RFC 3986's `pchar` (unreserved, sub-delims, `:`, `@`, `%` and two
/// hex digits) and the `extra` characters.
fn only_pchars(part: &str, extra: &[u8]) -> bool {
    let bytes = part.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric()
                || b"._~!$&'()*+,;=:@-".contains(&b)
                || extra.contains(&b) =>
            {
                i += 1;
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{PATTERN, shape_error};

    /// The document's pattern and the handler's check, on the same URLs.
    fn agree(url: &str) -> bool {
        // The `regex` crate has no lookahead; its `$` is the strict end that `END` spells.
        let strict = PATTERN
            .strip_suffix(super::super::input_rules::END)
            .unwrap();
        let pattern = regex::Regex::new(&format!("{strict}$")).unwrap();
        pattern.is_match(url) == shape_error(url).is_none()
    }

    #[test]
    fn host_names_with_ports_paths_and_queries_pass() {
        for url in [
            "https://hooks.example.com",
            "https://hooks.example.com/stagewatch",
            "https://receiver.example.org:8443/events?tenant=7",
            "http://webhooks.example.net/in#x",
            "https://a-b.example.io:65535/p%20q?x=%5B1%5D&y=(2)/?#frag/?",
            "https://example.com?only=query",
        ] {
            assert_eq!(shape_error(url), None, "{url}");
            assert!(agree(url), "{url}");
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        for url in [
            "",
            "HTTPS://hooks.example.com",
            "ftp://hooks.example.com",
            "https://203.0.113.5/hooks",
            "https://hooks.example.com./x",
            "https://user@hooks.example.com/",
            "https://intranet/hooks",
            "https://hooks.example.c0m",
            "https://hooks.example.com:0/",
            "https://hooks.example.com:65536/",
            "https://hooks.example.com:080/",
            "https://hooks.example.com/G{x}",
            "https://hooks.example.com/%zz",
            "https://hooks.example.com/a[1]",
            "https://hooks.example.com/a#b#c",
            "https://hooks.example.com/ä",
            "https://[2001:db8::1]/hooks",
        ] {
            assert!(shape_error(url).is_some(), "{url}");
            assert!(agree(url), "{url}");
        }
    }
}
