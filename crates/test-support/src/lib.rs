//! Dev-only helpers for gostint's tests: the real services `scripts/services up` started
//! (OpenBao, Docker images, PostgreSQL), a requestor that makes tokens, wrapped secret ids
//! and ciphertexts like `gostint-client` does, and content fixtures.
//!
//! A missing service makes [`services`] print `skipped: …` and return `None`, unless
//! `GOSTINT_TEST_REQUIRE` names it (CI sets `vault,docker,postgres`): then it panics, so CI
//! cannot pass by skipping.
#![warn(missing_docs)]
#![allow(clippy::missing_panics_doc)]

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use gostint_vault::{VaultClient, VaultConfig};
use secrecy::ExposeSecret;

/// The services of the test run, as `scripts/services` describes them in `.dev/env`.
#[derive(Clone)]
pub struct Services {
    /// OpenBao address.
    pub vault_addr: String,
    /// Its root token (dev server).
    pub root_token: String,
    /// role_id of `gostint-role`.
    pub role_id: String,
    /// `gostint-role`.
    pub role_name: String,
    /// The local busybox job image.
    pub image: String,
    /// The same without /etc/passwd.
    pub image_nopasswd: String,
    /// PostgreSQL URL, if started.
    pub database_url: Option<String>,
    /// `tenant-a:<role_id>,tenant-b:<role_id>`: the two tenants `scripts/services`
    /// bootstraps with `scripts/vault-add-tenant` (a value for `GOSTINT_APPROLES`).
    pub approles: Option<String>,
}

fn repo_root() -> PathBuf {
    // crates/test-support → repo root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Variables from the process, else from `.dev/env` written by `scripts/services up`.
fn vars() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let dev = std::env::var("GOSTINT_DEV_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join(".dev"));
    if let Ok(text) = std::fs::read_to_string(dev.join("env")) {
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ");
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.to_string(), v.trim_matches(|c| c == '\'' || c == '"').to_string());
            }
        }
    }
    for (k, v) in std::env::vars() {
        out.insert(k, v);
    }
    out
}

fn required(service: &str) -> bool {
    std::env::var("GOSTINT_TEST_REQUIRE").map(|v| v.split(',').any(|s| s.trim() == service)).unwrap_or(false)
}

/// Skips (prints and returns `None`) or panics, per `GOSTINT_TEST_REQUIRE`.
pub fn missing<T>(service: &str, why: &str) -> Option<T> {
    if required(service) {
        panic!("GOSTINT_TEST_REQUIRE names {service}, but it is not available: {why}");
    }
    eprintln!("skipped: no {service} ({why})");
    None
}

/// Whether the Docker engine answers (the socket or DOCKER_HOST).
fn docker_up() -> bool {
    std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The real OpenBao and Docker engine, or `None` (skip) when they are not there.
pub fn services() -> Option<Services> {
    let v = vars();
    let get = |k: &str| v.get(k).filter(|s| !s.is_empty()).cloned();
    let (Some(vault_addr), Some(root_token), Some(role_id)) =
        (get("VAULT_ADDR"), get("GOSTINT_DEV_VAULT_ROOT_TOKEN"), get("GOSTINT_ROLEID"))
    else {
        return missing("vault", "run scripts/services up (VAULT_ADDR, GOSTINT_DEV_VAULT_ROOT_TOKEN, GOSTINT_ROLEID)");
    };
    if !docker_up() {
        return missing("docker", "the Docker engine does not answer");
    }
    Some(Services {
        vault_addr,
        root_token,
        role_id,
        role_name: get("GOSTINT_ROLENAME").unwrap_or_else(|| "gostint-role".into()),
        image: get("GOSTINT_TEST_IMAGE").unwrap_or_else(|| "gostint-test/busybox:latest".into()),
        image_nopasswd: get("GOSTINT_TEST_IMAGE_NOPASSWD").unwrap_or_else(|| "gostint-test/nopasswd:latest".into()),
        database_url: get("GOSTINT_TEST_DATABASE_URL"),
        approles: get("GOSTINT_TEST_APPROLES"),
    })
}

/// A requestor acting with the root token of the dev OpenBao, doing what `gostint-client`
/// does before a POST.
pub struct Requestor {
    /// Vault client.
    pub vault: VaultClient,
    /// The services.
    pub svc: Services,
}

impl Requestor {
    /// A requestor on these services.
    pub fn new(svc: &Services) -> Self {
        let vault = VaultClient::new(&VaultConfig::new(svc.vault_addr.clone())).expect("dev vault address is valid");
        Self { vault, svc: svc.clone() }
    }

    /// A fresh `default`-policy child of `parent` (the root token when `None`): a tenant.
    pub async fn token(&self, parent: Option<&str>, policies: &[&str]) -> String {
        let parent = parent.unwrap_or(&self.svc.root_token);
        let t = self.vault.create_token(parent, policies, "1h", None, None).await.expect("create token");
        t.token.expose_secret().to_string()
    }

    /// A response-wrapped secret id for `gostint-role`.
    pub async fn wrapped_secret_id(&self) -> String {
        self.vault
            .wrapped_secret_id(&self.svc.root_token, &self.svc.role_name, "10m")
            .await
            .expect("wrapped secret id")
            .expose_secret()
            .to_string()
    }

    /// A response-wrapped secret id for the AppRole `role` (a tenant).
    pub async fn wrapped_secret_id_for(&self, role: &str) -> String {
        self.vault
            .wrapped_secret_id(&self.svc.root_token, role, "10m")
            .await
            .expect("wrapped secret id")
            .expose_secret()
            .to_string()
    }

    /// transit-encrypt(base64(JSON(job))) under the transit key `key` (a tenant's name).
    pub async fn encrypt_for(&self, key: &str, job: &serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(job).expect("json"));
        self.vault.transit_encrypt(&self.svc.root_token, key, &b64).await.expect("transit encrypt")
    }

    /// transit-encrypt(base64(JSON(job))) under `gostint-role`.
    pub async fn encrypt(&self, job: &serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(job).expect("json"));
        self.vault.transit_encrypt(&self.svc.root_token, &self.svc.role_name, &b64).await.expect("transit encrypt")
    }

    /// A 2-use `default` token holding `payload` at `cubbyhole/job`; returns the token
    /// (one use spent on the write, one left for gostint).
    pub async fn cubby(&self, payload: &str) -> String {
        let t = self
            .vault
            .create_token(&self.svc.root_token, &["default"], "10m", Some(2), None)
            .await
            .expect("cubby token");
        let token = t.token.expose_secret().to_string();
        self.vault
            .write(&token, "cubbyhole/job", &serde_json::json!({ "payload": payload }))
            .await
            .expect("cubbyhole write");
        token
    }
}

/// One file of a content fixture: name, bytes, mode (uid/gid 2001).
pub struct ContentFile<'a> {
    /// Name in the tar, e.g. `./run.sh`.
    pub name: &'a str,
    /// Contents.
    pub data: &'a [u8],
    /// Mode bits.
    pub mode: u32,
}

/// A `targz,<base64>` content string with these files, owned by 2001:2001.
pub fn content(files: &[ContentFile<'_>]) -> String {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(f.data.len() as u64);
        h.set_mode(f.mode);
        h.set_uid(2001);
        h.set_gid(2001);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(f.name).expect("fixture names are valid");
        h.set_cksum();
        b.append(&h, f.data).expect("in-memory tar");
    }
    let tar = b.into_inner().expect("in-memory tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("in-memory gzip");
    let bytes = gz.finish().expect("in-memory gzip");
    format!("targz,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}
