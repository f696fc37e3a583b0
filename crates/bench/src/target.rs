//! The gostint under test: in-process (`gostint_server::start`) or the release `gostint`
//! binary as a child process (for its own RSS and CPU time), and a requestor's HTTP client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gostint_test_support::{Requestor, Services};
use serde_json::{json, Value};

/// A requestor's view of one gostint: base URL, HTTP client, `X-Auth-Token`.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) token: String,
}

pub(crate) const FINAL: [&str; 4] = ["success", "failed", "notauthorised", "unknown"];

impl Target {
    fn new(url: String, cert_pem: Option<&[u8]>, token: String) -> anyhow::Result<Self> {
        let mut b = reqwest::Client::builder().pool_max_idle_per_host(256);
        if let Some(pem) = cert_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem)?);
        }
        Ok(Self { http: b.build()?, url, token })
    }

    /// `POST /v1/api/job`; the job id.
    pub(crate) async fn post(&self, job: &Value) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!("{}/v1/api/job", self.url))
            .header("X-Auth-Token", &self.token)
            .body(job.to_string())
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST answered {status}: {v}");
        }
        Ok(v["_id"].as_str().context("no _id")?.to_string())
    }

    /// The HTTP version the client and server agreed on.
    pub(crate) async fn version(&self) -> String {
        match self.http.get(format!("{}/v1/api/health?k=state", self.url)).send().await {
            Ok(r) => format!("{:?}", r.version()),
            Err(e) => format!("? ({e})"),
        }
    }

    /// `GET /v1/api/job/{id}` every `every` until final; an unsuccessful end is an error.
    pub(crate) async fn wait(&self, id: &str, every: Duration) -> anyhow::Result<Value> {
        let t = Instant::now();
        loop {
            let j: Value = self
                .http
                .get(format!("{}/v1/api/job/{id}", self.url))
                .header("X-Auth-Token", &self.token)
                .send()
                .await?
                .json()
                .await?;
            let st = j["status"].as_str().unwrap_or_default();
            if FINAL.contains(&st) {
                if st != "success" {
                    bail!("job {id} ended {st}: {}", j["output"]);
                }
                return Ok(j);
            }
            if t.elapsed() > Duration::from_secs(120) {
                bail!("job {id} not final after 120 s (status {st})");
            }
            tokio::time::sleep(every).await;
        }
    }

    pub(crate) async fn health(&self, k: &str) -> Option<String> {
        let r = self.http.get(format!("{}/v1/api/health?k={k}", self.url)).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }
}

/// A trivial job: the test image running `true`, plain mode.
pub(crate) fn trivial(svc: &Services, qname: &str, wrap: &str) -> Value {
    json!({"qname": qname, "container_image": svc.image, "run": ["true"], "wrap_secret_id": wrap})
}

fn settings(svc: &Services, dir: &Path, dburl: &str) -> anyhow::Result<gostint_config::Settings> {
    let mut m: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("VAULT_ADDR", svc.vault_addr.clone()),
        ("GOSTINT_ROLEID", svc.role_id.clone()),
        ("GOSTINT_ROLENAME", svc.role_name.clone()),
        ("GOSTINT_BIND", "127.0.0.1".into()),
        ("GOSTINT_PORT", "0".into()),
        ("GOSTINT_SSL_SELF_SIGNED", "1".into()),
        ("GOSTINT_SSL_CERT", dir.join("cert.pem").to_string_lossy().into_owned()),
        ("GOSTINT_SSL_KEY", dir.join("key.pem").to_string_lossy().into_owned()),
        ("GOSTINT_STATE_DIR", dir.join("state").to_string_lossy().into_owned()),
        ("GOSTINT_DBURL", dburl.to_string()),
    ] {
        m.insert(k.into(), v);
    }
    Ok(gostint_config::Settings::from_source(&m)?)
}

/// gostint started in this process over HTTPS (self-signed), SQLite in a temp dir unless
/// a database URL is given.
pub(crate) struct InProcess {
    pub(crate) svc: Services,
    pub(crate) req: Requestor,
    pub(crate) t: Target,
    pub(crate) server: gostint_server::Server,
    _dir: tempfile::TempDir,
}

