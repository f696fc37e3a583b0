//! CPU pinning with `taskset` (util-linux): OpenBao on one core, the benchmark and gostint on
//! the other, as when Vault has a machine of its own. Undone when dropped.

use anyhow::Context;

/// OpenBao's pid, from `scripts/services` (`.dev/bao.pid`).
pub(crate) fn bao_pid() -> Option<u32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.dev/bao.pid");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// PostgreSQL's postmaster and its current children (the dev server of `scripts/services`);
/// backends forked later inherit the postmaster's CPUs.
pub(crate) fn postgres_pids() -> Vec<u32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.dev/pg/data/postmaster.pid");
    let Some(pm) = std::fs::read_to_string(path).ok().and_then(|s| s.lines().next()?.trim().parse::<u32>().ok()) else {
        return Vec::new();
    };
    let children = std::process::Command::new("pgrep")
        .args(["-P", &pm.to_string()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default();
    [vec![pm], children].concat()
}

fn taskset(cpus: &str, pid: u32) -> anyhow::Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .context("taskset (util-linux)")?;
    anyhow::ensure!(out.status.success(), "taskset -c {cpus} {pid}: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

/// Gives `pid` every online CPU (a run cut short may have left OpenBao pinned).
pub(crate) fn unpin(pid: u32) -> anyhow::Result<()> {
    taskset(&online(), pid)
}

/// Processes pinned to CPU lists; every one gets every CPU back on drop.
pub(crate) struct Pins(Vec<u32>);

impl Pins {
    pub(crate) fn apply(pins: &[(u32, &str)]) -> anyhow::Result<Self> {
        let mut done = Pins(Vec::new());
        for (pid, cpus) in pins {
            taskset(cpus, *pid)?;
            done.0.push(*pid);
        }
        Ok(done)
    }
}

/// Every online CPU (`0-1`), whatever this process is pinned to now.
pub(crate) fn online() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "0".into())
}

/// How many CPUs are online (not this process's share of them).
pub(crate) fn online_count() -> usize {
    online()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap_or(0).saturating_sub(a.parse().unwrap_or(0)) + 1,
            None => 1,
        })
        .sum()
}

impl Drop for Pins {
    fn drop(&mut self) {
        let all = online();
        for pid in &self.0 {
            if let Err(e) = taskset(&all, *pid) {
                eprintln!("could not give pid {pid} every CPU back: {e}");
            }
        }
    }
}
