//! `gostint-client` end to end: the binary against a real gostint (HTTPS, in-process), the
//! real OpenBao and the real Docker engine.

use std::collections::HashMap;
use std::process::{Command, Output};

use gostint_test_support::{services, Requestor, Services};
use serde_json::Value;

struct Env {
    server: Option<gostint_server::Server>,
    url: String,
    cert: std::path::PathBuf,
    svc: Services,
    req: Requestor,
    _dir: tempfile::TempDir,
}

async fn env() -> Option<Env> {
    let svc = services()?;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let mut m: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("VAULT_ADDR", svc.vault_addr.clone()),
        ("GOSTINT_ROLEID", svc.role_id.clone()),
        ("GOSTINT_ROLENAME", svc.role_name.clone()),
        ("GOSTINT_BIND", "127.0.0.1".into()),
        ("GOSTINT_PORT", "0".into()),
        ("GOSTINT_SSL_SELF_SIGNED", "1".into()),
        ("GOSTINT_SSL_CERT", cert.to_string_lossy().into_owned()),
        ("GOSTINT_SSL_KEY", dir.path().join("key.pem").to_string_lossy().into_owned()),
        ("GOSTINT_DBURL", format!("sqlite://{}/g.db", dir.path().display())),
        ("GOSTINT_KILL_GRACE", "1s".into()),
    ] {
        m.insert(k.into(), v);
    }
    let settings = gostint_config::Settings::from_source(&m).unwrap();
    let server = gostint_server::start(&settings).await.unwrap();
    let url = server.url();
    let req = Requestor::new(&svc);
    Some(Env { server: Some(server), url, cert, svc, req, _dir: dir })
}

impl Env {
    /// A requestor token as an orchestrator would onboard it (policy gostint-requestor).
    async fn requestor(&self) -> String {
        self.req.token(None, &["gostint-requestor"]).await
    }

