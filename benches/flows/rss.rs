//! The server process's resident memory over time, and CPU time spent, from /proc.

use std::time::{Duration, Instant};

/// One reading: seconds since the run started, VmRSS in kB.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the start of the run.
    pub at: f64,
    /// Resident set size in kB.
    pub kb: u64,
}

/// VmRSS of a process in kB, if it can be read.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// Sample every `every` until `until`, measuring time from `start`.
pub async fn sample(pid: u32, start: Instant, until: Instant, every: Duration) -> Vec<Sample> {
    let mut samples = Vec::new();
    loop {
        if let Some(kb) = rss_kb(pid) {
            samples.push(Sample {
                at: start.elapsed().as_secs_f64(),
                kb,
            });
        }
        if Instant::now() >= until {
            return samples;
        }
        tokio::time::sleep(every.min(until.saturating_duration_since(Instant::now()))).await;
    }
}

/// CPU time (user + system) a process has used, in seconds; `None` when unreadable.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some((ticks(11)? + ticks(12)?) / clock_ticks_per_second())
}

/// The kernel's clock ticks per second for /proc times (100 on Linux unless changed).
fn clock_ticks_per_second() -> f64 {
    100.0
}
