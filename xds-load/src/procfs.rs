//! Readings from `/proc`: a process's resident memory and CPU time (Linux only).

use std::time::Duration;

/// Clock ticks per second of `utime`/`stime` in `/proc/<pid>/stat` (`USER_HZ`, 100 on
/// every Linux this runs on).
const USER_HZ: u64 = 100;

/// The resident set (`VmRSS`) of `pid`, in KiB; `None` when the process is gone.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kb(&status)
}

/// User plus system CPU time `pid` has used so far; `None` when the process is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_time(&stat)
}

/// This process's CPU time so far.
pub fn own_cpu_time() -> Duration {
    cpu_time(std::process::id()).unwrap_or_default()
}

fn parse_rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn parse_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), utime and stime: 11 and 12 after the state (field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_cpu_lines() {
        let status = "Name:\txds-server\nVmPeak:\t  9000 kB\nVmRSS:\t   51234 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kb(status), Some(51234));
        assert_eq!(parse_rss_kb("Name: x\n"), None);
        let stat = "42 (xds (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_time(stat), Some(Duration::from_millis(3250)));
    }

    #[test]
    fn reads_this_process() {
        assert!(rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
        assert!(cpu_time(std::process::id()).is_some());
        assert_eq!(rss_kb(u32::MAX), None);
    }
}
