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
    e.assert_revoked(&[wrap.clone()]).await;
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
