//! The `gostint` binary under signals: SIGINT drains, SIGTERM drains then exits (killing what
//! outlives the drain limit, recorded), SIGKILL is recovered at the next start.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{spawn_app_with, TestApp};

struct Node {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Node {
    /// The real binary on a free port, plain HTTP, SQLite at `db`.
    async fn start(app: &TestApp, db: &str, extra: &[(&str, &str)]) -> Node {
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
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("gostint binary starts");
        let node = Node { child, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        let start = Instant::now();
        while node.health("state").await.is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "gostint did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        node
    }

    async fn health(&self, key: &str) -> Option<String> {
        let r = self.http.get(format!("{}/v1/api/health?k={key}", self.url)).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }

    async fn submit(&self, app: &TestApp, token: &str, mut job: Value) -> String {
        job["wrap_secret_id"] = json!(app.req.wrapped_secret_id().await);
        let r = self.http.post(format!("{}/v1/api/job", self.url)).header("X-Auth-Token", token).body(job.to_string()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["_id"].as_str().unwrap().to_string()
    }

    async fn job(&self, token: &str, id: &str) -> Value {
        self.http.get(format!("{}/v1/api/job/{id}", self.url)).header("X-Auth-Token", token).send().await.unwrap().json().await.unwrap()
    }

    async fn wait_status(&self, token: &str, id: &str, want: &str) {
        let start = Instant::now();
        while self.job(token, id).await["status"] != want {
            assert!(start.elapsed() < Duration::from_secs(30), "job {id} never {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit; returns its exit success and how long it took.
    fn wait_exit(mut self, limit: Duration) -> (bool, Duration) {
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

/// An in-process app used only as the requestor and, later, to read the same database.
async fn reader(db: &str) -> Option<TestApp> {
    spawn_app_with(&[("GOSTINT_DBURL", db)]).await
}

#[tokio::test]
async fn sigint_drains_and_sigterm_exits_after_the_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/drain.db", dir.path().display());
    // The helper app only lends its requestor; it uses its own database.
    let Some(helper) = spawn_app_with(&[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let node = Node::start(&helper, &db, &[]).await;
    let running = node.submit(&helper, &token, json!({"qname": "d1", "container_image": helper.svc.image, "run": ["sh", "-c", "sleep 3; echo done"]})).await;
    node.wait_status(&token, &running, "running").await;

    node.signal("-INT");
    let start = Instant::now();
    while node.health("state").await.as_deref() != Some("draining") {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(node.health("node_running_jobs").await.as_deref(), Some("1"));
    let waiting = node.submit(&helper, &token, json!({"qname": "d2", "container_image": helper.svc.image, "run": ["echo", "later"]})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(node.job(&token, &waiting).await["status"], "queued", "a draining node claims nothing");

    node.signal("-TERM");
    let (ok, took) = node.wait_exit(Duration::from_secs(30));
    assert!(ok, "clean exit");
    assert!(took < Duration::from_secs(10), "exited once the job ended ({took:?})");
    helper.stop().await;

    // The next start on the same database finds the first job done and runs the second.
    let Some(app) = reader(&db).await else { return };
    let j = app.wait(&token, &running).await;
    assert_eq!((j["status"].as_str(), j["output"].as_str()), (Some("success"), Some("done\n")), "{j}");
    let j = app.wait(&token, &waiting).await;
    assert_eq!(j["output"], "later\n");
    app.stop().await;
}

#[tokio::test]
async fn sigterm_past_the_drain_limit_kills_and_records_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/drain.db", dir.path().display());
    let Some(helper) = spawn_app_with(&[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let node = Node::start(&helper, &db, &[("GOSTINT_DRAIN_TIMEOUT", "1s"), ("GOSTINT_KILL_GRACE", "1s")]).await;
    let id = node.submit(&helper, &token, json!({"container_image": helper.svc.image, "run": ["sh", "-c", "echo begun; sleep 60"]})).await;
    node.wait_status(&token, &id, "running").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    node.signal("-TERM");
    let (ok, took) = node.wait_exit(Duration::from_secs(30));
    assert!(ok);
    assert!(took < Duration::from_secs(10), "{took:?}");
    helper.stop().await;

    let Some(app) = reader(&db).await else { return };
    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["output"], "begun\n\ngostint node shutting down: job killed");
    app.stop().await;
}

#[tokio::test]
async fn a_crashed_node_is_recovered_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/crash.db", dir.path().display());
    let Some(helper) = spawn_app_with(&[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let node = Node::start(&helper, &db, &[]).await;
    let id = node.submit(&helper, &token, json!({"qname": "c", "container_image": helper.svc.image, "run": ["sleep", "60"]})).await;
    let next = node.submit(&helper, &token, json!({"qname": "c", "container_image": helper.svc.image, "run": ["echo", "next"]})).await;
    let start = Instant::now();
    while node.job(&token, &id).await["container_id"] == "" {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead_node = node.job(&token, &id).await["node_uuid"].as_str().unwrap().to_string();
    node.signal("-KILL");
    node.wait_exit(Duration::from_secs(10));
    helper.stop().await;

    let Some(app) = reader(&db).await else { return };
    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "unknown", "{j}");
    assert_eq!(j["output"], format!("gostint node {dead_node} stopped reporting; outcome unknown"));
    assert_ne!(j["ended"], "0001-01-01T00:00:00Z");
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=gostint.job_id={id}")])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "the dead node's container was removed");
    assert_eq!(app.wait(&token, &next).await["output"], "next\n", "its queue moved on");
    app.stop().await;
}
