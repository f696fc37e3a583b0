//! The `gostint` binary under signals: SIGINT drains, SIGTERM drains then exits (killing what
//! outlives the drain limit, recorded), SIGKILL is recovered at the next start.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{spawn_app_with, Node, TestApp};

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
    let running = node
        .submit(
            &helper,
            &token,
            json!({"qname": "d1", "container_image": helper.svc.image, "run": ["sh", "-c", "sleep 3; echo done"]}),
        )
        .await;
    node.wait_status(&token, &running, "running").await;

    node.signal("-INT");
    let start = Instant::now();
    while node.health("state").await.as_deref() != Some("draining") {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(node.health("node_running_jobs").await.as_deref(), Some("1"));
    let waiting = node
        .submit(&helper, &token, json!({"qname": "d2", "container_image": helper.svc.image, "run": ["echo", "later"]}))
        .await;
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
    let id = node
        .submit(
            &helper,
            &token,
            json!({"container_image": helper.svc.image, "run": ["sh", "-c", "echo begun; sleep 60"]}),
        )
        .await;
    node.wait_status(&token, &id, "running").await;
    // Wait until the container has really printed (a loaded machine may take a while).
    let start = Instant::now();
    loop {
        let cid = node.job(&token, &id).await["container_id"].as_str().unwrap_or_default().to_string();
        if !cid.is_empty() {
            let logs = Command::new("docker").args(["logs", &cid]).output().unwrap();
            if String::from_utf8_lossy(&logs.stdout).contains("begun") {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the job never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.signal("-TERM");
    let (ok, took) = node.wait_exit(Duration::from_secs(30));
    assert!(ok);
    assert!(took < Duration::from_secs(15), "{took:?}");
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
    let id = node
        .submit(&helper, &token, json!({"qname": "c", "container_image": helper.svc.image, "run": ["sleep", "60"]}))
        .await;
    let next = node
        .submit(&helper, &token, json!({"qname": "c", "container_image": helper.svc.image, "run": ["echo", "next"]}))
        .await;
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
    let left =
        Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=gostint.job_id={id}")]).output().unwrap();
    assert!(left.stdout.is_empty(), "the dead node's container was removed");
    assert_eq!(app.wait(&token, &next).await["output"], "next\n", "its queue moved on");
    app.stop().await;
}
