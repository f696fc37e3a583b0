//! CPU pinning with `taskset` (util-linux): OpenBao on one core, the benchmark and gostint on
//! the other, as when Vault has a machine of its own. Undone when dropped.

use anyhow::Context;

/// OpenBao's pid, from `scripts/services` (`.dev/bao.pid`).
pub(crate) fn bao_pid() -> Option<u32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.dev/bao.pid");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn taskset(cpus: &str, pid: u32) -> anyhow::Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .context("taskset (util-linux)")?;
    anyhow::ensure!(out.status.success(), "taskset -c {cpus} {pid}: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
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

impl Drop for Pins {
    fn drop(&mut self) {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let all = format!("0-{}", n.saturating_sub(1));
        for pid in &self.0 {
            let _ = taskset(&all, *pid);
        }
    }
}
