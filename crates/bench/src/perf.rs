//! Optional profiles (`--perf`): `perf record` on a process (or the whole machine) during one
//! phase, summarised with `perf report`. The data file stays in the temp dir for a closer look.

use std::process::Stdio;
use std::time::Duration;

pub(crate) struct Perf {
    child: tokio::process::Child,
    file: std::path::PathBuf,
}

impl Perf {
    /// Starts sampling `pid` (or every CPU when `None`) if `enabled` and `perf` runs.
    pub(crate) fn start(enabled: bool, pid: Option<u32>, name: &str) -> Option<Self> {
        if !enabled {
            return None;
        }
        let file = std::env::temp_dir().join(format!("gostint-bench-{name}.perf.data"));
        let mut cmd = tokio::process::Command::new("perf");
        cmd.args(["record", "-F", "999", "-g", "-o"]).arg(&file);
        match pid {
            Some(p) => cmd.args(["-p", &p.to_string()]),
            None => cmd.arg("-a"),
        };
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().ok()?;
        std::thread::sleep(Duration::from_millis(300));
        Some(Self { child, file })
    }

    /// Stops sampling and prints the top of the profile sorted by `sort` (e.g. `dso,sym`).
    pub(crate) async fn report(mut self, sort: &str) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let out = tokio::process::Command::new("perf")
            .args(["report", "--stdio", "--no-children", "-g", "none", "--percent-limit", "1", "--sort", sort, "-i"])
            .arg(&self.file)
            .stderr(Stdio::null())
            .output()
            .await;
        println!("   perf profile ({}), self time, entries ≥ 1%:", self.file.display());
        if let Ok(o) = out {
            for line in String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .take(40)
            {
                println!("     {}", line.trim_end());
            }
        }
    }
}
