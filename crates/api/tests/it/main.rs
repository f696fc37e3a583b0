//! API tests through `Router::oneshot` with a real SQLite store and fakes for what a real
//! server cannot be made to do on demand: a Docker engine that is down, Vault answering
//! 5xx, and the status-protection switch.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use gostint_api::{router, ApiConfig, AppState};
use gostint_core::*;
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

mod openapi;
mod ops;

struct FakeVault {
    up: bool,
}

#[async_trait]
impl JobVault for FakeVault {
    async fn lookup_self(&self, token: &str) -> Result<TokenInfo, VaultError> {
        if !self.up {
            return Err(VaultError::new(VaultErrorKind::Unavailable, "connection refused"));
        }
        match token {
            "good" => Ok(TokenInfo { entity_id: "e1".into(), accessor: "a1".into(), policies: vec!["default".into()] }),
            _ => Err(VaultError::new(VaultErrorKind::Denied, "permission denied")),
        }
    }
    async fn read_cubbyhole(&self, _: &str, _: &str) -> Result<Option<Map<String, Value>>, VaultError> {
        Ok(None)
    }
    async fn unwrap(&self, _: &str) -> Result<Map<String, Value>, VaultError> {
        unreachable!("the API never unwraps")
    }
    async fn approle_login(&self, _: &str, _: &str) -> Result<Option<String>, VaultError> {
        unreachable!("the API never logs in")
    }
    async fn transit_decrypt(&self, _: &str, _: &str, _: &str) -> Result<String, VaultError> {
        unreachable!("the API never decrypts")
    }
    async fn read_secret(&self, _: &str, _: &str) -> Result<Option<SecretData>, VaultError> {
        unreachable!("the API never reads secrets")
    }
    async fn revoke_self(&self, _: &str) -> Result<(), VaultError> {
        Ok(())
    }
    async fn wrapping_lookup(&self, _: &str) -> Result<gostint_core::WrapInfo, VaultError> {
        if !self.up {
            return Err(VaultError::new(VaultErrorKind::Unavailable, "connection refused"));
        }
        Ok(gostint_core::WrapInfo {
            creation_path: "auth/approle/role/gostint-role/secret-id".into(),
            expires: gostint_core::Timestamp::ZERO,
        })
    }
    async fn capabilities_self(
        &self,
        _: &str,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, VaultError> {
        Ok(paths.iter().map(|p| (p.clone(), vec!["update".to_string()])).collect())
    }
}

/// A Docker engine that is down.
struct DownRuntime;

fn down() -> RuntimeError {
    RuntimeError::new(RuntimeErrorKind::Transient, "connection refused")
}

#[async_trait]
impl ContainerRuntime for DownRuntime {
    async fn ensure_image(&self, _: &ImageRef, _: PullPolicy) -> Result<(), RuntimeError> {
        Err(down())
    }
    async fn create(&self, _: &ContainerSpec) -> Result<String, RuntimeError> {
        Err(down())
    }
    async fn image_id(&self, _: &str) -> Result<Option<String>, RuntimeError> {
        Err(down())
    }
    async fn read_file(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        Err(down())
    }
    async fn put_archive(&self, _: &str, _: Vec<u8>) -> Result<(), RuntimeError> {
        Err(down())
    }
    async fn start(&self, _: &str) -> Result<(), RuntimeError> {
        Err(down())
    }
    async fn wait(&self, _: &str) -> Result<i64, RuntimeError> {
        Err(down())
    }
    async fn logs(&self, _: &str, _: bool, _: usize) -> Result<ContainerLogs, RuntimeError> {
        Err(down())
    }
    async fn stop(&self, _: &str, _: Duration) -> Result<(), RuntimeError> {
        Err(down())
    }
    async fn remove(&self, _: &str) -> Result<(), RuntimeError> {
        Err(down())
    }
    async fn info(&self) -> Result<EngineInfo, RuntimeError> {
        Err(down())
    }
    async fn remove_labelled(&self, _: &str, _: &str) -> Result<u64, RuntimeError> {
        Err(down())
    }
}

struct Node(NodeId);

impl NodeControl for Node {
    fn node(&self) -> &NodeId {
        &self.0
    }
    fn state(&self) -> &'static str {
        "active"
    }
    fn wake(&self) {}
    fn wake_kills(&self) {}
}

