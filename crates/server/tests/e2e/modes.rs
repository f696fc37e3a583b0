//! The three submission modes, job content and metadata, and what the container gets.

use std::time::Duration;

use gostint_test_support::{content, ContentFile};
use serde_json::json;

use crate::support::{spawn_app, spawn_app_with};

#[tokio::test]
async fn cubbyhole_mode_runs_the_encrypted_job_with_content_and_secrets() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let tgz = content(&[
        ContentFile {
            name: "./gostint.yml",
            data: format!(
                "container_image: {}\nsecret_refs:\n  - fromcontent@secret/my-secret.my-value\n",
                app.svc.image
            )
            .as_bytes(),
            mode: 0o644,
        },
        ContentFile {
            name: "./work/run.sh",
            data: b"#!/bin/sh\necho ran from content; cat /secrets.json; echo; echo $MODE\n",
            mode: 0o755,
        },
    ]);
    let job = json!({
        "qname": "Secure", "content": tgz, "run": ["/work/run.sh"], "secret_file_type": "json",
        "env_vars": ["MODE=cubby"],
    });
    let cubby = app.req.cubby(&app.req.encrypt(&job).await).await;
    let wrap = app.req.wrapped_secret_id().await;
    let (code, body) = app
        .post_raw(
            Some(&token),
            json!({"qname": "SECURE", "cubby_token": cubby, "cubby_path": "cubbyhole/job", "wrap_secret_id": wrap})
                .to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["qname"], "secure");
    let j = app.wait(&token, body["_id"].as_str().unwrap()).await;
    assert_eq!(j["status"], "success", "{j}");
    let out = j["output"].as_str().unwrap();
    assert!(out.starts_with("ran from content\n{"), "{out}");
    // The value itself is masked in the stored output (docs/design.md §11).
    assert!(out.contains(r#""fromcontent":"[MASKED]""#), "content gostint.yml refs in /secrets.json: {out}");
    assert!(out.ends_with("}\ncubby\n"), "env_vars from the payload: {out}");
    assert_eq!(j["container_image"], app.svc.image.as_str(), "image from content gostint.yml");
    // The cubby token was spent by gostint: a third use fails.
    let again = app.req.vault.write(&cubby, "cubbyhole/job", &json!({"payload": "x"})).await;
    assert!(again.is_err(), "the 2-use cubby token must be spent");
    app.stop().await;
}

#[tokio::test]
async fn a_tampered_cubbyhole_raises_the_interception_alert() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let job = json!({"qname": "t", "container_image": app.svc.image, "run": ["true"]});
    let cubby = app.req.cubby(&app.req.encrypt(&job).await).await;
    // Someone intercepts the POST and reads the cubbyhole first: the last use is gone.
    use gostint_core::JobVault;
    app.req.vault.read_cubbyhole(&cubby, "cubbyhole/job").await.expect("interceptor reads");
    let wrap = app.req.wrapped_secret_id().await;
    let (code, body) = app
        .post_raw(
            Some(&token),
            json!({"qname": "t", "cubby_token": cubby, "cubby_path": "cubbyhole/job", "wrap_secret_id": wrap})
                .to_string(),
        )
        .await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(body["status"], "Internal Error.");
    let err = body["error"].as_str().unwrap();
    assert!(
        err.starts_with("POSSIBLE SECURITY/INTERCEPTION ALERT!!! Failed to read cubbyhole from vault, error: "),
        "{err}"
    );
    assert!(!err.contains(&cubby), "the token must not be echoed");
    let metrics = app.http.get(format!("{}/v1/api/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"gostint_interception_alerts_total{kind="cubbyhole",service="gostint"} 1"#),
        "{metrics}"
    );

    // A lone cubby_token or cubby_path is refused.
    let (code, body) = app.post_raw(Some(&token), json!({"wrap_secret_id": "w", "cubby_token": "x"}).to_string()).await;
    assert_eq!((code, body["error"].as_str().unwrap()), (400, "cubby_token and cubby_path must be given together"));
    app.stop().await;
}

#[tokio::test]
async fn inline_payload_mode_and_payload_failures() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let job = json!({"qname": "Inline", "container_image": app.svc.image, "run": ["echo", "inline ok"]});
    let payload = app.req.encrypt(&job).await;
    let id = app.submit(&token, json!({"qname": "inline", "payload": payload})).await;
    let j = app.wait(&token, &id).await;
    assert_eq!((j["status"].as_str(), j["output"].as_str()), (Some("success"), Some("inline ok\n")), "{j}");

    // The payload's qname must match (case-insensitively, so mixed case works here).
    let id = app.submit(&token, json!({"qname": "other", "payload": payload})).await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "failed");
    assert_eq!(j["output"], "payload qname and job request qname do not match: 'inline' != 'other'");

    // A payload that is not JSON once decrypted.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"not json at all");
    let ct = app.req.vault.transit_encrypt(&app.svc.root_token, &app.svc.role_name, &b64).await.unwrap();
    let id = app.submit(&token, json!({"qname": "inline", "payload": ct})).await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "failed");
    assert!(j["output"].as_str().unwrap().starts_with("Failed unmarshaling json from payload:"), "{j}");

    // Ciphertext that is not a ciphertext.
    let id = app.submit(&token, json!({"qname": "inline", "payload": "vault:v1:garbage"})).await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "failed");
    assert!(j["output"].as_str().unwrap().starts_with("Failed to decrypt payload via vault:"), "{j}");
    app.stop().await;
}

