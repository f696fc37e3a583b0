//! RSS (`/proc/PID/status` VmRSS) and open descriptors (`/proc/PID/fd`) of a node: before,
//! the peak (a background sampler every 100 ms, following the node across restarts) and after.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Res {
    /// Resident set size, MiB.
    pub rss_mib: f64,
    /// Open file descriptors.
    pub fds: usize,
}

/// RSS and descriptors of `pid` now, if the process exists.
pub fn sample(pid: u32) -> Option<Res> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Res { rss_mib: kb / 1024.0, fds })
}

/// A background sampler of one node.
pub struct Sampler {
    pid: Arc<AtomicU32>,
    /// The first sample.
    pub before: Res,
    peak: Arc<Mutex<Res>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Samples `pid` now (before) and every 100 ms from now on.
    pub fn start(pid: u32) -> Self {
        let before = sample(pid).unwrap_or_default();
        let peak = Arc::new(Mutex::new(before));
        let cell = Arc::new(AtomicU32::new(pid));
        let (p, c) = (peak.clone(), cell.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let (Some(s), Ok(mut m)) = (sample(c.load(Ordering::Relaxed)), p.lock()) {
                    m.rss_mib = m.rss_mib.max(s.rss_mib);
                    m.fds = m.fds.max(s.fds);
                }
            }
        });
        Self { pid: cell, before, peak, task }
    }

    /// Follows another process (the node restarted).
    pub fn follow(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
    }

    /// The peak so far.
    pub fn peak(&self) -> Res {
        self.peak.lock().map(|m| *m).unwrap_or_default()
    }

    /// Stops; (before, peak, after) where after is sampled now.
    pub fn finish(self) -> (Res, Res, Res) {
        self.task.abort();
        let after = sample(self.pid.load(Ordering::Relaxed)).unwrap_or_default();
        let peak = self.peak();
        let peak = Res { rss_mib: peak.rss_mib.max(after.rss_mib), fds: peak.fds.max(after.fds) };
        (self.before, peak, after)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