    /// Runs the client binary (in a blocking thread, the server keeps serving).
    async fn client(&self, token: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gostint-client"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VAULT_TOKEN", token)
            .env("VAULT_ADDR", &self.svc.vault_addr)
            .args(args)
            .args(["-url", &self.url, "-ca-cert", self.cert.to_str().unwrap()]);
        tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn the_secure_flow_runs_a_folder_job_with_secrets_and_revokes_its_tokens() {
    let Some(e) = env().await else { return };
    let token = e.requestor().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gostint.yml"), format!("container_image: {}\n", e.svc.image)).unwrap();
    std::fs::write(
        dir.path().join("hello.sh"),
        "echo \"100% from content: $(grep mysecret /secrets.yml)\"\necho to-stderr >&2\n",
    )
    .unwrap();
    let out = e
        .client(
            &token,
            &[
                "-qname",
                "clientq",
                "-content",
                dir.path().to_str().unwrap(),
                "-run",
                r#"["sh","/hello.sh"]"#,
                "-secret-refs",
                r#"["mysecret@secret/my-secret.my-value"]"#,
                "-debug",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "100% from content: mysecret: s3cr3t-v1\n", "byte for byte, % intact");
    let err = text(&out.stderr);
    assert!(err.contains("to-stderr\n"), "the job's stderr goes to stderr: {err}");
    assert!(!err.contains(&token), "no token in debug output");
    // Every token the client made is revoked (API token and the spent cubby token).
    let accessors: Vec<&str> =
        err.lines().filter_map(|l| l.split("(accessor ").nth(1)).map(|s| s.split([',', ')']).next().unwrap()).collect();
    assert!(accessors.len() >= 2, "API and cubby tokens made: {err}");
    for a in accessors {
        let r = e.req.vault.lookup_accessor(&e.svc.root_token, a).await;
        assert!(r.is_err(), "token with accessor {a} still alive");
    }
    e.stop().await;
}

/// A requestor AppRole (policy gostint-requestor), as an orchestrator would onboard one;
/// returns (role_id, secret_id).
async fn requestor_approle(e: &Env) -> (String, String) {
    let http = reqwest::Client::new();
    let root = &e.svc.root_token;
    let base = format!("{}/v1/auth/approle/role/gostint-test-requestor", e.svc.vault_addr);
    let r = http
        .post(&base)
        .header("X-Vault-Token", root)
        .json(&serde_json::json!({"token_policies": ["gostint-requestor"], "token_ttl": "15m"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "role: {}", r.status());
    let rid: Value =
        http.get(format!("{base}/role-id")).header("X-Vault-Token", root).send().await.unwrap().json().await.unwrap();
    let sid: Value = http
        .post(format!("{base}/secret-id"))
        .header("X-Vault-Token", root)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (rid["data"]["role_id"].as_str().unwrap().to_string(), sid["data"]["secret_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn every_job_flag_reaches_the_container_and_approle_login_works() {
    let Some(e) = env().await else { return };
    let (role_id, secret_id) = requestor_approle(&e).await;
    let dir = tempfile::tempdir().unwrap();
    let rid = dir.path().join("roleid");
    let sid = dir.path().join("secretid");
    std::fs::write(&rid, format!("{role_id}\n")).unwrap();
    std::fs::write(&sid, format!("{secret_id}\n")).unwrap();
    let job_json = dir.path().join("job.json");
    // The base: flags given below override only what they name.
    std::fs::write(
        &job_json,
        serde_json::json!({"qname": "base", "container_image": e.svc.image, "run": ["false"]}).to_string(),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gostint-client"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VAULT_ADDR", &e.svc.vault_addr)
        .args(["-url", &e.url, "-insecure-skip-verify"])
        .args(["-vault-roleid", &format!("@{}", rid.display()), "-vault-secretid", &format!("@{}", sid.display())])
        .args(["-job-json", &format!("@{}", job_json.display())])
        .args(["-qname", "Flags", "-image-pull-policy", "IfNotPresent", "-entrypoint", r#"["sh","-c"]"#])
        .args(["-run", r#"["pwd; echo A=$A; cat /secrets.json"]"#, "-run-dir", "/tmp", "-env-vars", r#"["A=1"]"#])
        .args([
            "-secret-refs",
            r#"["v2@kv/data/my-secret.my-value"]"#,
            "-secret-filetype",
            "json",
            "-cont-on-warnings",
            "-tty",
            "-json",
        ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("TLS verification of gostint is OFF"), "the skip warns: {err}");
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["qname"], "flags");
    assert_eq!(job["status"], "success");
    let output = job["output"].as_str().unwrap();
    assert!(output.starts_with("/tmp\r\nA=1\r\n{"), "tty output (CRLF), run dir, env: {output:?}");
    assert!(output.contains(r#""v2":"s3cr3t-v2""#), "json secrets file: {output:?}");
    e.stop().await;
}

#[tokio::test]
async fn plain_mode_exit_codes_and_wait_false() {
    let Some(e) = env().await else { return };
    let token = e.requestor().await;
    let img = e.svc.image.clone();
    let out = e.client(&token, &["-plain", "-image", &img, "-run", r#"["sh","-c","echo partial; exit 3"]"#]).await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stderr), "[failed] partial\n");

    let out = e.client(&token, &["--image", &img, "--run", r#"["true"]"#, "--wait=false"]).await;
    assert_eq!(out.status.code(), Some(0));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], "queued");

    // Usage and HTTP errors exit 2.
    let out = e.client(&token, &["--run", "not json"]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = e.client("s.bogus", &["--image", &img]).await;
    assert_eq!(out.status.code(), Some(2));
    e.stop().await;
}

#[tokio::test]
async fn status_list_kill_and_delete_subcommands() {
    let Some(e) = env().await else { return };
    // An AppRole-less requestor token: subcommands act with it directly, so submit with it too.
    let token = e.req.token(None, &["default"]).await;
    let api = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&e.cert).unwrap()).unwrap())
        .build()
        .unwrap();
    let wrap = e.req.wrapped_secret_id().await;
    let body = serde_json::json!({"qname": "sub", "container_image": e.svc.image, "run": ["sleep", "30"], "wrap_secret_id": wrap});
    let r: Value = api
        .post(format!("{}/v1/api/job", e.url))
        .header("X-Auth-Token", &token)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["_id"].as_str().unwrap().to_string();

    let out = e.client(&token, &["status", &id, "-json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["_id"], id.as_str());
    let out = e.client(&token, &["list", "--json"]).await;
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["total"], 1);
    let out = e.client(&token, &["list"]).await;
    assert!(text(&out.stdout).contains(&id));

    // Wait for it to run, kill it, then delete it.
    for _ in 0..100 {
        let out = e.client(&token, &["status", &id, "--json"]).await;
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        if j["status"] == "running" && j["container_id"] != "" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = e.client(&token, &["kill", &id, "--json"]).await;
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["kill_requested"], true);
    let mut last = Value::Null;
    for _ in 0..200 {
        let out = e.client(&token, &["status", &id, "--json"]).await;
        last = serde_json::from_slice(&out.stdout).unwrap();
        if last["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "failed", "{last}");
    let out = e.client(&token, &["delete", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = e.client(&token, &["status", &id]).await;
    assert_eq!(out.status.code(), Some(2), "gone: {}", text(&out.stderr));
    e.stop().await;
}

#[tokio::test]
async fn a_cubbyhole_token_like_the_clients_allows_exactly_two_uses() {
    let Some(e) = env().await else { return };
    use gostint_core::JobVault;
    let ct = e.req.encrypt(&serde_json::json!({"qname": "x"})).await;
    let cubby = e.req.cubby(&ct).await; // create with num_uses 2, then one write
    assert!(e.req.vault.read_cubbyhole(&cubby, "cubbyhole/job").await.unwrap().is_some(), "second use");
    assert!(e.req.vault.read_cubbyhole(&cubby, "cubbyhole/job").await.is_err(), "a third use fails");
    e.stop().await;
}

#[test]
fn help_lists_every_flag_and_the_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_gostint-client")).env_clear().args(["run", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    let expected = include_str!("run_help.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/run_help.txt"), &help).unwrap();
        return;
    }
    assert_eq!(help, expected, "run UPDATE_SNAPSHOTS=1 cargo test -p gostint-client to refresh");
}
