//! The rest of issue 13's client work: the wrapping token revoked when the POST fails, a
//! pinned self-signed (CA:TRUE) server certificate, `logs`, `wait`, `list` filters.

use std::process::Command;

use serde_json::Value;

use crate::support::{env, env_with, made_accessors, output, text, Who};

/// The accessor the `--debug` line `wrapped secret id for … (wrapping accessor X, …` names.
fn wrapping_accessor(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.split("(wrapping accessor ").nth(1))
        .map(|s| s.split([',', ')']).next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no wrapping accessor in: {stderr}"))
}

#[tokio::test]
async fn a_failed_post_revokes_the_wrapping_token_and_the_cubbyhole_token() {
    let Some(e) = env() else { return };
    let root = Who::Token(e.svc.root_token.clone());
    // A path prefix under which gostint has no API: the POST answers 404 after every
    // token (API, wrapping, cubbyhole) exists.
    let url = format!("{}/no-such-prefix", e.server.url);
    let mut cmd = e.raw_command(&root, &["-image", &e.svc.image, "-run", r#"["true"]"#, "-debug"]);
    cmd.arg("-url").arg(&url).arg("-ca-cert").arg(&e.server.cert);
    let out = output(cmd).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("submitting the job") && err.contains("404"), "{err}");
    let wrap = wrapping_accessor(&err);
    // Alive before? The debug line says it was made; now it must be gone.
    let made = made_accessors(&err);
    assert_eq!(made.len(), 2, "API and cubbyhole tokens: {err}");
    e.assert_revoked(&made).await;
    e.assert_revoked(std::slice::from_ref(&wrap)).await;
    assert!(err.contains(&format!("revoked the wrapping token of the secret id (accessor {wrap})")), "{err}");

    // A successful POST hands the wrapping token over: the job still runs (gostint unwraps it).
    let out = e.client(&root, &["-image", &e.svc.image, "-run", r#"["echo","ok"]"#, "-debug"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout), "ok\n");
    assert!(!err.contains("revoked the wrapping token"), "{err}");
}

#[tokio::test]
async fn a_plain_openssl_self_signed_certificate_is_trusted_when_pinned_with_ca_cert() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    // openssl's defaults (v3_ca: basicConstraints CA:TRUE), plus the address the client uses.
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=gostint-test", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let shown = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert).output().unwrap();
    assert!(text(&shown.stdout).contains("CA:TRUE"), "the test certificate must be a CA one");

    let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let Some(e) = env_with(&[("GOSTINT_SSL_SELF_SIGNED", "0"), ("GOSTINT_SSL_CERT", c), ("GOSTINT_SSL_KEY", k)]) else {
        return;
    };
    let root = Who::Token(e.svc.root_token.clone());
    let with = |url: &str, ca: &std::path::Path, args: &[&str]| {
        let mut cmd = e.raw_command(&root, args);
        cmd.arg("-url").arg(url).arg("-ca-cert").arg(ca);
        output(cmd)
    };
    let out = with(&e.server.url, &cert, &["-image", &e.svc.image, "-run", r#"["echo","pinned"]"#]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "pinned\n");
    let out = with(&e.server.url, &cert, &["list", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok());

    // The name is still checked: the same certificate does not name `localhost`.
    let port = e.server.url.rsplit(':').next().unwrap();
    let out = with(&format!("https://localhost:{port}"), &cert, &["list"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("NotValidForName"), "{}", text(&out.stderr));
    // Another certificate pinned: refused.
    let other = dir.path().join("other.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=other", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.path().join("other.key"))
        .arg("-out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let out = with(&e.server.url, &other, &["list"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("certificate"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn logs_follow_wait_and_filtered_list_against_the_real_server() {
    let Some(e) = env() else { return };
    let root = Who::Token(e.svc.root_token.clone());
    let script = "echo tick1; echo to-err >&2; sleep 3; echo tick2; exit 3";
    let out = e
        .client(
            &root,
            &[
                "-qname",
                "logsq",
                "-image",
                &e.svc.image,
                "-run",
                &serde_json::json!(["sh", "-c", script]).to_string(),
                "-wait=false",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["_id"].as_str().unwrap().to_string();

    // -f follows live to the end: stdout and stderr on their own streams, run's exit code.
    let (follow_args, wait_args) = (["logs", &id, "-f"], ["wait", &id]);
    let (follow, waited) = tokio::join!(e.client(&root, &follow_args), e.client(&root, &wait_args));
    assert_eq!(follow.status.code(), Some(3), "{}", text(&follow.stderr));
    assert_eq!(text(&follow.stdout), "tick1\ntick2\n");
    let err = text(&follow.stderr);
    assert!(err.contains("to-err\n") && err.contains("[failed]"), "{err}");
    assert_eq!(waited.status.code(), Some(3), "{}", text(&waited.stderr));
    assert_eq!(text(&waited.stdout), "failed (return code 3)\n");

    // Without -f: what is stored, byte for byte, exit 0.
    let out = e.client(&root, &["logs", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "tick1\ntick2\n");
    assert_eq!(text(&out.stderr), "to-err\n");
    let out = e.client(&root, &["wait", &id, "--json"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"], "failed");

    // A second job, successful, in another queue.
    let out = e.client(&root, &["-qname", "otherq", "-image", &e.svc.image, "-run", r#"["true"]"#]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let list = |args: Vec<&str>| {
        let mut a = vec!["list"];
        a.extend(args);
        let a: Vec<String> = a.into_iter().map(String::from).collect();
        let e = &e;
        let root = root.clone();
        async move {
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            e.client(&root, &refs).await
        }
    };
    let out = list(vec!["--status", "failed", "--queue", "logsq", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = page["data"].as_array().unwrap().iter().map(|j| j["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str()], "{page}");
    let out = list(vec!["--queue", "logsq", "--status", "success"]).await;
    assert_eq!(text(&out.stdout), "no matching jobs\n");
    let out = list(vec!["--limit", "1", "--json"]).await;
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["qname"], "otherq", "newest first: {page}");
    let out = list(vec!["--status", "done"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected one of"), "{}", text(&out.stderr));
    let out = list(vec!["--status", "failed"]).await;
    let table = text(&out.stdout);
    assert!(table.starts_with("ID ") && table.contains(&id) && table.contains("1 matching job(s)"), "{table}");
}

#[tokio::test]
async fn the_api_token_is_renewed_while_run_waits_past_its_ttl() {
    let Some(e) = env() else { return };
    let root = Who::Token(e.svc.root_token.clone());
    // A 3 s API token and a 10 s job, polled (--json reads the final view through polls,
    // each authenticated with the API token): without renewal the polls fail with 403.
    let args = [
        "-image",
        &e.svc.image,
        "-run",
        r#"["sh","-c","sleep 10; echo done"]"#,
        "-api-token-ttl",
        "3s",
        "-poll-interval",
        "0.3",
        "-json",
        "-debug",
    ];
    let out = e.client(&root, &args).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["output"], "done\n");
    assert!(err.matches("renewed the API token").count() >= 2, "{err}");
    e.assert_revoked(&made_accessors(&err)).await;
}

#[tokio::test]
async fn repeatable_env_and_secret_flags_and_a_trailing_command() {
    let Some(e) = env() else { return };
    let root = Who::Token(e.svc.root_token.clone());
    // `-url`/`-ca-cert` first: after `--` everything is the job's command.
    let cert = e.server.cert.to_str().unwrap().to_string();
    let client = |args: &[&str]| {
        let mut all = vec!["-url", e.server.url.as_str(), "-ca-cert", cert.as_str()];
        all.extend_from_slice(args);
        output(e.raw_command(&root, &all))
    };
    let args = [
        "-e",
        "GREETING=hello",
        "--env",
        "X=a b=c",
        "-env-vars",
        r#"["FIRST=1"]"#,
        "--secret",
        "v1=secret/my-secret.my-value",
        "-image",
        &e.svc.image,
        "--",
        "sh",
        "-c",
        r#"echo "$FIRST|$GREETING|$X"; grep -c 'v1: s3cr3t-v1' /secrets.yml"#,
    ];
    let out = client(&args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1|hello|a b=c\n1\n");

    let out = client(&["-e", "NOVALUE", "-image", &e.svc.image, "--", "true"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected NAME=value"), "{}", text(&out.stderr));
    let out = client(&["--secret", "v1@secret/x.y", "-image", &e.svc.image, "--", "true"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected VAR=PATH.KEY"), "{}", text(&out.stderr));
    let out = client(&["-run", r#"["true"]"#, "-image", &e.svc.image, "--", "true"]).await;
    assert_eq!(out.status.code(), Some(2), "--run and a trailing command conflict");
}

#[tokio::test]
async fn color_always_never_and_no_color() {
    let Some(e) = env() else { return };
    let root = Who::Token(e.svc.root_token.clone());
    let run = |colour: &'static str, no_color: bool| {
        let mut cmd = e.command(&root, &["-image", &e.svc.image, "-run", r#"["false"]"#, colour]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        output(cmd)
    };
    let (always, never, auto) =
        tokio::join!(run("--color=always", true), run("--color=never", false), run("--color=auto", true));
    assert_eq!(always.status.code(), Some(1), "{}", text(&always.stderr));
    assert!(text(&always.stderr).contains("\x1b[31m[failed]\x1b[0m\n"), "{:?}", text(&always.stderr));
    assert!(text(&never.stderr).ends_with("[failed]\n") && !text(&never.stderr).contains('\x1b'));
    assert!(text(&auto.stderr).ends_with("[failed]\n") && !text(&auto.stderr).contains('\x1b'));
}