async fn app(vault_up: bool, protect_status: bool) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = gostint_store_sqlite::SqliteJobStore::open_in(dir.path()).await.unwrap();
    let state = AppState {
        store: Arc::new(store),
        vault: Arc::new(FakeVault { up: vault_up }),
        runtime: Arc::new(DownRuntime),
        node: Arc::new(Node(NodeId::new("node-1"))),
        cfg: Arc::new(ApiConfig {
            admin_policy: "gostint-admin".into(),
            protect_status,
            max_body: 1 << 20,
            vault_addr: "http://vault:8200".into(),
            vault_external_addr: "https://vault.example".into(),
            tenant_max_queued: 10_000,
            max_streams_per_caller: 2,
        }),
        metrics: gostint_metrics::Metrics::new(),
        tenants: gostint_core::TenantRegistry::new(gostint_core::Tenants::single(
            Some("gostint-role".into()),
            "rid".into(),
        )),
        live: Default::default(),
    };
    (router(state), dir)
}

async fn call(app: &axum::Router, method: &str, uri: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let code = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn health_degrades_when_docker_is_down() {
    let (app, _dir) = app(true, false).await;
    let (code, body) = call(&app, "GET", "/v1/api/health", None).await;
    assert_eq!(code, StatusCode::OK);
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["state"], "active");
    assert_eq!(h["all_jobs"], "0");
    assert!(h.get("containers").is_none(), "docker keys are left out: {h}");
    let (code, body) = call(&app, "GET", "/v1/api/health?k=containers", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "Service Unavailable.", "error": "docker unavailable"})
    );
    let (code, body) = call(&app, "GET", "/v1/api/health?k=queued_jobs", None).await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "0"));
}

#[tokio::test]
async fn vault_outage_is_503_not_400() {
    let (app, _dir) = app(false, false).await;
    let (code, body) = call(&app, "GET", "/v1/api/job", Some("good")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "Service Unavailable.", "error": "vault unavailable"})
    );
    // The caller sees no Vault text or URL.
    assert!(!body.contains("refused"));
}

#[tokio::test]
async fn protect_status_guards_metrics_and_the_full_health_map_only() {
    let (app, _dir) = app(true, true).await;
    assert_eq!(call(&app, "GET", "/v1/api/metrics", None).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(call(&app, "GET", "/v1/api/metrics", Some("bad")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, "GET", "/v1/api/metrics", Some("good")).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/v1/api/health", None).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(call(&app, "GET", "/v1/api/health", Some("good")).await.0, StatusCode::OK);
    // Probes and the UI's login stay open.
    assert_eq!(call(&app, "GET", "/v1/api/health?k=state", None).await, (StatusCode::OK, "active".to_string()));
    let (code, body) = call(&app, "GET", "/v1/api/vault/info", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"vault_addr": "http://vault:8200", "vault_external_addr": "https://vault.example"})
    );
    assert!(body.ends_with('\n'), "JSON answers end with a newline");
}

#[tokio::test]
async fn a_cubbyhole_with_nothing_in_it_is_the_interception_alert() {
    let (app, _dir) = app(true, false).await;
    let req = Request::builder()
        .method("POST")
        .uri("/v1/api/job")
        .header("X-Auth-Token", "good")
        .body(Body::from(json!({"wrap_secret_id": "w", "cubby_token": "c", "cubby_path": "cubbyhole/job"}).to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "Internal Error.");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .starts_with("POSSIBLE SECURITY/INTERCEPTION ALERT!!! Failed to read cubbyhole from vault, error: "));
}
