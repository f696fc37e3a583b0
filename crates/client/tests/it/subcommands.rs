//! `status`, `list`, `kill`, `delete`, and which jobs a requestor's token sees.

use std::process::Stdio;

use serde_json::Value;

use crate::support::{env, made_accessors, text, Who};

#[tokio::test]
async fn status_list_kill_and_delete_follow_a_job_run_submitted_with_the_same_approle() {
    let Some(e) = env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let who = e.requestor_approle(dir.path()).await;
    let out =
        e.client(&who, &["-qname", "sub", "-image", &e.svc.image, "-run", r#"["sleep","30"]"#, "-wait=false"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["_id"].as_str().unwrap().to_string();

    // Another login with the same AppRole: the same entity, so the same tenant.
    let out = e.client(&who, &["status", &id, "-debug"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(text(&out.stdout).starts_with(&format!("id:             {id}\n")), "{}", text(&out.stdout));
    let made = made_accessors(&err);
    assert_eq!(made.len(), 1, "only the login token: {err}");
    e.assert_revoked(&made).await;

    let out = e.client(&who, &["list", "--json"]).await;
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["data"][0]["_id"], id.as_str());
    let out = e.client(&who, &["list"]).await;
    let table = text(&out.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&id) && table.contains("jobs 1-1 of 1"), "{table}");

    let running = e.status_until(&who, &id, |j| j["status"] == "running" && j["container_id"] != "").await;
    assert_eq!(running["status"], "running", "{running}");
    let out = e.client(&who, &["kill", &id, "--json"]).await;
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["kill_requested"], true, "{reply}");
    assert_eq!(reply["status"], "running");
    let ended = e.status_until(&who, &id, |j| j["status"] == "failed").await;
    assert_eq!(ended["status"], "failed", "{ended}");

    let out = e.client(&who, &["delete", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("deleted job {id}\n"));
    let out = e.client(&who, &["status", &id]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does not exist, or belongs to another tenant"), "{}", text(&out.stderr));

    let out = e.client(&who, &["status", "not-an-id"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a job id"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_bare_token_without_an_entity_does_not_see_what_run_submitted_but_root_does() {
    let Some(e) = env() else { return };
    // The documented trade-off: `run` submits with a fresh child API token, whose accessor
    // is its tenant when there is no entity.
    let who = Who::Token(e.requestor_token().await);
    let out = e.client(&who, &["-image", &e.svc.image, "-run", r#"["true"]"#, "-wait=false"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["_id"].as_str().unwrap().to_string();
    let out = e.client(&who, &["status", &id]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let root = Who::Token(e.svc.root_token.clone());
    let done = e.status_until(&root, &id, |j| j["status"] == "success").await;
    assert_eq!(done["status"], "success", "{done}");
}

#[tokio::test]
async fn a_closed_stdout_is_not_an_error() {
    let Some(e) = env() else { return };
    let root = Who::Token(e.svc.root_token.clone());
    let mut cmd = e.command(&root, &["list"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take()); // `| head -0`: the reader is gone before anything is written
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}
