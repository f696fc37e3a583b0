//! gostint's v1 REST API: the routes of docs/design.md §2 on axum, authentication through Vault's
//! `lookup-self`, tenant visibility, and the contract's error bodies.
//!
//! It depends on `gostint-core` only: the store, Vault and Docker arrive as port traits in
//! [`AppState`]. Start at [`router`].
#![warn(missing_docs)]

mod audit;
mod error;
mod handlers;
mod live;
pub mod openapi;
pub mod ops;
mod protect;
mod tenants;
mod view;

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gostint_core::{ContainerRuntime, JobStore, JobVault, NodeControl};

pub use error::{ApiError, JsonLine};
pub use protect::{protect, Protection};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Job store.
    pub store: Arc<dyn JobStore>,
    /// Vault (token checks, cubbyhole reads).
    pub vault: Arc<dyn JobVault>,
    /// Container engine (health only).
    pub runtime: Arc<dyn ContainerRuntime>,
    /// This node's worker.
    pub node: Arc<dyn NodeControl>,
    /// Settings the API reads.
    pub cfg: Arc<ApiConfig>,
    /// Prometheus metrics.
    pub metrics: gostint_metrics::Metrics,
    /// The accepted tenants (job AppRoles), replaced on SIGHUP.
    pub tenants: gostint_core::TenantRegistry,
    /// Wakes streams and long-polls when a job changes (docs/design.md §12).
    pub live: Arc<gostint_core::live::LiveHub>,
}

/// API settings.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Policy that sees every job.
    pub admin_policy: String,
    /// Token needed for metrics and the full health map.
    pub protect_status: bool,
    /// Request body cap in bytes.
    pub max_body: usize,
    /// `VAULT_ADDR`.
    pub vault_addr: String,
    /// `VAULT_EXTERNAL_ADDR` (else `VAULT_ADDR`).
    pub vault_external_addr: String,
    /// `GOSTINT_TENANT_MAX_QUEUED` (`0` = no limit).
    pub tenant_max_queued: u64,
    /// Open streams per caller (`GOSTINT_MAX_STREAMS_PER_CALLER`, 0 = no cap).
    pub max_streams_per_caller: usize,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    router_with_ui(state, None)
}

/// [`router`], with `ui` (the embedded web UI, `GOSTINT_UI=1`) answering every path no API
/// route takes instead of the plain 404. The UI goes through the same middleware: metrics
/// (labelled `/*`), trailing-slash redirects and tracing.
pub fn router_with_ui(state: AppState, ui: Option<Router>) -> Router {
    let api = Router::new()
        .route("/v1/api/job", post(handlers::submit).get(handlers::list))
        .route("/v1/api/job/{jobID}", get(live::get_job).delete(handlers::delete))
        .route("/v1/api/job/{jobID}/stream", get(live::stream))
        .route("/v1/api/job/kill/{jobID}", post(handlers::kill))
        .route("/v1/api/health", get(handlers::health))
        .route("/v1/api/vault/info", get(handlers::vault_info))
        .route("/v1/api/tenants", get(handlers::tenants))
        .route("/v1/api/metrics", get(handlers::metrics))
        .route("/login", get(login_redirect));
    let api = match ui {
        Some(ui) => api.fallback_service(ui),
        None => api.fallback(not_found),
    };
    api.layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(strip_trailing_slash))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Records every request in `gostint_request_duration_seconds`, `path` being the route
/// template (`/v1/api/job/{jobID}`) or `/*` for anything unrouted: never the raw path.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/*".into());
    let method = protect::method_label(req.method());
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .request_duration
        .with_label_values(&[resp.status().as_str(), method, &path])
        .observe(start.elapsed().as_secs_f64());
    resp
}

async fn login_redirect() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "../")]).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 page not found\n")
        .into_response()
}

/// A path longer than `/` ending in `/` → 301 to the path without it, query kept.
async fn strip_trailing_slash(req: Request, next: Next) -> Response {
    let uri: &Uri = req.uri();
    let path = uri.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let location = protect::same_site_location(trimmed, uri.query());
        return (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response();
    }
    next.run(req).await
}
