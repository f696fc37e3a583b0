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
