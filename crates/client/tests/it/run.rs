//! `gostint-client [run]`: the secure and plain flows end to end, output and exit codes,
//! and the revocation of every token the client made.

use std::process::Stdio;
use std::time::Duration;

use gostint_client::output::Diag;
use gostint_client::session::{Credentials, Session, CUBBY_PATH};
use gostint_core::JobVault;
use serde_json::{json, Value};

use crate::support::{env, job_folder, made_accessors, output, stderr_lines, text, Who};

#[tokio::test]
async fn the_secure_flow_runs_a_folder_job_with_secrets_byte_for_byte_and_revokes_its_tokens() {
    let Some(e) = env() else { return };
    let token = e.requestor_token().await;
    let who = Who::Token(token.clone());
    // No --image: gostint finds it in the folder's gostint.yml (packed as ./gostint.yml).
    let dir = job_folder(
        &e.svc.image,
        &[("hello.sh", "echo '100% %s {} from content:' \"$(grep v1 /secrets.yml)\"\necho to-stderr >&2\n")],
    );
    let out = e
        .client(
            &who,
            &[
                "-qname",
                "ClientQ",
                "-content",
                dir.path().to_str().unwrap(),
                "-run",
                r#"["sh","/hello.sh"]"#,
                "-secret-refs",
                r#"["v1@secret/my-secret.my-value"]"#,
                "-debug",
            ],
        )
        .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    // The secret's value is masked in the stored output (docs/design.md §11).
    assert_eq!(text(&out.stdout), "100% %s {} from content: v1: [MASKED]\n", "byte for byte");
    assert!(err.contains("to-stderr\n"), "the job's stderr goes to stderr: {err}");
    assert!(err.contains("(cubbyhole mode"), "{err}");
    assert!(!err.contains(&token), "no token in the debug output");
    let made = made_accessors(&err);
    assert_eq!(made.len(), 2, "an API token and a cubbyhole token: {err}");
    e.assert_revoked(&made).await;
}