impl InProcess {
    pub(crate) async fn start(svc: &Services, dburl: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = dburl.map(str::to_string).unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
        let server = gostint_server::start(&settings(svc, dir.path(), &db)?).await?;
        let pem = std::fs::read(dir.path().join("cert.pem"))?;
        let req = Requestor::new(svc);
        let token = req.token(None, &["default"]).await;
        let t = Target::new(server.url(), Some(&pem), token)?;
        Ok(Self { svc: svc.clone(), req, t, server, _dir: dir })
    }

    /// The server's self-signed certificate (PEM), for clients that must trust it.
    pub(crate) fn cert(&self) -> PathBuf {
        self._dir.path().join("cert.pem")
    }

    /// Response-wrapped secret ids, made before a timed section.
    pub(crate) async fn wraps(&self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.req.wrapped_secret_id().await);
        }
        out
    }
}

/// The `gostint-client` binary beside this one (same profile).
pub(crate) fn client_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.parent().context("exe dir")?.join("gostint-client");
    anyhow::ensure!(bin.exists(), "{} not built (cargo build -p gostint-client)", bin.display());
    Ok(bin)
}

/// The release `gostint` binary beside this one.
pub(crate) fn gostint_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.parent().context("exe dir")?.join("gostint");
    anyhow::ensure!(bin.exists(), "{} not built (cargo build --release --bin gostint)", bin.display());
    Ok(bin)
}

/// The `gostint` binary as a child process (JSON logs at the default `info` level go to
/// /dev/null, as a deployment would write them somewhere).
pub(crate) struct Child {
    child: tokio::process::Child,
    pub(crate) t: Target,
}

impl Child {
    pub(crate) async fn start(
        svc: &Services,
        dburl: &str,
        state: &Path,
        https: bool,
        envs: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        Self::start_bin(&gostint_bin()?, svc, dburl, state, https, envs).await
    }

    /// As [`Child::start`], with another `gostint` binary (another build of it).
    pub(crate) async fn start_bin(
        bin: &Path,
        svc: &Services,
        dburl: &str,
        state: &Path,
        https: bool,
        envs: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let (cert, key) = (state.join("cert.pem"), state.join("key.pem"));
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .env("VAULT_ADDR", &svc.vault_addr)
            .env("GOSTINT_ROLEID", &svc.role_id)
            .env("GOSTINT_ROLENAME", &svc.role_name)
            .env("GOSTINT_BIND", "127.0.0.1")
            .env("GOSTINT_PORT", port.to_string())
            .env("GOSTINT_PLAIN_HTTP", if https { "0" } else { "1" })
            .env("GOSTINT_SSL_SELF_SIGNED", "1")
            .env("GOSTINT_SSL_CERT", &cert)
            .env("GOSTINT_SSL_KEY", &key)
            .env("GOSTINT_DBURL", dburl)
            .env("GOSTINT_STATE_DIR", state.join("state"))
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("RUST_LOG")
            .env_remove("GOSTINT_DEBUG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let scheme = if https { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{port}");
        let t0 = Instant::now();
        loop {
            let pem = if https { std::fs::read(&cert).ok() } else { None };
            if !https || pem.is_some() {
                let t = Target::new(url.clone(), pem.as_deref(), String::new())?;
                if t.health("state").await.is_some() {
                    return Ok(Self { child, t });
                }
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "gostint child did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub(crate) fn rss_mib(&self) -> f64 {
        self.pid().and_then(rss_mib).unwrap_or(f64::NAN)
    }

    /// Open file descriptors (sockets mostly).
    pub(crate) fn fds(&self) -> usize {
        self.pid().and_then(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok()).map(|d| d.count()).unwrap_or(0)
    }

    /// Threads.
    pub(crate) fn threads(&self) -> usize {
        self.pid()
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    pub(crate) async fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = tokio::process::Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().await;
        }
    }

    /// SIGINT: the node drains (claims nothing more) and keeps serving.
    pub(crate) async fn drain(&self) -> anyhow::Result<()> {
        self.signal("INT").await;
        let t = Instant::now();
        while self.t.health("state").await.as_deref() != Some("draining") {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(10), "gostint child did not start draining");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub(crate) async fn stop(mut self) {
        self.signal("TERM").await;
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

pub(crate) fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
