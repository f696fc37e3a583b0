//! End to end: the real server over HTTPS, the real OpenBao, the real Docker engine.

mod api;
mod cluster;
mod drain;
mod harden;
mod lifecycle;
mod modes;
mod otlp;
mod reliab;
mod sandbox;
mod streams;
mod support;
mod tenants;
mod ui;

use serde_json::json;
use support::{ms, spawn_app};

#[tokio::test]
async fn a_job_runs_and_its_output_and_secrets_come_back() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let id = app
        .submit(
            &token,
            json!({
                "qname": "Greet",
                "container_image": app.svc.image,
                "run": ["sh", "-c", "echo hello from gostint; cat /secrets.yml; grep -e v1: -e v2: /secrets.yml | rev; id -u; echo $GREETING"],
                "env_vars": ["GREETING=hi-env"],
                "secret_refs": ["v1@secret/my-secret.my-value", "v2@kv/data/my-secret.my-value", "num@secret/my-secret.other"],
            }),
        )
        .await;
    let job = app.wait(&token, &id).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["qname"], "greet", "qname is lower-cased");
    assert_eq!(job["return_code"], 0);
    let out = job["output"].as_str().unwrap();
    assert!(out.starts_with("hello from gostint\n---\n# gostint vault secrets injected:\n"), "{out}");
    // Secret values are masked in the stored output (docs/design.md §11); reversed, they
    // show that the container got them.
    assert!(out.contains("v1: [MASKED]\nv2: [MASKED]\n"), "secrets masked: {out}");
    assert!(out.contains("1v-t3rc3s :1v\n"), "KV v1 secret: {out}");
    assert!(out.contains("2v-t3rc3s :2v\n"), "KV v2 secret: {out}");
    assert!(out.contains("num: \"42\"\n"), "numeric secret as text: {out}");
    assert!(out.contains("TOKEN: "), "{out}");
    assert!(out.contains("\n2001\n"), "runs as uid 2001: {out}");
    assert!(out.ends_with("hi-env\n"), "env_vars honoured in plain mode: {out}");
    assert_eq!(job["container_image"], format!("{}", app.svc.image));
    assert!(!job["container_id"].as_str().unwrap().is_empty());
    assert_eq!(job["kill_requested"], false);
    assert!(ms(&job["started"]) >= ms(&job["submitted"]));
    assert!(ms(&job["ended"]) >= ms(&job["started"]));
    // The container is gone (removed right after the outcome is recorded).
    let cid = job["container_id"].as_str().unwrap();
    let mut removed = false;
    for _ in 0..100 {
        let inspect = std::process::Command::new("docker").args(["inspect", cid]).output().unwrap();
        if !inspect.status.success() {
            removed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(removed, "container {cid} was not removed");
    app.stop().await;
}

#[tokio::test]
async fn a_failing_job_keeps_its_exit_code_and_stderr() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let id = app
        .submit(
            &token,
            json!({"container_image": app.svc.image, "run": ["sh", "-c", "echo out; echo oops >&2; exit 3"]}),
        )
        .await;
    let job = app.wait(&token, &id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["return_code"], 3);
    assert_eq!(job["output"], "out\n");
    assert_eq!(job["stderr"], "oops\n");
    app.stop().await;
}

#[tokio::test]
async fn a_reused_wrap_token_makes_the_job_notauthorised() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let wrap = app.req.wrapped_secret_id().await;
    let job = json!({"container_image": app.svc.image, "run": ["true"], "wrap_secret_id": wrap.clone()});
    let first = app.submit(&token, job.clone()).await;
    assert_eq!(app.wait(&token, &first).await["status"], "success");
    // A spent wrapping token is refused at POST now (the creation-path check, docs/design.md §10).
    let (code, body) = app.post_raw(Some(&token), job.to_string()).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"], "wrap_secret_id is expired or unknown", "{body}");
    assert!(!body.to_string().contains(&wrap), "the wrapping token must not be echoed");

    // One redeemed by an interceptor after the POST, while its job waits in the queue, still
    // ends the job `notauthorised` with the alert when it runs.
    let blocker = app
        .submit(&token, json!({"qname": "intercepted", "container_image": app.svc.image, "run": ["sleep", "2"]}))
        .await;
    let wrap = app.req.wrapped_secret_id().await;
    let queued = app
        .submit(
            &token,
            json!({"qname": "intercepted", "container_image": app.svc.image, "run": ["true"], "wrap_secret_id": wrap.clone()}),
        )
        .await;
    gostint_core::JobVault::unwrap(&app.req.vault, &wrap).await.expect("the interceptor redeems the wrapping token");
    assert_eq!(app.wait(&token, &blocker).await["status"], "success");
    let j = app.wait(&token, &queued).await;
    assert_eq!(j["status"], "notauthorised", "{j}");
    let out = j["output"].as_str().unwrap();
    assert!(
        out.starts_with(
            "Request failed to unwrap the token to retrieve the SecretID - POSSIBLE SECURITY/INTERCEPTION ALERT!!!"
        ),
        "{out}"
    );
    assert!(!out.contains(&wrap), "the wrapping token must not be echoed");
    app.stop().await;
}

