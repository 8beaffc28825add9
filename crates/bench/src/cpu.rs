//! How busy the machine's cores were over a stretch of a benchmark, read from `/proc`: what
//! tells a figure bound by the cores (all of them busy) from one bound by waiting (cores idle),
//! and how the work split between this process (stagewatch and the sandbox) and PostgreSQL.

use crate::report::Figure;

/// CPU counters at one moment, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct Counters {
    /// All cores, every state.
    total: u64,
    /// All cores, idle or waiting for I/O.
    idle: u64,
    this_process: u64,
    postgres: u64,
}

/// What the cores did between [`CpuMeter::start`] and [`CpuMeter::stop`], in cores (1.0 = one
/// core busy the whole time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuUse {
    pub(crate) cores: usize,
    pub(crate) busy: f64,
    pub(crate) this_process: f64,
    pub(crate) postgres: f64,
}

impl CpuUse {
    /// A reported figure: the busy cores, and the split in words.
    pub(crate) fn figure(&self, name: &str, during: &str) -> Figure {
        Figure::reported(
            name,
            format!(
                "CPU busy during {during}, of {} cores (this process {:.2}, PostgreSQL {:.2})",
                self.cores, self.this_process, self.postgres
            ),
            self.busy,
            "cores",
        )
    }
}

/// Measures CPU use over a stretch; `None` results where `/proc` cannot be read.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    started: Option<Counters>,
}

impl CpuMeter {
    pub(crate) fn start() -> Self {
        Self {
            started: counters(),
        }
    }

    pub(crate) fn stop(&self) -> Option<CpuUse> {
        let (before, after) = (self.started?, counters()?);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let total = after.total.checked_sub(before.total)?;
        if total == 0 {
            return None;
        }
        // Ticks of one core over the stretch: `total` counts every core's.
        #[allow(clippy::cast_precision_loss)]
        let per_core = total as f64 / cores as f64;
        #[allow(clippy::cast_precision_loss)]
        let in_cores = |ticks: u64| ticks as f64 / per_core;
        Some(CpuUse {
            cores,
            busy: in_cores(total.saturating_sub(after.idle.saturating_sub(before.idle))),
            this_process: in_cores(after.this_process.saturating_sub(before.this_process)),
            // Backends that ended during the stretch are not counted: the benchmarks' pools keep
            // theirs.
            postgres: in_cores(after.postgres.saturating_sub(before.postgres)),
        })
    }
}

fn counters() -> Option<Counters> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: guest time is already in user.
    let total = cpu.iter().take(8).sum();
    let idle = cpu.get(3)? + cpu.get(4).copied().unwrap_or(0);
    let this_process = process_ticks("self")?.1;
    let postgres = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_str().is_some_and(is_pid))
        .filter_map(|entry| process_ticks(entry.file_name().to_str()?))
        .filter(|(command, _)| command == "postgres")
        .map(|(_, ticks)| ticks)
        .sum();
    Some(Counters {
        total,
        idle,
        this_process,
        postgres,
    })
}

fn is_pid(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_digit())
}

/// A process's command name and its user plus system time, from `/proc/<pid>/stat`.
fn process_ticks(pid: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command sits in parentheses and may itself hold spaces or parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let command = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // After the command: state (0), ..., utime (11), stime (12).
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((command, ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_this_process_spent_shows_in_its_share_and_the_machines() {
        let meter = CpuMeter::start();
        let ticks = || process_ticks("self").unwrap().1;
        let (from, give_up) = (
            ticks(),
            std::time::Instant::now() + std::time::Duration::from_secs(20),
        );
        // Half a second of CPU time of our own, however loaded the machine is: the kernel counts
        // a process's time and the machine's differently (its runtime, ticks sampled), and over
        // a few ticks the two differ by one or two.
        let mut spins = 0_u64;
        while ticks() < from + 50 && std::time::Instant::now() < give_up {
            for _ in 0..100_000 {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        let used = meter.stop().expect("/proc is readable on Linux");
        assert!(used.this_process > 0.0, "{used:?}");
        // The machine's counters include this process's time (up to that difference).
        assert!(used.busy >= 0.85 * used.this_process, "{used:?}");
        #[allow(clippy::cast_precision_loss)]
        let cores = used.cores as f64;
        assert!(used.busy <= cores + 0.01, "{used:?}");
    }

    #[test]
    fn a_command_with_parentheses_and_spaces_is_read_whole() {
        let (command, _) = process_ticks("self").unwrap();
        assert!(!command.is_empty());
        assert!(is_pid("123") && !is_pid("self") && !is_pid(""));
    }
}
