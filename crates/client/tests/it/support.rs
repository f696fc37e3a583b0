//! The real `gostint` binary (HTTPS with a self-signed pair, SQLite in a temp dir) on the
//! real OpenBao and Docker engine, and the `gostint-client` binary run against it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use gostint_core::JobVault;
use gostint_test_support::{services, Requestor, Services};
use serde_json::{json, Value};

pub(crate) const CLIENT: &str = env!("CARGO_BIN_EXE_gostint-client");

/// The `gostint` binary beside this crate's, built once per test run with the same profile
/// (`GOSTINT_TEST_SERVER_BIN` names a prebuilt one instead).
fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("GOSTINT_TEST_SERVER_BIN") {
            return PathBuf::from(bin);
        }
        let dir = Path::new(CLIENT).parent().expect("the client binary has a directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "gostint-server", "--bin", "gostint"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("cargo runs");
        assert!(out.status.success(), "building gostint failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let bin = dir.join("gostint");
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// A running `gostint serve`.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) cert: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(svc: &Services, extra: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let mut cmd = Command::new(server_binary());
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VAULT_ADDR", &svc.vault_addr)
            .env("GOSTINT_ROLEID", &svc.role_id)
            .env("GOSTINT_ROLENAME", &svc.role_name)
            .env("GOSTINT_BIND", "127.0.0.1")
            .env("GOSTINT_PORT", "0")
            .env("GOSTINT_SSL_SELF_SIGNED", "1")
            .env("GOSTINT_SSL_CERT", &cert)
            .env("GOSTINT_SSL_KEY", dir.path().join("key.pem"))
            .env("GOSTINT_DBURL", format!("sqlite://{}/gostint.db", dir.path().display()))
            .env("GOSTINT_STATE_DIR", dir.path())
            .env("GOSTINT_KILL_GRACE", "1s")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for key in ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("gostint starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the JSON log for the bound address, then keeps draining it.
        std::thread::spawn(move || {
            let log = std::env::var_os("TEST_LOG").is_some();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if log {
                    eprintln!("gostint: {line}");
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "gostint listening" {
                        let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("gostint did not report its address within 30 s");
            }
        };
        Server { child, url: format!("https://{addr}"), cert, _dir: dir }
    }
}

impl Drop for Server {
    /// SIGTERM (gostint drains: jobs end, containers go), then SIGKILL after 30 s.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: services, a server, a requestor acting with the root token.
pub(crate) struct Env {
    pub(crate) server: Server,
    pub(crate) svc: Services,
    pub(crate) req: Requestor,
}

/// The world, or `None` (test skipped) when OpenBao or Docker is missing.
pub(crate) fn env() -> Option<Env> {
    let svc = services()?;
    let server = Server::start(&svc, &[]);
    let req = Requestor::new(&svc);
    Some(Env { server, svc, req })
}

/// The world with extra settings for the server (`None`: skipped, as [`env`]).
pub(crate) fn env_with(extra: &[(&str, &str)]) -> Option<Env> {
    let svc = services()?;
    let server = Server::start(&svc, extra);
    let req = Requestor::new(&svc);
    Some(Env { server, svc, req })
}

/// Who the client acts as.
#[derive(Clone)]
pub(crate) enum Who {
    /// `VAULT_TOKEN` in the environment.
    Token(String),
    /// `-vault-roleid @file -vault-secretid @file`.
    AppRole { role_file: PathBuf, secret_file: PathBuf },
    /// Nothing.
    Nobody,
}

/// Runs `cmd` to the end in a blocking thread.
pub(crate) async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Env {
    /// A bare requestor token (policy gostint-requestor, no entity), as an orchestrator
    /// would hand one out.
    pub(crate) async fn requestor_token(&self) -> String {
        self.req.token(None, &["gostint-requestor"]).await
    }

    /// A requestor AppRole (policy gostint-requestor) with its role id and a fresh secret
    /// id written to files, the way a CI runner would hold them.
    pub(crate) async fn requestor_approle(&self, dir: &Path) -> Who {
        let root = &self.svc.root_token;
        let role = "auth/approle/role/gostint-client-test-requestor";
        let vault = &self.req.vault;
        vault.write(root, role, &json!({"token_policies": ["gostint-requestor"], "token_ttl": "15m"})).await.unwrap();
        let role_id = vault.read_secret(root, &format!("{role}/role-id")).await.unwrap().unwrap().data["role_id"]
            .as_str()
            .unwrap()
            .to_string();
        let secret = vault.write(root, &format!("{role}/secret-id"), &json!({})).await.unwrap().unwrap();
        let secret_id = secret["secret_id"].as_str().unwrap();
        let role_file = dir.join("roleid");
        let secret_file = dir.join("secretid");
        std::fs::write(&role_file, format!("{role_id}\n")).unwrap();
        std::fs::write(&secret_file, format!("{secret_id}\n")).unwrap();
        Who::AppRole { role_file, secret_file }
    }

    /// The client command: clean environment, `VAULT_ADDR`, the credentials, `args`, then
    /// the original spellings `-url … -ca-cert …`.
    pub(crate) fn command(&self, who: &Who, args: &[&str]) -> Command {
        let mut cmd = self.raw_command(who, args);
        cmd.arg("-url").arg(&self.server.url).arg("-ca-cert").arg(&self.server.cert);
        cmd
    }

    /// The same without `-url` and `-ca-cert`.
    pub(crate) fn raw_command(&self, who: &Who, args: &[&str]) -> Command {
        let mut cmd = Command::new(CLIENT);
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("VAULT_ADDR", &self.svc.vault_addr);
        cmd.args(args);
        match who {
            Who::Token(t) => {
                cmd.env("VAULT_TOKEN", t);
            }
            Who::AppRole { role_file, secret_file } => {
                cmd.arg("-vault-roleid")
                    .arg(format!("@{}", role_file.display()))
                    .arg("-vault-secretid")
                    .arg(format!("@{}", secret_file.display()));
            }
            Who::Nobody => {}
        }
        cmd
    }

    /// Runs the client to the end (in a blocking thread: the test's runtime stays free).
    pub(crate) async fn client(&self, who: &Who, args: &[&str]) -> Output {
        output(self.command(who, args)).await
    }

    /// Asserts that no token with these accessors is alive any more.
    pub(crate) async fn assert_revoked(&self, accessors: &[String]) {
        // OpenBao revokes a use-exhausted token just after answering its last use: give it
        // a few seconds (a token that stays alive still fails the test).
        for a in accessors {
            let start = Instant::now();
            loop {
                let r = self.req.vault.lookup_accessor(&self.svc.root_token, a).await;
                if r.is_err() {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(5), "the token with accessor {a} is still alive");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Polls `status ID --json` until `done` holds (30 s at most); returns the last view.
    pub(crate) async fn status_until(&self, who: &Who, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let out = self.client(who, &["status", id, "-json"]).await;
            assert_eq!(out.status.code(), Some(0), "status: {}", text(&out.stderr));
            let job: Value = serde_json::from_slice(&out.stdout).unwrap();
            if done(&job) || start.elapsed() > Duration::from_secs(30) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Accessors of the tokens a `--debug` run says it made (`made … (accessor X…`).
pub(crate) fn made_accessors(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("gostint-client: debug: made "))
        .filter_map(|l| l.split("(accessor ").nth(1))
        .map(|s| s.split([',', ')']).next().unwrap().to_string())
        .collect()
}

/// Reads a child's stderr line by line in a thread, handing each line on as it comes.
pub(crate) fn stderr_lines(stderr: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A job folder whose `gostint.yml` names `image`, plus the given files.
pub(crate) fn job_folder(image: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gostint.yml"), format!("container_image: {image}\n")).unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}
