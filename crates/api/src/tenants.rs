//! docs/design.md §10 at submission: which tenant a job belongs to (the creation path of its wrapped
//! secret-id) and whether that tenant may queue one more.

use gostint_core::{StoreError, Timestamp, VaultErrorKind};
use tracing::{info, warn};

use crate::error::ApiError;
use crate::AppState;

/// What a re-wrapped secret-id, another path, or an unconfigured AppRole gets.
pub(crate) const NOT_ACCEPTED: &str = "wrap_secret_id is not a secret-id of an accepted AppRole";
/// What an expired, used or unknown wrapping token gets.
pub(crate) const EXPIRED: &str = "wrap_secret_id is expired or unknown";

/// `sys/wrapping/lookup` (no Vault token, spends nothing): the secret-id must have been
/// wrapped by Vault at `auth/approle/role/<name>/secret-id` for a configured tenant `name`.
/// Anything else is what an interceptor who redeemed the original would send: 403, the
/// interception counter (`kind="creation_path"`) and a warning. Returns the tenant's name and
/// when the wrapping token expires (kept with the job: a token that lapses while the job is
/// queued is then not mistaken for an interception).
pub(crate) async fn check_secret_id(state: &AppState, wrap_token: &str) -> Result<(String, Timestamp), ApiError> {
    let info = match state.vault.wrapping_lookup(wrap_token).await {
        Ok(info) => info,
        Err(e) if e.kind == VaultErrorKind::Unavailable => {
            warn!(error = %e, "vault unavailable for the wrapping lookup");
            return Err(ApiError::Unavailable("vault unavailable"));
        }
        Err(e) => {
            info!(error = %e, "wrapping lookup refused: expired or unknown wrap_secret_id");
            return Err(ApiError::Forbidden(EXPIRED.into()));
        }
    };
    let tenants = state.tenants.current();
    match tenants.by_creation_path(&info.creation_path) {
        Some(t) => Ok((t.name.clone(), info.expires)),
        None => {
            // The path is Vault's, not a secret (e.g. `sys/wrapping/wrap`).
            warn!(
                alert = "interception",
                creation_path = %info.creation_path,
                "wrap_secret_id was not wrapped by an accepted AppRole: possible interception (re-wrapped secret-id) or an unconfigured tenant"
            );
            state.metrics.interception_alerts.with_label_values(&["creation_path"]).inc();
            Err(ApiError::Forbidden(NOT_ACCEPTED.into()))
        }
    }
}

/// `GOSTINT_TENANT_MAX_QUEUED`, early: 429 when the tenant already has that many queued
/// jobs, before a cubbyhole token is spent. The store enforces the limit strictly at the
/// insert (count and insert atomic, over every node): simultaneous POSTs that pass this
/// check get the same 429 from [`quota_or_store`].
pub(crate) async fn check_quota(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    let limit = state.cfg.tenant_max_queued;
    if limit == 0 {
        return Ok(());
    }
    let queued = state.store.count_queued(tenant).await.map_err(ApiError::store)?;
    if queued >= limit {
        return Err(refused(state, tenant, queued, limit));
    }
    Ok(())
}

/// An enqueue's failure: the store's [`StoreError::QueueQuota`] is the 429 of
/// [`check_quota`], anything else a store failure.
pub(crate) fn quota_or_store(state: &AppState, e: StoreError) -> ApiError {
    match e {
        StoreError::QueueQuota { tenant, queued, limit } => refused(state, &tenant, queued, limit),
        e => ApiError::store(e),
    }
}

fn refused(state: &AppState, tenant: &str, queued: u64, limit: u64) -> ApiError {
    state.metrics.tenant_quota_refusals.with_label_values(&[tenant]).inc();
    info!(tenant, queued, limit, "tenant queue quota reached");
    ApiError::TooMany(format!("tenant {tenant} has {queued} queued jobs (limit {limit})"))
}

/// `GET /v1/api/tenants`: the configured tenants whose AppRole secret-id the caller's Vault
/// token may request (`update` or `create` on `auth/approle/role/<name>/secret-id`, as
/// Vault's `sys/capabilities-self` says; a root token may do anything). Names only, never
/// role ids. The unnamed single tenant has no name to offer: an empty list.
pub(crate) async fn usable(state: &AppState, token: &str) -> Result<Vec<String>, ApiError> {
    let tenants = state.tenants.current();
    let names: Vec<String> = tenants.all().iter().map(|t| t.name.clone()).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Ok(names);
    }
    let path = |n: &str| format!("auth/approle/role/{n}/secret-id");
    let paths: Vec<String> = names.iter().map(|n| path(n)).collect();
    let caps = match state.vault.capabilities_self(token, &paths).await {
        Ok(c) => c,
        Err(e) if e.kind == VaultErrorKind::Denied => {
            info!(error = %e, "capabilities-self refused");
            return Err(ApiError::Denied);
        }
        Err(e) if e.kind == VaultErrorKind::Unavailable => {
            warn!(error = %e, "vault unavailable for capabilities-self");
            return Err(ApiError::Unavailable("vault unavailable"));
        }
        Err(e) => {
            warn!(error = %e, "capabilities-self answer unusable");
            return Err(ApiError::Internal("vault answered capabilities-self with something unusable".into()));
        }
    };
    Ok(names
        .into_iter()
        .filter(|n| caps.get(&path(n)).is_some_and(|c| c.iter().any(|c| c == "update" || c == "create" || c == "root")))
        .collect())
}

/// Refreshes `gostint_tenant_queued_jobs` for every configured tenant (before a scrape).
pub(crate) async fn refresh_gauges(state: &AppState) {
    let tenants = state.tenants.current();
    for t in tenants.all() {
        match state.store.count_queued(&t.name).await {
            Ok(n) => {
                state.metrics.tenant_queued.with_label_values(&[&t.name]).set(i64::try_from(n).unwrap_or(i64::MAX))
            }
            Err(e) => warn!(error = %e, "could not count a tenant's queued jobs for the metrics"),
        }
    }
}
