//! gostint's core: the domain types of a job (ids, statuses, the job document, secret and
//! image references, content and secrets-file handling) and the port traits the adapters
//! implement ([`JobStore`], [`ContainerRuntime`], [`JobVault`]).
//!
//! It must not depend on sqlx, bollard, axum or an HTTP client. Start with [`JobStatus`]
//! (the state machine), [`SubmitRequest`] (what a requestor sends) and [`resolve()`] (how a
//! node layers the fields before a run).
#![warn(missing_docs)]

pub mod content;
pub mod group_commit;
mod ids;
mod job;
pub mod limits;
pub mod live;
mod ports;
mod redact;
mod refs;
mod resolve;
pub mod sandbox;
pub mod secrets;
mod status;
mod tenant;
mod time;

pub use ids::{InvalidJobId, JobId, NodeId, Owner};
pub use job::{JobDefinition, JobRecord, NewJob, Outcome, SubmitError, SubmitRequest};
pub use ports::*;
pub use refs::{
    ImageRef, InvalidImageRef, InvalidPullPolicy, InvalidSecretFileType, PullPolicy, SecretFileType, SecretRef,
    UnparseableSecretRef,
};
pub use resolve::{resolve, ResolveError, ResolvedJob};
pub use sandbox::{ByteSize, JobNetwork, Limits, Resources, SandboxPolicy};
pub use status::{InvalidTransition, JobEvent, JobStatus, UnknownStatus};
pub use tenant::{validate_tenant_name, Tenant, TenantError, TenantRegistry, Tenants, MAX_TENANT_NAME};
pub use time::Timestamp;

/// The git commit this build was made from (from `git` at build time, or the
/// `GOSTINT_BUILD_COMMIT` variable of the build; `unknown` outside a checkout).
pub const BUILD_COMMIT: &str = env!("GOSTINT_BUILD_COMMIT");

/// `<version> (commit <commit>)`, what `--version` prints for both binaries.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("GOSTINT_BUILD_COMMIT"), ")");
