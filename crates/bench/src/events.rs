//! Container lifecycle times from `docker events` (nanosecond stamps taken by the engine),
//! for gostint's job containers (label `gostint.job_id`) and the baseline's `docker run`
//! containers (label `gostint.bench`).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncBufReadExt;

/// One container's events, milliseconds since the epoch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Container {
    pub(crate) job: String,
    pub(crate) bench: String,
    pub(crate) at: HashMap<String, f64>,
}

impl Container {
    pub(crate) fn t(&self, action: &str) -> f64 {
        self.at.get(action).copied().unwrap_or(f64::NAN)
    }
}

type Seen = Arc<Mutex<HashMap<String, Container>>>;

/// A running `docker events` reader.
pub(crate) struct Events {
    _child: tokio::process::Child,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Events {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new("docker")
            .args([
                "events",
                "--filter",
                "type=container",
                "--format",
                "{{.TimeNano}} {{.Action}} {{.Actor.ID}} j={{index .Actor.Attributes \"gostint.job_id\"}} b={{index .Actor.Attributes \"gostint.bench\"}}",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting docker events")?;
        let stdout = child.stdout.take().context("docker events stdout")?;
        let seen: Seen = Arc::default();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let f: Vec<&str> = line.split(' ').collect();
                let (Some(ns), Some(action), Some(id)) = (f.first(), f.get(1), f.get(2)) else { continue };
                let Ok(ns) = ns.parse::<f64>() else { continue };
                let job = f.get(3).and_then(|s| s.strip_prefix("j=")).unwrap_or("");
                let bench = f.get(4).and_then(|s| s.strip_prefix("b=")).unwrap_or("");
                if job.is_empty() && bench.is_empty() {
                    continue;
                }
                let mut map = sink.lock().expect("events lock");
                let c = map.entry(id.to_string()).or_default();
                c.job = job.to_string();
                c.bench = bench.to_string();
                // `exec_*` and the like carry a suffix; keep the first time of each action.
                let action = action.split(':').next().unwrap_or(action).to_string();
                c.at.entry(action).or_insert(ns / 1e6);
            }
        });
        // `docker events` streams from its start; give it a moment to subscribe.
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(Self { _child: child, seen, task })
    }

    fn find(&self, f: impl Fn(&Container) -> bool) -> Option<Container> {
        self.seen.lock().expect("events lock").values().find(|c| f(c)).cloned()
    }

    pub(crate) fn job(&self, job: &str) -> Option<Container> {
        self.find(|c| c.job == job)
    }

    pub(crate) fn bench(&self, label: &str) -> Option<Container> {
        self.find(|c| c.bench == label)
    }

    /// Waits (up to `limit`) until every one of these jobs' containers is destroyed: the
    /// clean-up gostint does after recording a job must not land in the next measurement.
    pub(crate) async fn settle(&self, jobs: &[String], limit: Duration) -> bool {
        let t = Instant::now();
        loop {
            let done = {
                let map = self.seen.lock().expect("events lock");
                jobs.iter().all(|j| map.values().any(|c| &c.job == j && c.at.contains_key("destroy")))
            };
            if done {
                // The job token's revocation follows the removal.
                tokio::time::sleep(Duration::from_millis(30)).await;
                return true;
            }
            if t.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