#[tokio::test]
async fn missing_and_invalid_tokens_are_refused() {
    let Some(app) = spawn_app().await else { return };
    let (code, body) = app.post_raw(None, "{}").await;
    assert_eq!(code, 400);
    assert_eq!(body, json!({"status": "Invalid request.", "error": "Missing X-Auth-Token"}));
    let (code, body) = app.post_raw(Some("s.not-a-real-token"), "{}").await;
    assert_eq!(code, 403);
    assert_eq!(body, json!({"status": "Permission Denied.", "error": "permission denied"}));
    let (code, _) = app.get(Some("s.not-a-real-token"), "/v1/api/job/5b6d1a2b5b6d1a2b5b6d1a2b").await;
    assert_eq!(code, 403);
    let (code, _) = app.get(None, "/v1/api/job/5b6d1a2b5b6d1a2b5b6d1a2b").await;
    assert_eq!(code, 400);
    app.stop().await;
}

#[tokio::test]
async fn one_queue_runs_in_submit_order_and_two_queues_overlap() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let sleeper = |q: &str| json!({"qname": q, "container_image": app.svc.image, "run": ["sleep", "2"]});
    let a1 = app.submit(&token, sleeper("serial")).await;
    let a2 = app.submit(&token, sleeper("serial")).await;
    let b1 = app.submit(&token, sleeper("other")).await;
    let (a1, a2, b1) = (app.wait(&token, &a1).await, app.wait(&token, &a2).await, app.wait(&token, &b1).await);
    for j in [&a1, &a2, &b1] {
        assert_eq!(j["status"], "success", "{j}");
    }
    assert!(ms(&a1["ended"]) <= ms(&a2["started"]), "same queue must not overlap: {a1} {a2}");
    assert!(
        ms(&a1["started"]) < ms(&b1["ended"]) && ms(&b1["started"]) < ms(&a1["ended"]),
        "different queues must run in parallel: {a1} {b1}"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_clear_400_or_a_failed_job_and_never_wedges_the_queue() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;

    let (code, body) = app.post_raw(Some(&token), "this is not json").await;
    assert_eq!(code, 400);
    assert_eq!(body["status"], "Invalid job request.");
    assert!(body["error"].as_str().unwrap().contains("expected"), "{body}");

    let (code, body) = app.post_raw(Some(&token), json!({"container_image": "x", "run": "echo"}).to_string()).await;
    assert_eq!(code, 400, "wrong field type: {body}");

    let (code, body) = app.post_raw(Some(&token), json!({"container_image": "x"}).to_string()).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"], "AppRole SecretID's Wrapping Token must be present in the job request");

    let cases = [
        (
            json!({"qname": "bad", "container_image": app.svc.image, "content": "not-a-content-string"}),
            "Failed to parse invalid content",
        ),
        (
            json!({"qname": "bad", "container_image": app.svc.image, "content": "targz,@@@"}),
            "Failed to decode content base64:",
        ),
        (json!({"qname": "bad", "container_image": "gostint-test/does-not-exist:1"}), ""),
        (
            json!({"qname": "bad", "container_image": app.svc.image, "secret_refs": ["no-at-sign"]}),
            "Secretref is unparseable: no-at-sign",
        ),
        (
            json!({"qname": "bad", "container_image": app.svc.image, "secret_refs": ["x@secret/nothing-here.k"]}),
            "Failed to retrieve secret secret/nothing-here from vault",
        ),
        (
            json!({"qname": "bad", "container_image": app.svc.image, "image_pull_policy": "Sometimes"}),
            "Incorrect value for image_pull_policy: Sometimes",
        ),
    ];
    for (job, want) in cases {
        let id = app.submit(&token, job.clone()).await;
        let j = app.wait(&token, &id).await;
        assert_eq!(j["status"], "failed", "{job} → {j}");
        let out = j["output"].as_str().unwrap();
        assert!(out.starts_with(want) && !out.is_empty(), "{job} → {out:?}");
    }
    // The queue still works afterwards.
    let id = app
        .submit(&token, json!({"qname": "bad", "container_image": app.svc.image, "run": ["echo", "still alive"]}))
        .await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["output"], "still alive\n", "{j}");
    app.stop().await;
}