#[tokio::test]
async fn a_wrap_token_wrapping_something_else_is_notauthorised() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let r: serde_json::Value = app
        .http
        .post(format!("{}/v1/sys/wrapping/wrap", app.svc.vault_addr))
        .header("X-Vault-Token", &app.svc.root_token)
        .header("X-Vault-Wrap-TTL", "5m")
        .json(&json!({"not_a_secret_id": 42}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wrap = r["wrap_info"]["token"].as_str().unwrap_or_else(|| panic!("no wrap_info: {r}")).to_string();
    // docs/design.md §10: since tenants, its creation path (`sys/wrapping/wrap`) is refused at POST,
    // before anything is stored (it used to end `notauthorised` at run time).
    let body = json!({"container_image": app.svc.image, "run": ["true"], "wrap_secret_id": wrap});
    let (code, answer) = app.post_raw(Some(&token), body.to_string()).await;
    assert_eq!(code, 403, "{answer}");
    assert_eq!(answer["error"], "wrap_secret_id is not a secret-id of an accepted AppRole");
    app.stop().await;
}

#[tokio::test]
async fn the_container_gets_tty_passwd_image_metadata_and_vault_env() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;

    // tty: one combined stream, stderr empty.
    let id = app
        .submit(
            &token,
            json!({"container_image": app.svc.image, "tty": true, "run": ["sh", "-c", "echo out; echo err >&2"]}),
        )
        .await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["tty"], true);
    assert_eq!(j["stderr"], "");
    let out = j["output"].as_str().unwrap();
    assert!(out.contains("out") && out.contains("err"), "{out:?}");

    // An image without /etc/passwd gets one with the gostint user.
    let id = app
        .submit(
            &token,
            json!({"container_image": app.svc.image_nopasswd, "run": ["sh", "-c", "cat /etc/passwd; whoami"]}),
        )
        .await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["output"], "gostint:x:2001:2001:gostint:/tmp:/bin/sh\ngostint\n", "{j}");

    // /gostint_image.yml in the image adds secret refs; the job's working_directory,
    // entrypoint and the Vault env arrive.
    let tag = format!("gostint-test/withmeta:{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nCOPY gostint_image.yml /gostint_image.yml\n", app.svc.image),
    )
    .unwrap();
    std::fs::write(dir.path().join("gostint_image.yml"), "secret_refs:\n  - fromimage@kv/data/my-secret.my-value\n")
        .unwrap();
    let built =
        std::process::Command::new("docker").args(["build", "-q", "-t", &tag]).arg(dir.path()).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let id = app
        .submit(
            &token,
            json!({
                "container_image": tag, "working_directory": "/tmp", "entrypoint": ["sh", "-c"],
                "run": ["pwd; grep fromimage /secrets.yml; echo $VAULT_ADDR; test -n \"$VAULT_TOKEN\" && echo has-token"],
            }),
        )
        .await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["output"], format!("/tmp\nfromimage: [MASKED]\n{}\nhas-token\n", app.svc.vault_addr), "{j}");
    let _ = std::process::Command::new("docker").args(["rmi", "-f", &tag]).output();
    app.stop().await;
}

