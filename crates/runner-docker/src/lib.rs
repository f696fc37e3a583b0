//! gostint's [`ContainerRuntime`](gostint_core::ContainerRuntime) on the Docker Engine API,
//! through the `bollard` crate: [`DockerRuntime`].
//!
//! One [`DockerRuntime`] (cheap to clone) is made per process with
//! [`DockerRuntime::connect`], which reads the Docker CLI's own environment (`DOCKER_HOST`,
//! `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, `DOCKER_API_VERSION`, see [`DockerConnection`])
//! and negotiates the API version with the engine (docs/defects.md item 22: one shared client).
//!
//! Nothing outside this crate sees a bollard type: failures become
//! [`RuntimeError`](gostint_core::RuntimeError)s carrying the engine's own message and a
//! [`RuntimeErrorKind`](gostint_core::RuntimeErrorKind) the worker acts on. This crate must
//! not depend on the store, the API or Vault.
//!
//! Start reading at `runtime.rs` (the trait implementation, one Engine API call per
//! method), then `error.rs` (how failures are classified) and `tail.rs` (bounded log capture).

#![warn(missing_docs)]

mod connect;
mod error;
mod runtime;
mod tail;

pub use connect::DockerConnection;
pub use runtime::DockerRuntime;
pub use tail::TRUNCATION_MARKER;
