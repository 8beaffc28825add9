//! The process's memory as the kernel reports it.

/// Peak resident set size (`VmHWM`) in bytes, or `None` where `/proc` is not available.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    status_field("VmHWM:")
}

/// Current resident set size (`VmRSS`) in bytes.
pub(crate) fn rss_bytes() -> Option<u64> {
    status_field("VmRSS:")
}

fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(name))?;
    let kilobytes: u64 = line
        .trim_start_matches(name)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kilobytes * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plausible_peak() {
        let current = rss_bytes().expect("Linux has /proc/self/status");
        let peak = peak_rss_bytes().expect("Linux has /proc/self/status");
        assert!(current > 0);
        assert!(peak >= current);
    }
}
