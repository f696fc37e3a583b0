//! `spawn_app`: a real gostint server (HTTPS, self-signed, SQLite in a temp dir) on the real
//! OpenBao and Docker engine, plus a small API client for the tests.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gostint_server::Server;
use gostint_test_support::{services, Requestor, Services};
use serde_json::{json, Value};

pub(crate) struct TestApp {
    pub(crate) server: Option<Server>,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) req: Requestor,
    pub(crate) svc: Services,
    _dir: tempfile::TempDir,
}

/// Starts a server with these extra settings, or `None` when the services are missing.
pub(crate) async fn spawn_app_with(extra: &[(&str, &str)]) -> Option<TestApp> {
    let svc = services()?;
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let db = dir.path().join("gostint.db");
    let mut env: HashMap<String, String> = [
        ("VAULT_ADDR", svc.vault_addr.as_str()),
        ("GOSTINT_ROLEID", svc.role_id.as_str()),
        ("GOSTINT_ROLENAME", svc.role_name.as_str()),
        ("GOSTINT_BIND", "127.0.0.1"),
        ("GOSTINT_PORT", "0"),
        ("GOSTINT_SSL_SELF_SIGNED", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("GOSTINT_SSL_CERT".into(), cert.to_string_lossy().into_owned());
    env.insert("GOSTINT_SSL_KEY".into(), key.to_string_lossy().into_owned());
    env.insert("GOSTINT_DBURL".into(), format!("sqlite://{}", db.display()));
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let settings = gostint_config::Settings::from_source(&env).expect("test settings");
    let server = gostint_server::start(&settings).await.expect("server starts");
    let url = server.url();
    let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if server.https {
        let pem = std::fs::read(&cert).expect("generated cert");
        http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"));
    }
    let http = http.build().expect("client");
    let req = Requestor::new(&svc);
    Some(TestApp { server: Some(server), url, http, req, svc, _dir: dir })
}

pub(crate) async fn spawn_app() -> Option<TestApp> {
    spawn_app_with(&[]).await
}

impl TestApp {
    /// POSTs a raw body with this token; returns (status, JSON body or text).
    pub(crate) async fn post_raw(&self, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut r = self.http.post(format!("{}/v1/api/job", self.url)).body(body);
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        let resp = r.send().await.expect("POST");
        let code = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// POSTs a plain-mode job (a fresh wrapped secret id is added unless the job has one).
    pub(crate) async fn submit(&self, token: &str, mut job: Value) -> String {
        if job.get("wrap_secret_id").is_none() {
            job["wrap_secret_id"] = json!(self.req.wrapped_secret_id().await);
        }
        let (code, body) = self.post_raw(Some(token), job.to_string()).await;
        assert_eq!(code, 200, "submit answered {body}");
        assert_eq!(body["status"], "queued");
        body["_id"].as_str().expect("_id").to_string()
    }

    pub(crate) async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut r = self.http.get(format!("{}{}", self.url, path));
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        let resp = r.send().await.expect("GET");
        let code = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Polls until the job's status is final (60 s at most).
    pub(crate) async fn wait(&self, token: &str, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let (code, job) = self.get(Some(token), &format!("/v1/api/job/{id}")).await;
            assert_eq!(code, 200, "{job}");
            let st = job["status"].as_str().unwrap_or_default().to_string();
            if ["success", "failed", "notauthorised", "unknown"].contains(&st.as_str()) {
                return job;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "job {id} still {st} after 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until the job reaches `want` (or a final status, which fails the test).
    pub(crate) async fn wait_status(&self, token: &str, id: &str, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let (_, job) = self.get(Some(token), &format!("/v1/api/job/{id}")).await;
            let st = job["status"].as_str().unwrap_or_default().to_string();
            if st == want {
                return job;
            }
            assert!(
                !["success", "failed", "notauthorised", "unknown"].contains(&st.as_str()),
                "job {id} ended {st} while waiting for {want}: {job}"
            );
            assert!(start.elapsed() < Duration::from_secs(60), "job {id} still {st}, never {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// Milliseconds since the epoch from the API's RFC 3339 text.
pub(crate) fn ms(v: &Value) -> i64 {
    let t = v.as_str().expect("timestamp string");
    let dt = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).expect("rfc3339");
    (dt.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A `gostint` binary run as a child process (signals, crashes, several nodes).
pub(crate) struct Node {
    pub(crate) url: String,
    child: Child,
    http: reqwest::Client,
    _state: Option<tempfile::TempDir>,
}

impl Node {
    /// The real binary on a free port, plain HTTP, SQLite at `db`.
    pub(crate) async fn start(app: &TestApp, db: &str, extra: &[(&str, &str)]) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gostint"));
        cmd.arg("serve")
            .env("VAULT_ADDR", &app.svc.vault_addr)
            .env("GOSTINT_ROLEID", &app.svc.role_id)
            .env("GOSTINT_ROLENAME", &app.svc.role_name)
            .env("GOSTINT_BIND", "127.0.0.1")
            .env("GOSTINT_PORT", port.to_string())
            .env("GOSTINT_PLAIN_HTTP", "1")
            .env("GOSTINT_DBURL", db)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // A shared database (PostgreSQL) means several nodes on this machine: each needs its
        // own state directory. With SQLite the database's directory is the node's.
        let state = db.starts_with("postgres").then(|| tempfile::tempdir().expect("state dir"));
        if let Some(dir) = &state {
            cmd.env("GOSTINT_STATE_DIR", dir.path());
        }
        // Job files in the test's own temporary directory: a node killed by a test (SIGKILL)
        // cannot remove its directory, and /dev/shm would keep it.
        let files_dir = match &state {
            Some(dir) => Some(dir.path().to_path_buf()),
            None => {
                db.strip_prefix("sqlite://").and_then(|p| std::path::Path::new(p).parent()).map(|p| p.to_path_buf())
            }
        };
        if let Some(dir) = files_dir {
            cmd.env("GOSTINT_JOB_FILES_DIR", dir);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("gostint binary starts");
        let node = Node { child, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), _state: state };
        let start = Instant::now();
        while node.health("state").await.is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "gostint did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        node
    }

    /// The node's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) async fn health(&self, key: &str) -> Option<String> {
        let r = self.http.get(format!("{}/v1/api/health?k={key}", self.url)).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }

    pub(crate) async fn submit(&self, app: &TestApp, token: &str, mut job: Value) -> String {
        job["wrap_secret_id"] = json!(app.req.wrapped_secret_id().await);
        let r = self
            .http
            .post(format!("{}/v1/api/job", self.url))
            .header("X-Auth-Token", token)
            .body(job.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["_id"].as_str().unwrap().to_string()
    }

    pub(crate) async fn job(&self, token: &str, id: &str) -> Value {
        self.http
            .get(format!("{}/v1/api/job/{id}", self.url))
            .header("X-Auth-Token", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn wait_status(&self, token: &str, id: &str, want: &str) {
        let start = Instant::now();
        while self.job(token, id).await["status"] != want {
            assert!(start.elapsed() < Duration::from_secs(30), "job {id} never {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit; returns its exit success and how long it took.
    pub(crate) fn wait_exit(mut self, limit: Duration) -> (bool, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.success(), start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("gostint did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One server-sent event and when it was read.
#[derive(Debug)]
pub(crate) struct SseEvent {
    pub(crate) name: String,
    pub(crate) data: String,
    pub(crate) at: Instant,
}

/// A reader of `GET /v1/api/job/{id}/stream` (the SSE wire format of crates/api/src/live.rs:
/// `event:`, `id:`, `data:` lines, comments starting with `:`, a blank line ending each).
pub(crate) struct Sse {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Sse {
    /// Opens the stream of job `id` on `base`; panics unless it answers 200 `text/event-stream`.
    pub(crate) async fn open(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Sse {
        let resp = http
            .get(format!("{base}/v1/api/job/{id}/stream"))
            .header("X-Auth-Token", token)
            .send()
            .await
            .expect("stream request");
        let code = resp.status();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        if code != 200 {
            let body = resp.text().await.unwrap_or_default();
            panic!("stream of {id} answered {code}: {body}");
        }
        assert_eq!(ctype, "text/event-stream", "stream content type");
        Sse { resp, buf: Vec::new() }
    }

    /// The next event (comments skipped), or `None` when the server closed the stream.
    pub(crate) async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block[..end]).into_owned();
                let (mut name, mut data) = (String::new(), Vec::new());
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v);
                    }
                }
                if name.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(SseEvent { name, data: data.join("\n"), at: Instant::now() });
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.buf.extend_from_slice(&bytes),
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

/// The resident set of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
