//! The real `gostint` binary as a child process: started on a fixed free port (so a restart
//! serves the same URL), plain HTTP, its log in the scenario's directory; signals by `kill`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::api::Api;
use crate::ctx::Ctx;

/// How a node is started; kept for restarts.
#[derive(Clone, Debug)]
pub struct NodeOpts {
    /// `GOSTINT_DBURL`.
    pub db: String,
    /// The listen port (127.0.0.1).
    pub port: u16,
    /// The node's directory: state (`GOSTINT_STATE_DIR`), job files, `node.log`.
    pub dir: PathBuf,
    /// Extra environment (`GOSTINT_DRAIN_TIMEOUT`, …).
    pub env: Vec<(String, String)>,
}

/// A free local port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl NodeOpts {
    /// A node on SQLite at `<dir>/gostint.db`.
    pub fn sqlite(dir: &Path) -> anyhow::Result<Self> {
        Self::with_db(dir, format!("sqlite://{}/gostint.db", dir.display()))
    }

    /// A node on this database URL (PostgreSQL: each node needs its own `dir`).
    pub fn with_db(dir: &Path, db: String) -> anyhow::Result<Self> {
        Ok(Self { db, port: free_port()?, dir: dir.to_path_buf(), env: Vec::new() })
    }

    /// One more environment variable.
    pub fn set(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_string(), v.into()));
        self
    }

    /// The URL the node serves.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A running (or exited) `gostint serve`.
pub struct Node {
    /// How it was started.
    pub opts: NodeOpts,
    child: tokio::process::Child,
    pid: u32,
    bin: PathBuf,
    vault: (String, String, String),
}

impl Node {
    /// Starts the binary and waits (60 s at most) until `/v1/api/health` answers.
    pub async fn start(ctx: &Ctx, opts: NodeOpts) -> anyhow::Result<Node> {
        let vault = (ctx.svc.vault_addr.clone(), ctx.svc.role_id.clone(), ctx.svc.role_name.clone());
        Self::spawn(ctx.bin.clone(), vault, opts).await
    }

    async fn spawn(bin: PathBuf, vault: (String, String, String), opts: NodeOpts) -> anyhow::Result<Node> {
        let state = opts.dir.join("state");
        std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(opts.dir.join("node.log"))
            .context("opening node.log")?;
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.arg("serve")
            .env("VAULT_ADDR", &vault.0)
            .env("GOSTINT_ROLEID", &vault.1)
            .env("GOSTINT_ROLENAME", &vault.2)
            .env("GOSTINT_BIND", "127.0.0.1")
            .env("GOSTINT_PORT", opts.port.to_string())
            .env("GOSTINT_PLAIN_HTTP", "1")
            .env("GOSTINT_DBURL", &opts.db)
            .env("GOSTINT_STATE_DIR", &state)
            // A SIGKILLed node cannot remove its job-files directory: keep it in ours.
            .env("GOSTINT_JOB_FILES_DIR", &state)
            .env_remove("RUST_LOG")
            .env_remove("GOSTINT_DEBUG")
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the child has no pid")?;
        let probe = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait()? {
                bail!("gostint exited at start ({st}); log: {}", tail(&opts.dir.join("node.log")));
            }
            if let Ok(r) = probe.get(format!("{}/v1/api/health?k=state", opts.url())).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("gostint did not answer within 60 s; log: {}", tail(&opts.dir.join("node.log")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Node { opts, child, pid, bin, vault })
    }

    /// Starts the same node again (same database, state directory and port); the previous
    /// process must have exited.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.try_wait()?.is_some(), "restart of a node still running");
        let n = Self::spawn(self.bin.clone(), self.vault.clone(), self.opts.clone()).await?;
        *self = n;
        Ok(())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The base URL.
    pub fn url(&self) -> String {
        self.opts.url()
    }

    /// A client of this node acting as the context's tenant.
    pub fn api(&self, ctx: &Ctx) -> anyhow::Result<Api> {
        Api::new(ctx, &self.url())
    }

    /// Sends a signal (`KILL`, `TERM`, `INT`, …) with kill(1).
    pub async fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let st = tokio::process::Command::new("kill")
            .args([format!("-{sig}"), self.pid.to_string()])
            .status()
            .await
            .context("kill(1)")?;
        anyhow::ensure!(st.success(), "kill -{sig} {} failed", self.pid);
        Ok(())
    }

    /// Waits for the process to exit (`limit` at most, then it is killed and this fails).
    pub async fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<(ExitStatus, Duration)> {
        let t0 = Instant::now();
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(st) => Ok((st?, t0.elapsed())),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("gostint did not exit within {limit:?}")
            }
        }
    }

    /// SIGKILL and reap.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        self.signal("KILL").await?;
        self.wait_exit(Duration::from_secs(10)).await?;
        Ok(())
    }

    /// SIGTERM and wait (at most `limit`).
    pub async fn stop(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        if self.child.try_wait()?.is_some() {
            return Ok(Duration::ZERO);
        }
        self.signal("TERM").await?;
        Ok(self.wait_exit(limit).await?.1)
    }

    /// The last lines of the node's log.
    pub fn log_tail(&self) -> String {
        tail(&self.opts.dir.join("node.log"))
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}
