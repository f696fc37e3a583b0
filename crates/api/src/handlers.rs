//! The route handlers.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use gostint_core::{
    InvalidJobId, JobId, JobRecord, JobStatus, NewJob, Owner, SubmitRequest, Timestamp, VaultErrorKind, Visibility,
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ApiError, JsonLine};
use crate::view::JobView;
use crate::AppState;

/// The authenticated caller of a job route.
pub(crate) struct Caller {
    owner: Owner,
    admin: bool,
}

impl Caller {
    fn visibility(&self) -> Visibility<'_> {
        if self.admin {
            Visibility::All
        } else {
            Visibility::Owner(&self.owner)
        }
    }

    pub(crate) fn may_see(&self, job: &JobRecord) -> bool {
        self.admin || job.owner == self.owner
    }

    /// Who the per-caller stream cap counts.
    pub(crate) fn key(&self) -> String {
        self.owner.as_str().to_string()
    }

    /// Who this caller is, for audit events (the tenant goes here once tenants exist).
    fn actor(&self) -> crate::audit::Actor<'_> {
        crate::audit::Actor { identity: self.owner.as_str(), admin: self.admin, tenant: None }
    }

    /// [`Caller::actor`] acting for `tenant` (a submission: the secret-id's AppRole).
    fn actor_in<'a>(&'a self, tenant: &'a str) -> crate::audit::Actor<'a> {
        crate::audit::Actor { tenant: Some(tenant), ..self.actor() }
    }
}

/// One `lookup-self` per request, no caching (a use-limited token spends one use).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = headers
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadRequest("Missing X-Auth-Token".into()))?;
    match state.vault.lookup_self(token).await {
        Ok(info) => Ok(Caller { owner: info.owner(), admin: info.is_admin(&state.cfg.admin_policy) }),
        Err(e) if e.kind == VaultErrorKind::Denied => {
            info!(error = %e, "X-Auth-Token refused by vault");
            Err(ApiError::Denied)
        }
        Err(e) => {
            warn!(error = %e, "vault unavailable for token lookup");
            Err(ApiError::Unavailable("vault unavailable"))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers).await
    }
}

/// The `{jobID}` of a job route, checked for the ObjectId shape (400 otherwise). Put it after
/// [`Caller`] in a handler's arguments: authentication comes first, as in the original.
pub(crate) struct JobIdParam(pub(crate) JobId);

impl FromRequestParts<AppState> for JobIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadJob(InvalidJobId.to_string()))?;
        text.parse::<JobId>().map(JobIdParam).map_err(|e| ApiError::BadJob(e.to_string()))
    }
}

