//! The operator's commands of the `gostint` binary, run as a process: `--version`, `config
//! show`, `check` (against the real OpenBao and Docker engine, and with each one broken),
//! completions, man pages, and the certificate reload on SIGHUP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gostint_test_support::{services, Services};

fn gostint() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gostint"));
    // Nothing from the test's own environment leaks in but what a case sets.
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Ok(h) = std::env::var("DOCKER_HOST") {
        c.env("DOCKER_HOST", h);
    }
    c
}

/// The settings of a node on the real services, its store in `dir`.
fn configured(svc: &Services, dir: &Path) -> Command {
    let mut c = gostint();
    c.env("VAULT_ADDR", &svc.vault_addr)
        .env("GOSTINT_ROLEID", &svc.role_id)
        .env("GOSTINT_ROLENAME", &svc.role_name)
        .env("GOSTINT_DBURL", format!("sqlite://{}/gostint.db", dir.display()))
        .env("GOSTINT_PLAIN_HTTP", "1");
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn line<'a>(out: &'a str, part: &str) -> &'a str {
    out.lines().find(|l| l.split_whitespace().next() == Some(part)).unwrap_or_else(|| panic!("no {part} line: {out}"))
}

#[test]
fn version_names_the_commit() {
    let o = gostint().arg("--version").output().unwrap();
    assert!(o.status.success());
    let v = String::from_utf8(o.stdout).unwrap();
    assert!(v.starts_with(&format!("gostint {} (commit ", env!("CARGO_PKG_VERSION"))), "{v}");
    assert_eq!(v.trim_end().strip_suffix(')').unwrap().rsplit(' ').next().unwrap(), gostint_core::BUILD_COMMIT);
}

#[test]
fn check_passes_on_the_real_services() {
    let Some(svc) = services() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = configured(&svc, dir.path()).arg("check").output().unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for part in ["vault", "role-id", "docker", "store", "tls"] {
        assert!(line(&out, part).contains(" ok "), "{out}");
    }
    assert_eq!(out.lines().count(), 5, "one line each: {out}");
}

/// `check` on the real services with a certificate valid from `from` to `until` days from now.
fn check_with_cert(svc: &Services, dir: &Path, from: i64, until: i64) -> (bool, String) {
    let now = time::OffsetDateTime::now_utc();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = now + time::Duration::days(from);
    params.not_after = now + time::Duration::days(until);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let o = configured(svc, dir)
        .env_remove("GOSTINT_PLAIN_HTTP")
        .env("GOSTINT_SSL_CERT", dir.join("cert.pem"))
        .env("GOSTINT_SSL_KEY", dir.join("key.pem"))
        .arg("check")
        .output()
        .unwrap();
    (o.status.success(), text(&o))
}

#[test]
fn check_warns_before_the_certificate_expires_and_fails_once_it_has() {
    let Some(svc) = services() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = check_with_cert(&svc, dir.path(), -1, 5);
    assert!(ok, "a warning keeps exit 0: {out}");
    let tls = line(&out, "tls");
    assert!(tls.contains(" WARN ") && tls.contains("expires on ") && tls.contains("in 4 days"), "{out}");

    let (ok, out) = check_with_cert(&svc, dir.path(), -30, -2);
    assert!(!ok, "{out}");
    let tls = line(&out, "tls");
    assert!(tls.contains(" FAILED ") && tls.contains("expired on "), "{out}");

    let (ok, out) = check_with_cert(&svc, dir.path(), 2, 30);
    assert!(!ok, "{out}");
    assert!(line(&out, "tls").contains("not valid before "), "{out}");

    let (ok, out) = check_with_cert(&svc, dir.path(), -1, 90);
    assert!(ok, "{out}");
    assert!(line(&out, "tls").contains(" ok ") && line(&out, "tls").contains("valid until "), "{out}");
}