#[tokio::test]
async fn no_token_is_injected_when_switched_off() {
    let Some(app) = spawn_app_with(&[("GOSTINT_INJECT_TOKEN", "0")]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let id = app
        .submit(
            &token,
            json!({"container_image": app.svc.image, "run": ["sh", "-c", "echo [$VAULT_TOKEN]; cat /secrets.yml"]}),
        )
        .await;
    let j = app.wait(&token, &id).await;
    assert_eq!(j["output"], "[]\n---\n# gostint vault secrets injected:\n", "{j}");
    app.stop().await;
}

#[tokio::test]
async fn a_job_timeout_stops_the_container() {
    let Some(app) = spawn_app_with(&[("GOSTINT_JOB_TIMEOUT", "1s"), ("GOSTINT_KILL_GRACE", "1s")]).await else {
        return;
    };
    let token = app.req.token(None, &["default"]).await;
    let id = app
        .submit(&token, json!({"container_image": app.svc.image, "run": ["sh", "-c", "echo started; sleep 60"]}))
        .await;
    let start = std::time::Instant::now();
    let j = app.wait(&token, &id).await;
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(j["status"], "failed");
    assert_eq!(j["output"], "started\n\njob timed out after 1s", "{j}");
    app.stop().await;
}

/// `docker inspect -f <format> <id>`, trimmed.
fn inspect(id: &str, format: &str) -> String {
    let out = std::process::Command::new("docker").args(["inspect", "-f", format, id]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Files of the node's job-file directory (`gostint-*` under `base`), recursively.
fn files_under(base: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![base.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn job_files_are_bound_read_only_from_the_node_directory_and_unlinked_once_started_or_copied_in() {
    let base = tempfile::tempdir().unwrap();
    let base_s = base.path().to_string_lossy().into_owned();
    let run = "cat /secrets.yml; grep gostint /etc/passwd; ls -ln /secrets.yml | cut -c1-10; sleep 2";
    let mut outputs = Vec::new();
    for mode in ["bind", "copy"] {
        let Some(app) =
            spawn_app_with(&[("GOSTINT_JOB_FILES", mode), ("GOSTINT_JOB_FILES_DIR", base_s.as_str())]).await
        else {
            return;
        };
        let token = app.req.token(None, &["default"]).await;
        // Twice: the first job of an image reads its files from the container, the next
        // ones know them (and, binding, read the secrets before the create).
        for round in 0..2 {
            let id = app
                .submit(
                    &token,
                    json!({"container_image": app.svc.image, "run": ["sh", "-c", run],
                           "secret_refs": ["v1@secret/my-secret.my-value"]}),
                )
                .await;
            let job = app.wait_status(&token, &id, "running").await;
            let mut cid = job["container_id"].as_str().unwrap_or_default().to_string();
            for _ in 0..100 {
                if !cid.is_empty() && inspect(&cid, "{{.State.Running}}") == "true" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let (_, j) = app.get(Some(&token), &format!("/v1/api/job/{id}")).await;
                cid = j["container_id"].as_str().unwrap_or_default().to_string();
            }
            let mounts = inspect(&cid, "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}};{{end}}");
            if mode == "bind" && round == 1 {
                assert!(mounts.contains(" /secrets.yml false;") && mounts.contains(" /etc/passwd false;"), "{mounts}");
                assert!(mounts.contains(&format!("bind {base_s}/gostint-")), "from the node's directory: {mounts}");
            } else {
                assert_eq!(mounts, "", "{mode}, round {round}: nothing bound");
            }
            // Gone once the engine has answered the start (a moment after it shows running).
            let mut left = files_under(base.path());
            for _ in 0..40 {
                if left.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
                left = files_under(base.path());
            }
            assert_eq!(left, Vec::<std::path::PathBuf>::new(), "no job file left once started");
            let job = app.wait(&token, &id).await;
            assert_eq!(job["status"], "success", "{job}");
            outputs.push(job["output"].as_str().unwrap().to_string());
        }
        app.stop().await;
    }
    // Secret values and the job token are masked in the stored output (docs/design.md §11).
    let want = "---\n# gostint vault secrets injected:\nTOKEN: [MASKED]\nv1: [MASKED]\n\
                gostint:x:2001:2001:gostint:/tmp:/bin/sh\n-r--r--r--\n";
    for (i, out) in outputs.iter().enumerate() {
        assert_eq!(out, want, "run {i}: the container sees the same files either way");
    }
    let left: Vec<_> = std::fs::read_dir(base.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "each node's directory goes with the node: {left:?}");
}
