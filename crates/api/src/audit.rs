//! Audit events: one `info` line under the target `gostint::audit` for every submit, kill
//! and delete, naming who (the caller's Vault identity, never a token), for which tenant,
//! what and on which job. Filter them with `RUST_LOG=gostint::audit=info` or by `target`.

use gostint_core::JobId;
use tracing::info;

/// Who acted.
pub(crate) struct Actor<'a> {
    /// The Vault identity the job is owned by (entity id, else token accessor).
    pub(crate) identity: &'a str,
    /// Whether the caller holds the admin policy.
    pub(crate) admin: bool,
    /// The caller's tenant, once tenants exist: the one place to fill in is
    /// `Caller::actor` in handlers.rs.
    pub(crate) tenant: Option<&'a str>,
}

/// Records `action` (`submit`, `kill`, `delete`) on `job` with its `outcome`.
pub(crate) fn record(action: &'static str, actor: &Actor<'_>, job: &JobId, outcome: &str) {
    info!(
        target: "gostint::audit",
        audit = action,
        identity = actor.identity,
        admin = actor.admin,
        tenant = actor.tenant.unwrap_or("-"),
        job_id = %job,
        outcome,
        "audit"
    );
}
