//! The server process's resident memory over time, from /proc/PID/status.

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
