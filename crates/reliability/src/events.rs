//! Container starts per gostint job, from `docker events` (label `gostint.job_id`): a job
//! whose container started more than once ran twice (a duplicate).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::AsyncBufReadExt;

/// A running `docker events` reader, replaying from the second it was started.
pub struct Starts {
    _child: tokio::process::Child,
    seen: Arc<Mutex<HashMap<String, u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Starts {
    /// Starts `docker events --since now` for container `start` events.
    pub async fn start() -> anyhow::Result<Self> {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs().saturating_sub(1);
        let mut child = tokio::process::Command::new("docker")
            .args([
                "events",
                "--since",
                &since.to_string(),
                "--filter",
                "type=container",
                "--filter",
                "event=start",
                "--filter",
                "label=gostint.job_id",
                "--format",
                "{{index .Actor.Attributes \"gostint.job_id\"}}",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting docker events")?;
        let stdout = child.stdout.take().context("docker events stdout")?;
        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let id = line.trim();
                if !id.is_empty() {
                    if let Ok(mut m) = sink.lock() {
                        *m.entry(id.to_string()).or_default() += 1;
                    }
                }
            }
        });
        Ok(Self { _child: child, seen, task })
    }

    /// How many times this job's container started.
    pub fn count(&self, job: &str) -> u32 {
        self.seen.lock().map(|m| m.get(job).copied().unwrap_or(0)).unwrap_or(0)
    }
}

impl Drop for Starts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Containers labelled with this job id (running or not).
pub async fn containers_of(job: &str) -> anyhow::Result<Vec<String>> {
    let out = tokio::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=gostint.job_id={job}")])
        .output()
        .await
        .context("docker ps")?;
    anyhow::ensure!(out.status.success(), "docker ps: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect())
}

/// Removes the containers of these jobs (a scenario's clean-up after a failure).
pub async fn remove_containers_of(jobs: &[String]) {
    for j in jobs {
        if let Ok(cs) = containers_of(j).await {
            for c in cs {
                let _ = tokio::process::Command::new("docker").args(["rm", "-f", &c]).output().await;
            }
        }
    }
}
