//! Operating the API (docs/design.md §13): liveness and readiness routes, the access log
//! with a request id, the scrape token for metrics, gzip, and a cached engine `info` so
//! `/health` and `/readyz` do not ask Docker on every request.
//!
//! [`wrap`] takes the router of [`crate::router`] and adds all of it around; nothing in
//! the job routes changes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gostint_core::{
    ContainerLogs, ContainerRuntime, ContainerSpec, EngineInfo, ImageRef, JobStatus, PullPolicy, RuntimeError,
    RuntimeErrorKind,
};
use serde::Serialize;
use tracing::{info, warn, Instrument};

use crate::error::{ApiError, JsonLine};
use crate::AppState;

/// The answer header (and accepted request header) carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// A readiness probe of something the API has no port for (Vault's `sys/health`): Ok, or
/// a short reason.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What [`wrap`] needs beyond [`AppState`].
#[derive(Clone)]
pub struct OpsConfig {
    /// `GOSTINT_METRICS_TOKEN`: a static bearer token that reads `/v1/api/metrics` even
    /// with `GOSTINT_PROTECT_STATUS=1` (Prometheus cannot renew a Vault token).
    pub metrics_token: Option<String>,
    /// Vault readiness (`sys/health`).
    pub vault_probe: Probe,
    /// How long one readiness check may take before it counts as down.
    pub probe_timeout: Duration,
}

#[derive(Clone)]
struct OpsState {
    app: AppState,
    ops: OpsConfig,
}

/// Adds `/v1/api/livez`, `/v1/api/readyz`, `/v1/api/openapi.json`, the metrics scrape token, gzip and the access log
/// with `X-Request-Id` around `router`.
pub fn wrap(router: Router, app: AppState, ops: OpsConfig) -> Router {
    let state = OpsState { app, ops };
    let extra = Router::new()
        .route("/v1/api/livez", get(livez))
        .route("/v1/api/readyz", get(readyz))
        .route("/v1/api/openapi.json", get(crate::openapi::serve))
        .with_state(state.clone());
    router
        .merge(extra)
        .layer(middleware::from_fn_with_state(state, scrape))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(middleware::from_fn(access_log))
}

#[derive(Serialize)]
struct Live {
    status: &'static str,
}

/// `GET /v1/api/livez`: the process answers. Nothing else is asked.
async fn livez() -> Response {
    JsonLine(Live { status: "ok" }).into_response()
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    node: &'static str,
    store: String,
    vault: String,
    docker: String,
}

/// `GET /v1/api/readyz`: 200 when this node takes work (active, and the store, Vault and
/// Docker answer); 503 otherwise, naming what is not. Reasons stay short and carry no
/// addresses or credentials (the detail goes to the log).
async fn readyz(State(s): State<OpsState>) -> Response {
    let limit = s.ops.probe_timeout;
    let node = s.app.node.state();
    let store = async {
        match tokio::time::timeout(limit, s.app.store.count_active_on(s.app.node.node())).await {
            Ok(Ok(_)) => "ok".to_string(),
            Ok(Err(e)) => {
                warn!(error = %e, "readyz: store check failed");
                "down".into()
            }
            Err(_) => "timeout".into(),
        }
    };
    let vault = async {
        match tokio::time::timeout(limit, (s.ops.vault_probe)()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => {
                warn!(error = %e, "readyz: vault check failed");
                "down".into()
            }
            Err(_) => "timeout".into(),
        }
    };
    let docker = async {
        match tokio::time::timeout(limit, s.app.runtime.info()).await {
            Ok(Ok(_)) => "ok".to_string(),
            Ok(Err(e)) => {
                warn!(error = %e, "readyz: docker check failed");
                "down".into()
            }
            Err(_) => "timeout".into(),
        }
    };
    let (store, vault, docker) = tokio::join!(store, vault, docker);
    let ready = node == "active" && store == "ok" && vault == "ok" && docker == "ok";
    let body = Ready { status: if ready { "ready" } else { "not ready" }, node, store, vault, docker };
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, JsonLine(body)).into_response()
}

