//! CPU accounting from `/proc`: where the cycles of a phase went, per process group and for
//! the whole machine (so load from other work on the same cores shows up in the report).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `(comm, own cpu s, reaped children's cpu s)` of one process.
fn proc_stat(pid: u32) -> Option<(String, f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields after the comm start at field 3 (state); utime is field 14.
    let f: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let tck = clk_tck();
    Some((comm, (num(14) + num(15)) / tck, (num(16) + num(17)) / tck))
}

fn machine() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = text.lines().next().unwrap_or_default();
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|s| s.parse().ok()).collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    let tck = clk_tck();
    ((total - idle) / tck, total / tck)
}

/// A snapshot of every process's CPU time.
pub(crate) struct Snap {
    at: Instant,
    procs: HashMap<u32, (String, f64, f64)>,
    busy: f64,
}

pub(crate) fn snap() -> Snap {
    let mut procs = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some(s) = proc_stat(pid) {
                    procs.insert(pid, s);
                }
            }
        }
    }
    let (busy, _) = machine();
    Snap { at: Instant::now(), procs, busy }
}

/// CPU seconds per group between two snapshots.
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage {
    pub(crate) wall: f64,
    /// Whole machine (every core), from /proc/stat.
    pub(crate) machine: f64,
    pub(crate) groups: Vec<(String, f64)>,
}

/// The process groups the report names. `me` is this bench process; `server` a gostint
/// child, if any. A named process's reaped children count with it (dockerd's `docker-tar`
/// and `docker-untar` re-execs); this process's children (the `docker run` CLIs) are shown
/// on their own line; short-lived processes reaped by anything else (containerd shims and
/// their runc, reaped by init; other people's compilers) end up in "exited processes": the
/// machine's busy time minus everything named.
fn group(pid: u32, comm: &str, me: u32, server: Option<u32>) -> &'static str {
    if pid == me {
        return "gostint-bench";
    }
    if Some(pid) == server {
        return "gostint (child)";
    }
    match comm {
        "dockerd" => "dockerd",
        "containerd" => "containerd",
        c if c.starts_with("containerd-shim") => "containerd-shim",
        "bao" | "vault" => "OpenBao",
        "postgres" => "PostgreSQL",
        "fuse-overlayfs" => "fuse-overlayfs",
        _ => "other processes",
    }
}

impl Snap {
    /// What happened since `self`, grouped.
    pub(crate) fn since(&self, server: Option<u32>) -> Usage {
        let now = snap();
        let me = std::process::id();
        let mut g: HashMap<&'static str, f64> = HashMap::new();
        for (pid, (comm, own, kids)) in &now.procs {
            let (own0, kids0) = self.procs.get(pid).map(|(_, o, k)| (*o, *k)).unwrap_or((0.0, 0.0));
            let name = group(*pid, comm, me, server);
            if *pid == me {
                *g.entry(name).or_default() += own - own0;
                *g.entry("docker CLI").or_default() += kids - kids0;
            } else if name == "other processes" {
                // A shell's reaped children (a whole `cargo test`) land in one interval:
                // count only what other processes spent themselves.
                *g.entry(name).or_default() += own - own0;
            } else {
                *g.entry(name).or_default() += (own - own0) + (kids - kids0);
            }
        }
        let known: f64 = g.values().sum();
        let machine = now.busy - self.busy;
        g.insert("exited processes", (machine - known).max(0.0));
        let mut groups: Vec<(String, f64)> =
            g.into_iter().filter(|(_, v)| *v > 0.005).map(|(k, v)| (k.to_string(), v)).collect();
        groups.sort_by(|a, b| b.1.total_cmp(&a.1));
        Usage { wall: now.at.duration_since(self.at).as_secs_f64(), machine, groups }
    }
}

impl Usage {
    pub(crate) fn add(&mut self, other: &Usage) {
        self.wall += other.wall;
        self.machine += other.machine;
        for (k, v) in &other.groups {
            match self.groups.iter_mut().find(|(n, _)| n == k) {
                Some((_, x)) => *x += v,
                None => self.groups.push((k.clone(), *v)),
            }
        }
        self.groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    }

    /// CPU seconds of the benchmark's own processes (client, gostint, OpenBao, PostgreSQL),
    /// leaving out other work on the machine.
    pub(crate) fn own(&self) -> f64 {
        ["gostint-bench", "gostint (child)", "OpenBao", "PostgreSQL", "docker CLI"].iter().map(|g| self.get(g)).sum()
    }

    pub(crate) fn get(&self, name: &str) -> f64 {
        self.groups.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(0.0)
    }

    /// "machine 1.9 cores busy; dockerd 12.3 ms/job, …" with `per` units of work.
    pub(crate) fn describe(&self, per: f64, unit: &str) -> String {
        let mut s = format!(
            "machine {:.2} of {} cores busy, {:.2} ms CPU/{unit}:",
            self.machine / self.wall.max(1e-9),
            crate::pin::online_count(),
            self.machine * 1000.0 / per
        );
        for (k, v) in &self.groups {
            let each = v * 1000.0 / per;
            if each >= 0.005 {
                s.push_str(&format!(" {k} {each:.2};"));
            }
        }
        s
    }
}