#[test]
fn check_fails_naming_vault_when_openbao_is_down() {
    let Some(svc) = services() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: what a stopped OpenBao looks like.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let o = configured(&svc, dir.path())
        .env("VAULT_ADDR", format!("http://{closed}"))
        .args(["check", "--timeout", "5"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let v = line(&out, "vault");
    assert!(v.contains("FAILED") && v.contains("VAULT_ADDR") && v.contains(&closed.to_string()), "{out}");
    assert!(line(&out, "role-id").contains("FAILED"), "{out}");
    // The other parts are still checked.
    assert!(line(&out, "docker").contains(" ok "), "{out}");
}

#[test]
fn check_fails_naming_the_role_id_when_it_is_wrong() {
    let Some(svc) = services() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = configured(&svc, dir.path())
        .env("GOSTINT_ROLEID", "00000000-0000-0000-0000-000000000000")
        .arg("check")
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(line(&out, "vault").contains(" ok "), "{out}");
    let r = line(&out, "role-id");
    assert!(r.contains("FAILED") && r.contains("GOSTINT_ROLEID") && r.contains("invalid role id"), "{out}");
    assert!(!out.contains("00000000-0000-0000-0000-000000000000"), "the role id is not printed: {out}");
}

#[test]
fn check_fails_naming_docker_when_the_engine_is_unreachable() {
    let Some(svc) = services() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = configured(&svc, dir.path())
        .env("DOCKER_HOST", format!("unix://{}/no-engine.sock", dir.path().display()))
        .arg("check")
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let d = line(&out, "docker");
    assert!(d.contains("FAILED") && d.contains("DOCKER_HOST") && d.contains("no-engine.sock"), "{out}");
    assert!(line(&out, "vault").contains(" ok "), "{out}");
}

#[test]
fn check_refuses_unparseable_settings_with_exit_2() {
    let o = gostint().env("GOSTINT_PORT", "eighty").arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("GOSTINT_PORT"), "{}", text(&o));
}

#[test]
fn config_show_never_prints_a_password_or_token() {
    let o = gostint()
        .env("VAULT_ADDR", "http://127.0.0.1:8200")
        .env("GOSTINT_ROLEID", "role")
        .env("GOSTINT_DBURL", "postgres://gostint:pw-hunter2@127.0.0.1:5432/gostint")
        .env("GOSTINT_RUN_ROLEID", "run-role")
        .env("GOSTINT_RUN_SECRETID", "sid-hunter2")
        .env("GOSTINT_METRICS_TOKEN", "scrape-hunter2")
        .env("GOSTINT_DBAUTH_TOKEN", "old-hunter2")
        .env("VAULT_TOKEN", "hvs.hunter2")
        .args(["config", "show"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    assert!(out.contains("<redacted>"), "{out}");
    assert!(line(&out, "GOSTINT_RETENTION").contains("default"), "{out}");
    assert!(line(&out, "GOSTINT_ROLEID").contains("env"), "{out}");
}

#[test]
fn completions_and_man_pages_are_generated() {
    let o = gostint().args(["completions", "bash"]).output().unwrap();
    assert!(o.status.success());
    let script = String::from_utf8(o.stdout).unwrap();
    assert!(script.contains("_gostint()") && script.contains("check"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let o = gostint().arg("man").arg(dir.path()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for page in ["gostint.1", "gostint-check.1", "gostint-config.1"] {
        let body = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(body.contains(".TH"), "{page}: {body}");
    }
}

/// Waits for a log line containing `needle`, up to `limit`.
fn wait_for(lines: &std::sync::mpsc::Receiver<String>, needle: &str, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn self_signed(cert: &Path, key: &Path, name: &str) {
    let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    std::fs::write(cert, c.cert.pem()).unwrap();
    std::fs::write(key, c.key_pair.serialize_pem()).unwrap();
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_pair_keeps_the_old_one() {
    let Some(svc) = services() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    self_signed(&cert, &key, "first.test");
    let mut child = configured(&svc, dir.path())
        .env_remove("GOSTINT_PLAIN_HTTP")
        .env("GOSTINT_SSL_CERT", &cert)
        .env("GOSTINT_SSL_KEY", &key)
        .env("GOSTINT_PORT", "0")
        .env("GOSTINT_BIND", "127.0.0.1")
        .env("GOSTINT_STATE_DIR", dir.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let hup = |pid: u32| assert!(Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap().success());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&rx, "gostint listening", Duration::from_secs(120)).expect("the server started");
        self_signed(&cert, &key, "second.test");
        hup(child.id());
        wait_for(&rx, "SIGHUP: certificate reloaded", Duration::from_secs(60)).expect("reloaded");
        std::fs::write(&cert, "not a certificate").unwrap();
        hup(child.id());
        let l = wait_for(&rx, "SIGHUP: certificate not reloaded", Duration::from_secs(60)).expect("refused");
        assert!(l.contains("cert.pem"), "{l}");
    }));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// The `GLIBC_TUNABLES` a running `gostint serve` holds (its pid stays the spawned one).
fn serving_tunables(svc: &Services, tunables: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut c = configured(svc, dir.path());
    c.env("GOSTINT_PORT", "0").env("GOSTINT_BIND", "127.0.0.1").env("GOSTINT_STATE_DIR", dir.path());
    if let Some(t) = tunables {
        c.env("GLIBC_TUNABLES", t);
    }
    let mut child = c.arg("serve").stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    let up = wait_for(&rx, "gostint listening", Duration::from_secs(120));
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(up.is_some(), "gostint serve did not come up");
    String::from_utf8_lossy(&environ)
        .split('\0')
        .find_map(|v| v.strip_prefix("GLIBC_TUNABLES="))
        .unwrap_or("")
        .to_string()
}

/// RELIABILITY.md item 11: the binary re-executes itself (same pid) with glibc's malloc tuned,
/// unless the operator set malloc tunables of their own.
#[test]
fn serve_runs_with_tuned_malloc_unless_the_operator_chose_other_settings() {
    let Some(svc) = services() else { return };
    let tuned = serving_tunables(&svc, None);
    assert!(tuned.contains("glibc.malloc.arena_max=2"), "GLIBC_TUNABLES={tuned}");
    let own = serving_tunables(&svc, Some("glibc.malloc.arena_max=4"));
    assert_eq!(own, "glibc.malloc.arena_max=4");
}

/// A one-thread HTTP server answering every request 200 (an OTLP collector accepting an empty
/// export); returns its base URL and the request heads it saw.
fn tiny_collector() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, rx)
}

#[test]
fn check_reaches_the_otlp_collector_and_names_the_endpoint_when_it_cannot() {
    let Some(svc) = services() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (url, heads) = tiny_collector();
    let o = configured(&svc, dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=hunter2-otlp")
        .arg("check")
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let l = line(&out, "otlp");
    assert!(l.contains(" ok ") && l.contains(&format!("{url}/v1/traces")), "{out}");
    let head = heads.recv_timeout(Duration::from_secs(5)).expect("the collector was asked");
    assert!(head.starts_with("POST /v1/traces ") && head.contains("x-api-key: hunter2-otlp"), "{head}");
    assert!(!out.contains("hunter2"), "{out}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let o = configured(&svc, dir.path())
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("http://{closed}/v1/traces"))
        .args(["check", "--timeout", "5"])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let l = line(&out, "otlp");
    assert!(
        l.contains("FAILED") && l.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") && l.contains(&closed.to_string()),
        "{out}"
    );
    assert!(line(&out, "vault").contains(" ok "), "the other parts are still checked: {out}");
}

#[test]
fn serve_refuses_a_bad_otlp_setting_naming_it() {
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
    ] {
        let o = gostint()
            .env("VAULT_ADDR", "http://127.0.0.1:8200")
            .env("GOSTINT_ROLEID", "role")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
            .env(var, value)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{var}={value}: {}", text(&o));
        assert!(text(&o).contains(&format!("configuration error: {var}:")), "{}", text(&o));
    }
}