/// `/v1/api/metrics`: refreshes the queue-depth gauges from the store, then answers a
/// request that carries `Authorization: Bearer <GOSTINT_METRICS_TOKEN>` itself (403 for a
/// wrong one); any other request goes on to the route and its `X-Auth-Token` rule.
async fn scrape(State(s): State<OpsState>, req: Request, next: Next) -> Response {
    if req.uri().path() != "/v1/api/metrics" {
        return next.run(req).await;
    }
    match s.app.store.count_by_status().await {
        Ok(counts) => {
            for st in JobStatus::ALL {
                let n = counts.get(&st).copied().unwrap_or(0);
                s.app.metrics.jobs_by_status.with_label_values(&[st.as_str()]).set(n as i64);
            }
        }
        Err(e) => {
            // Counted in gostint_port_errors_total{port="store"} by the node's metered store.
            warn!(error = %e, "metrics: could not count jobs by status");
        }
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    match (bearer, &s.ops.metrics_token) {
        (Some(given), Some(expected)) => {
            if constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.app.metrics.render())
                    .into_response()
            } else {
                info!("metrics: wrong scrape token");
                ApiError::Denied.into_response()
            }
        }
        _ => next.run(req).await,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A request id: the caller's `X-Request-Id` when it is short printable ASCII, else a
/// fresh one (process start in µs + a counter: unique per node, ordered).
fn request_id(given: Option<&HeaderValue>) -> String {
    if let Some(v) = given.and_then(|v| v.to_str().ok()) {
        if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()) {
            return v.to_string();
        }
    }
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
    });
    format!("{start:x}-{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// The access log: one info line per request (method, path without the query, status,
/// duration, request id) in a span holding the request id, so every log line the
/// request causes carries it. The id goes back in `X-Request-Id`.
async fn access_log(req: Request, next: Next) -> Response {
    let id = request_id(req.headers().get(REQUEST_ID));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id);
    let start = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    span.in_scope(|| {
        info!(
            target: "gostint::access",
            method = %method,
            path = %path,
            status,
            duration_ms = start.elapsed().as_secs_f64() * 1000.0,
            request_id = %id,
            "request"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// A [`ContainerRuntime`] whose `info` answer (success or failure) is remembered for `ttl`,
/// one engine call at a time: `/health` and `/readyz` then cost no engine call per request.
/// Every other call goes straight through.
pub struct CachedEngineInfo {
    inner: Arc<dyn ContainerRuntime>,
    ttl: Duration,
    cache: tokio::sync::Mutex<Option<(Instant, CachedInfo)>>,
}

/// A remembered `info` answer (the error as its kind and message: `RuntimeError` is not `Clone`).
type CachedInfo = Result<EngineInfo, (RuntimeErrorKind, String)>;

impl CachedEngineInfo {
    /// Wraps `inner`, remembering `info` for `ttl`.
    pub fn new(inner: Arc<dyn ContainerRuntime>, ttl: Duration) -> Self {
        Self { inner, ttl, cache: tokio::sync::Mutex::new(None) }
    }
}

#[async_trait]
impl ContainerRuntime for CachedEngineInfo {
    async fn ensure_image(&self, image: &ImageRef, policy: PullPolicy) -> Result<(), RuntimeError> {
        self.inner.ensure_image(image, policy).await
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.inner.create(spec).await
    }
    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        self.inner.image_id(image).await
    }
    async fn read_file(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        self.inner.read_file(id, path).await
    }
    async fn put_archive(&self, id: &str, tar: Vec<u8>) -> Result<(), RuntimeError> {
        self.inner.put_archive(id, tar).await
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.inner.start(id).await
    }
    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        self.inner.wait(id).await
    }
    async fn logs(&self, id: &str, tty: bool, max_bytes: usize) -> Result<ContainerLogs, RuntimeError> {
        self.inner.logs(id, tty, max_bytes).await
    }
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        self.inner.stop(id, grace).await
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.inner.remove(id).await
    }
    async fn info(&self) -> Result<EngineInfo, RuntimeError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, answer)) = cache.as_ref() {
            if at.elapsed() < self.ttl {
                return answer.clone().map_err(|(kind, message)| RuntimeError::new(kind, message));
            }
        }
        let answer = self.inner.info().await;
        let kept = match &answer {
            Ok(info) => Ok(info.clone()),
            Err(e) => Err((e.kind, e.message.clone())),
        };
        *cache = Some((Instant::now(), kept));
        answer
    }
    async fn exited_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<gostint_core::ExitedContainer>, RuntimeError> {
        self.inner.exited_labelled(key, value).await
    }
    async fn remove_labelled(&self, key: &str, value: &str) -> Result<u64, RuntimeError> {
        self.inner.remove_labelled(key, value).await
    }
    async fn follow_logs(
        &self,
        id: &str,
        tty: bool,
        sink: &mut (dyn FnMut(gostint_core::LogChunk) + Send),
    ) -> Result<(), RuntimeError> {
        self.inner.follow_logs(id, tty, sink).await
    }
    async fn oom_killed(&self, id: &str) -> Result<bool, RuntimeError> {
        self.inner.oom_killed(id).await
    }
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.inner.ensure_network(name).await
    }
    async fn engine_id(&self) -> Result<String, RuntimeError> {
        self.inner.engine_id().await
    }
    async fn remove_image(&self, image: &str) -> Result<bool, RuntimeError> {
        self.inner.remove_image(image).await
    }
}