#[tokio::test]
async fn an_approle_login_every_job_flag_over_the_job_json_and_the_login_token_revoked_too() {
    let Some(e) = env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let who = e.requestor_approle(dir.path()).await;
    let job_json = dir.path().join("job.json");
    // The base: the flags below override only what they name; its image stays.
    std::fs::write(
        &job_json,
        json!({"qname": "base", "container_image": e.svc.image, "run": ["false"], "secret_file_type": "yaml"})
            .to_string(),
    )
    .unwrap();
    let job_json_arg = format!("@{}", job_json.display());
    let out = e
        .client(
            &who,
            &[
                "-job-json",
                &job_json_arg,
                "-qname",
                "Flags",
                "-image-pull-policy",
                "IfNotPresent",
                "-entrypoint",
                r#"["sh","-c"]"#,
                "-run",
                r#"["pwd; echo A=$A; cat /secrets.json"]"#,
                "-run-dir",
                "/tmp",
                "-env-vars",
                r#"["A=1"]"#,
                "-secret-refs",
                r#"["v2@kv/data/my-secret.my-value"]"#,
                "-secret-filetype=json",
                "-cont-on-warnings",
                "-tty",
                "-json",
                "-debug",
                "-insecure-skip-verify",
            ],
        )
        .await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: TLS verification of gostint is OFF"), "the skip warns: {err}");
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["qname"], "flags");
    assert_eq!(job["status"], "success");
    let output = job["output"].as_str().unwrap();
    assert!(output.starts_with("/tmp\r\nA=1\r\n{"), "tty output (CRLF), run dir, env: {output:?}");
    assert!(output.contains(r#""v2":"[MASKED]""#), "json secrets file (values masked): {output:?}");
    let made = made_accessors(&err);
    assert_eq!(made.len(), 3, "login, API and cubbyhole tokens: {err}");
    e.assert_revoked(&made).await;
}

#[tokio::test]
async fn plain_mode_passes_on_the_jobs_exit_code_and_shows_the_failure() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let img = e.svc.image.clone();
    let out = e
        .client(&who, &["-plain", "-image", &img, "-run", r#"["sh","-c","echo partial 100%; echo oops >&2; exit 3"]"#])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "partial 100%\n", "stdout stays on stdout whatever the status");
    assert_eq!(text(&out.stderr), "oops\n[failed]\n", "no colour off a terminal");

    // A failure without a return code (here: an image that does not exist) exits 1.
    let out =
        e.client(&who, &["-plain=true", "-image", "gostint-test/no-such-image:none", "-run", r#"["true"]"#]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).ends_with("[failed]\n"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn wait_false_prints_the_submit_answer_and_exits_0() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let out = e.client(&who, &["--image", &e.svc.image, "--run", r#"["true"]"#, "-wait=false", "--qname", "W"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], "queued");
    assert_eq!(reply["qname"], "w");
    assert_eq!(reply["_id"].as_str().unwrap().len(), 24);
}

#[tokio::test]
async fn usage_vault_and_http_errors_exit_2_and_still_revoke_what_was_made() {
    let Some(e) = env() else { return };
    let token = e.requestor_token().await;
    let who = Who::Token(token.clone());
    let img = e.svc.image.clone();

    let out = e.client(&who, &["--image", &img, "--run", "echo hi"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--run: not a JSON array"), "{}", text(&out.stderr));

    let out = e.client(&Who::Token("s.bogus-token".into()), &["--image", &img]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("lookup-self"), "{}", text(&out.stderr));

    let out = e.client(&Who::Nobody, &["--image", &img]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no Vault credentials"), "{}", text(&out.stderr));

    // gostint's certificate is not trusted without --ca-cert.
    let mut cmd = e.raw_command(&who, &["--image", &img, "-debug"]);
    cmd.arg("-url").arg(&e.server.url);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    e.assert_revoked(&made_accessors(&text(&out.stderr))).await;

    // A non-200 answer to the POST: its body is shown, and the unspent cubbyhole token is
    // revoked along with the API token.
    let mut cmd = e.raw_command(&who, &["--image", &img, "-debug"]);
    cmd.arg("-url").arg(format!("{}/no/such/prefix", e.server.url)).arg("-ca-cert").arg(&e.server.cert);
    let out = output(cmd).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("404 Not Found: 404 page not found"), "the body is shown: {err}");
    let made = made_accessors(&err);
    assert_eq!(made.len(), 2, "{err}");
    assert!(err.contains("debug: revoked cubbyhole token"), "the unspent cubby token is revoked by the client: {err}");
    e.assert_revoked(&made).await;
}

#[tokio::test]
async fn a_wrapped_secret_id_that_expires_in_the_queue_ends_notauthorised_with_exit_120() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let img = e.svc.image.clone();
    // Hold the queue for 3 s; the next job's wrapping token lives 1 s.
    let out = e.client(&who, &["-qname", "na", "-image", &img, "-run", r#"["sleep","3"]"#, "-wait=false"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = e.client(&who, &["-qname", "na", "-image", &img, "-run", r#"["true"]"#, "-wrap-ttl", "1s"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(120), "{err}");
    assert!(err.ends_with("[notauthorised]\n"), "{err}");
    // A lapsed wrapping token is told apart from an interception (issue 16): the job says it
    // expired in the queue and raises no alert.
    let shown = text(&out.stdout);
    assert!(shown.contains("expired at") && shown.contains("not an interception"), "{shown}\n{err}");
    assert!(!shown.contains("POSSIBLE SECURITY/INTERCEPTION ALERT"), "{shown}");
}

#[tokio::test]
async fn the_clients_cubbyhole_token_allows_exactly_two_uses() {
    let Some(e) = env() else { return };
    let token = e.requestor_token().await;
    let session = Session::new(e.req.vault.clone(), Diag::default());
    session.login(Credentials::Token(token.into())).await.unwrap();
    let ciphertext = session.encrypt(&e.svc.role_name, "e30=").await.unwrap();
    // Use 1: the client's own write.
    let cubby = session.park(&ciphertext).await.unwrap();
    let cubby = secrecy::ExposeSecret::expose_secret(&cubby).to_string();
    // Use 2: gostint's read.
    let data = e.req.vault.read_cubbyhole(&cubby, CUBBY_PATH).await.unwrap().unwrap();
    assert_eq!(data["payload"], ciphertext.as_str());
    // A third reader (gostint after an interceptor, or the reverse) is refused.
    assert!(e.req.vault.read_cubbyhole(&cubby, CUBBY_PATH).await.is_err(), "a third use must fail");
    let accessors = session.accessors();
    session.close().await;
    e.assert_revoked(&accessors).await;
}

#[tokio::test]
async fn sigint_while_waiting_revokes_every_token_and_exits_130() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let mut cmd = e.command(&who, &["-image", &e.svc.image, "-run", r#"["sleep","30"]"#, "-debug"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let lines = stderr_lines(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let id = loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("the client reports the submission");
        seen.push(line.clone());
        if let Some(rest) = line.strip_prefix("gostint-client: debug: job ") {
            if rest.contains(" submitted ") {
                break rest.split(' ').next().unwrap().to_string();
            }
        }
    };
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap().code();
    seen.extend(lines.iter());
    let err = seen.join("\n");
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains(&format!("interrupted; job {id} carries on")), "{err}");
    e.assert_revoked(&made_accessors(&err)).await;
    // Clean up with the root token (an admin sees every job).
    let out = e.client(&Who::Token(e.svc.root_token.clone()), &["kill", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
