//! Issue 16 (reliability), against the real engine, OpenBao and store: a job's container
//! removed from outside gostint.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::spawn_app;

/// Issue 16, item 4: after `docker rm -f` of a running job's container, the job ends `failed`
/// with return code -1, the output streamed so far, and a clear message (before: `failed`, 0,
/// the output lost).
#[tokio::test]
async fn a_container_removed_from_outside_ends_failed_with_its_output_and_a_message() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let id = app
        .submit(&token, json!({"container_image": app.svc.image, "run": ["sh", "-c", "echo begun; sleep 120"]}))
        .await;
    app.wait_status(&token, &id, "running").await;
    // Wait until the output has streamed into the store (a loaded machine may take a while).
    let start = Instant::now();
    let cid = loop {
        let (_, j) = app.get(Some(&token), &format!("/v1/api/job/{id}")).await;
        let cid = j["container_id"].as_str().unwrap_or_default().to_string();
        if !cid.is_empty() && j["output"] == "begun\n" {
            break cid;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the job never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rm = Command::new("docker").args(["rm", "-f", &cid]).output().unwrap();
    assert!(rm.status.success(), "{}", String::from_utf8_lossy(&rm.stderr));

    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["return_code"], -1, "{j}");
    assert_eq!(j["output"], format!("begun\n\n{}", gostint_worker::pipeline::REMOVED_FROM_OUTSIDE), "{j}");
    app.stop().await;
}

/// Issue 16, item 6: a node SIGKILLed while its job runs; the job's container exits while the
/// node is down. At the next start the job gets its real status and return code (and the
/// output it had streamed) instead of `unknown`; a job whose container still runs stays
/// `unknown` (before: both `unknown`, both containers deleted).
#[tokio::test]
async fn an_exited_container_of_a_crashed_node_gives_its_job_the_real_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/crash.db", dir.path().display());
    let Some(helper) = crate::support::spawn_app_with(&[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let node = crate::support::Node::start(&helper, &db, &[]).await;
    let quick = node
        .submit(
            &helper,
            &token,
            json!({"qname": "q1", "container_image": helper.svc.image, "run": ["sh", "-c", "echo out; sleep 3; exit 3"]}),
        )
        .await;
    let slow = node
        .submit(&helper, &token, json!({"qname": "q2", "container_image": helper.svc.image, "run": ["sleep", "300"]}))
        .await;
    // Both run, and the quick one's output has streamed into the store.
    let start = Instant::now();
    let quick_cid = loop {
        let q = node.job(&token, &quick).await;
        let s = node.job(&token, &slow).await;
        if q["output"] == "out\n" && s["container_id"] != "" {
            break q["container_id"].as_str().unwrap().to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the jobs never ran: {q} {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    node.signal("-KILL");
    node.wait_exit(Duration::from_secs(10));
    helper.stop().await;
    // The quick job's container exits while no node runs.
    let start = Instant::now();
    loop {
        let st = Command::new("docker").args(["inspect", "-f", "{{.State.Running}}", &quick_cid]).output().unwrap();
        if String::from_utf8_lossy(&st.stdout).trim() == "false" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the quick container never exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let Some(app) = crate::support::spawn_app_with(&[("GOSTINT_DBURL", &db)]).await else { return };
    let j = app.wait(&token, &quick).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["return_code"], 3, "{j}");
    assert_eq!(j["output"], format!("out\n\n{}", gostint_server::RECOVERED_NOTE), "{j}");
    let s = app.wait(&token, &slow).await;
    assert_eq!(s["status"], "unknown", "{s}");
    for id in [&quick, &slow] {
        let left = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=gostint.job_id={id}")])
            .output()
            .unwrap();
        assert!(left.stdout.is_empty(), "the dead node's containers were removed");
    }
    app.stop().await;
}

/// Issue 16, item 3: SIGTERM with a drain limit shorter than the kill grace: the process exits
/// after about the drain timeout (the shutdown's stop grace is part of it), not the drain
/// timeout plus the whole kill grace (before: 2 s + 30 s here, a job that ignores SIGTERM).
#[tokio::test]
async fn sigterm_exits_after_about_the_drain_timeout_not_plus_the_kill_grace() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/drain.db", dir.path().display());
    let Some(helper) = crate::support::spawn_app_with(&[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let node =
        crate::support::Node::start(&helper, &db, &[("GOSTINT_DRAIN_TIMEOUT", "4s"), ("GOSTINT_KILL_GRACE", "30s")])
            .await;
    let id = node
        .submit(
            &helper,
            &token,
            json!({"container_image": helper.svc.image, "run": ["sh", "-c", "trap '' TERM; echo begun; while true; do sleep 1; done"]}),
        )
        .await;
    let start = Instant::now();
    while node.job(&token, &id).await["output"] != "begun\n" {
        assert!(start.elapsed() < Duration::from_secs(60), "the job never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.signal("-TERM");
    let (ok, took) = node.wait_exit(Duration::from_secs(60));
    assert!(ok, "clean exit");
    assert!(took >= Duration::from_secs(3), "the jobs had the drain time ({took:?})");
    assert!(took < Duration::from_secs(15), "exited {took:?} after SIGTERM with a 4 s drain limit");
    helper.stop().await;

    let Some(app) = crate::support::spawn_app_with(&[("GOSTINT_DBURL", &db)]).await else { return };
    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["output"], "begun\n\ngostint node shutting down: job killed", "{j}");
    app.stop().await;
}