/// The body as bytes, refusing more than the cap with 413.
async fn read_body(body: Body, max: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, max).await.map_err(|e| {
        // to_bytes fails for a length-limit breach or a broken stream; both are the caller's.
        let over_limit = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over_limit {
            ApiError::TooLarge
        } else {
            ApiError::BadJob(format!("could not read the request body: {e}"))
        }
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Submitted {
    _id: String,
    status: &'static str,
    qname: String,
}

const CUBBY_ALERT: &str = "POSSIBLE SECURITY/INTERCEPTION ALERT!!! Failed to read cubbyhole from vault, error: ";

/// `POST /v1/api/job`.
pub(crate) async fn submit(State(state): State<AppState>, caller: Caller, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.cfg.max_body).await?;
    // JSON whatever the Content-Type (the original's clients send none or form-urlencoded).
    let mut req: SubmitRequest = serde_json::from_slice(&bytes).map_err(|e| ApiError::BadJob(e.to_string()))?;
    req.validate().map_err(|e| ApiError::BadJob(e.to_string()))?;

    let (tenant, wrap_expires) = crate::tenants::check_secret_id(&state, &req.wrap_secret_id).await?;
    crate::tenants::check_quota(&state, &tenant).await?;
    if !req.cubby_token.is_empty() {
        req.payload = read_cubby_payload(&state, &req.cubby_token, &req.cubby_path).await?;
    }
    let submitted = Timestamp::now();
    let id = JobId::new(submitted.unix_seconds());
    let qname = req.job.qname.to_lowercase();
    let mut definition = req.job;
    definition.qname = qname.clone();
    let job = NewJob {
        id,
        qname: qname.clone(),
        owner: caller.owner.clone(),
        submitted,
        definition,
        wrap_secret_id: req.wrap_secret_id,
        payload: (!req.payload.is_empty()).then_some(req.payload),
        tenant: tenant.clone(),
        wrap_expires,
    };
    state.store.enqueue(job).await.map_err(|e| crate::tenants::quota_or_store(&state, e))?;
    state.node.wake();
    info!(job_id = %id, qname = %qname, tenant = %tenant, "job queued");
    crate::audit::record("submit", &caller.actor_in(&tenant), &id, "queued");
    Ok(JsonLine(Submitted { _id: id.to_string(), status: "queued", qname }).into_response())
}

/// Mode B: the still-encrypted payload from the 2-use token's cubbyhole. Any failure is the
/// contract's interception alert (someone may have spent the token first).
async fn read_cubby_payload(state: &AppState, token: &str, path: &str) -> Result<String, ApiError> {
    let alert = |detail: String| {
        warn!(alert = "interception", detail = %detail, "cubbyhole could not be read: possible interception");
        state.metrics.interception_alerts.with_label_values(&["cubbyhole"]).inc();
        ApiError::Internal(format!("{CUBBY_ALERT}{detail}"))
    };
    let path = path.trim_start_matches('/').trim_start_matches("v1/");
    match state.vault.read_cubbyhole(token, path).await {
        Err(e) => Err(alert(e.to_string())),
        Ok(None) => Err(alert("no data stored at the cubbyhole path".into())),
        Ok(Some(data)) => match data.get("payload") {
            Some(serde_json::Value::String(p)) => Ok(p.clone()),
            _ => Err(alert("cubbyhole data has no string payload".into())),
        },
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    skip: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ListPage {
    data: Vec<JobView>,
    skip: u64,
    limit: u64,
    total: u64,
}

const PAGE: u64 = 10;

/// `GET /v1/api/job?skip=N`.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    // Not an integer → 0; negative → 0 (the original answered 500).
    let skip = q.skip.as_deref().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0).max(0) as u64;
    let (jobs, total) = state.store.list(caller.visibility(), skip, PAGE).await.map_err(ApiError::store)?;
    let data = jobs.into_iter().map(JobView::from).collect();
    Ok(JsonLine(ListPage { data, skip, limit: PAGE, total }).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Deleted {
    _id: String,
}

/// `DELETE /v1/api/job/{id}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    JobIdParam(id): JobIdParam,
) -> Result<Response, ApiError> {
    let outcome = state.store.delete(&id, caller.visibility()).await.map_err(ApiError::store)?;
    let said = match outcome {
        gostint_core::DeleteOutcome::Deleted => "deleted",
        gostint_core::DeleteOutcome::NotFound => "not found",
        gostint_core::DeleteOutcome::Active => "refused: active",
    };
    crate::audit::record("delete", &caller.actor(), &id, said);
    match outcome {
        gostint_core::DeleteOutcome::Deleted => Ok(JsonLine(Deleted { _id: id.to_string() }).into_response()),
        gostint_core::DeleteOutcome::NotFound => Err(ApiError::NotFound),
        gostint_core::DeleteOutcome::Active => Err(ApiError::BadJob("Cannot delete a running/stopping job".into())),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Killed {
    _id: String,
    container_id: String,
    status: &'static str,
    kill_requested: bool,
}

/// `POST /v1/api/job/kill/{id}`.
pub(crate) async fn kill(
    State(state): State<AppState>,
    caller: Caller,
    JobIdParam(id): JobIdParam,
) -> Result<Response, ApiError> {
    let outcome =
        state.store.request_kill(&id, caller.visibility(), Timestamp::now()).await.map_err(ApiError::store)?;
    let Some(outcome) = outcome else {
        crate::audit::record("kill", &caller.actor(), &id, "not found");
        return Err(ApiError::NotFound);
    };
    crate::audit::record("kill", &caller.actor(), &id, &format!("requested (was {})", outcome.previous));
    if outcome.previous.is_active() {
        state.node.wake_kills();
    } else {
        // A queued job ended `failed` at once: its followers should see it.
        state.live.publish(id);
    }
    info!(job_id = %id, previous = %outcome.previous, "kill requested");
    Ok(JsonLine(Killed {
        _id: id.to_string(),
        container_id: outcome.container_id,
        status: outcome.previous.as_str(),
        kill_requested: true,
    })
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct HealthQuery {
    k: Option<String>,
}

const DOCKER_KEYS: [&str; 8] = [
    "containers",
    "containers_running",
    "containers_paused",
    "containers_stopped",
    "images",
    "mem_total",
    "architecture",
    "operating_system",
];

/// `GET /v1/api/health[?k=<key>]`.
pub(crate) async fn health(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HealthQuery>,
) -> Result<Response, ApiError> {
    // A sent token is checked (and is required for the whole map with
    // GOSTINT_PROTECT_STATUS); an admin's answer adds each tenant's load.
    let caller = if headers.contains_key("X-Auth-Token") || (q.k.is_none() && state.cfg.protect_status) {
        Some(authenticate(&state, &headers).await?)
    } else {
        None
    };
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    map.insert("state".into(), state.node.state().into());
    map.insert("node_uuid".into(), state.node.node().to_string());
    let counts = state.store.count_by_status().await.map_err(ApiError::store)?;
    let mut all = 0;
    for st in JobStatus::ALL {
        let n = counts.get(&st).copied().unwrap_or(0);
        all += n;
        map.insert(format!("{}_jobs", st.as_str()), n.to_string());
    }
    map.insert("all_jobs".into(), all.to_string());
    if caller.is_some_and(|c| c.admin) {
        tenant_loads(&state, &mut map).await?;
    }
    let mine = state.store.count_active_on(state.node.node()).await.map_err(ApiError::store)?;
    map.insert("node_running_jobs".into(), mine.to_string());
    let docker_up = match state.runtime.info().await {
        Ok(i) => {
            map.insert("containers".into(), i.containers.to_string());
            map.insert("containers_running".into(), i.containers_running.to_string());
            map.insert("containers_paused".into(), i.containers_paused.to_string());
            map.insert("containers_stopped".into(), i.containers_stopped.to_string());
            map.insert("images".into(), i.images.to_string());
            map.insert("mem_total".into(), i.mem_total.to_string());
            map.insert("architecture".into(), i.architecture);
            map.insert("operating_system".into(), i.operating_system);
            true
        }
        Err(e) => {
            warn!(error = %e, "docker unavailable for health");
            false
        }
    };
    match q.k {
        None => Ok(JsonLine(map).into_response()),
        Some(k) => match map.get(&k) {
            Some(v) => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], v.clone()).into_response()),
            None if !docker_up && DOCKER_KEYS.contains(&k.as_str()) => Err(ApiError::Unavailable("docker unavailable")),
            None => Err(ApiError::BadRequest("Invalid health metric key".into())),
        },
    }
}

/// The admin form of `/health`: `tenant.<name>.queued_jobs` and `tenant.<name>.running_jobs`
/// (`running` + `stopping`) for every configured tenant and every tenant with jobs (the
/// unnamed single tenant has only the totals). Other callers never see tenant names.
async fn tenant_loads(state: &AppState, map: &mut BTreeMap<String, String>) -> Result<(), ApiError> {
    let mut load = state.store.count_by_tenant().await.map_err(ApiError::store)?;
    for t in state.tenants.current().all() {
        load.entry(t.name.clone()).or_default();
    }
    for (tenant, l) in load.into_iter().filter(|(t, _)| !t.is_empty()) {
        map.insert(format!("tenant.{tenant}.queued_jobs"), l.queued.to_string());
        map.insert(format!("tenant.{tenant}.running_jobs"), l.running.to_string());
    }
    Ok(())
}

/// The answer of `GET /v1/api/tenants`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TenantList {
    /// Tenant (AppRole) names the caller may submit as.
    tenants: Vec<String>,
}

/// `GET /v1/api/tenants`: the tenants the caller's token may use (see [`crate::tenants::usable`]).
pub(crate) async fn tenants(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authenticate(&state, &headers).await?;
    let token = headers.get("X-Auth-Token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let tenants = crate::tenants::usable(&state, token).await?;
    Ok(JsonLine(TenantList { tenants }).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VaultInfo {
    vault_addr: String,
    vault_external_addr: String,
}

/// `GET /v1/api/vault/info`.
pub(crate) async fn vault_info(State(state): State<AppState>) -> Response {
    JsonLine(VaultInfo {
        vault_addr: state.cfg.vault_addr.clone(),
        vault_external_addr: state.cfg.vault_external_addr.clone(),
    })
    .into_response()
}

/// `GET /v1/api/metrics`: Prometheus text (behind a token with `GOSTINT_PROTECT_STATUS=1`).
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if state.cfg.protect_status {
        authenticate(&state, &headers).await?;
    }
    crate::tenants::refresh_gauges(&state).await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response())
}
