//! gostint's Vault/OpenBao client: [`VaultClient`], an HTTP client (reqwest, rustls) that
//! implements the core's [`JobVault`](gostint_core::JobVault) port — token lookup, cubbyhole
//! and secret reads, unwrap, AppRole login, transit decrypt, revoke (docs/design.md §2.3, §2.5, §3.6,
//! §4) — plus the requestor-side calls `gostint-client` makes before submitting a job
//! (token creation, wrapped secret-ids, transit encrypt, cubbyhole writes; docs/design.md §7).
//!
//! Start at [`VaultClient::new`] with a [`VaultConfig`]. The client holds no token: each call
//! takes the token it acts with as `&str`, and tokens this crate hands back are
//! [`secrecy::SecretString`]s. Error messages ([`gostint_core::VaultError`]) carry Vault's
//! `errors`, or the transport failure, with method and API path — never a token, a host or
//! a query. How a failure is classed:
//!
//! | What happened | [`VaultErrorKind`](gostint_core::VaultErrorKind) |
//! |---|---|
//! | connection refused, TLS failure, timeout, 5xx | `Unavailable` |
//! | 4xx (permission denied, spent or unknown token, bad request) | `Denied` |
//! | a 2xx answer that is not the JSON expected | `Invalid` |
//!
//! Reads (`lookup-self`, secret and cubbyhole reads, `lookup-accessor`) are retried on
//! transport errors and 502/503/504, three attempts at most with a 100 ms doubling pause;
//! timeouts are not retried. Nothing else is ever retried: unwrap and secret-ids are single
//! use, and a repeated login or token creation would mint a second token. Redirects are not
//! followed, so `X-Vault-Token` cannot be carried to another host.
//!
//! This crate knows HTTP and Vault's JSON; it must not know the store, Docker or axum.

#![warn(missing_docs)]

mod check;
mod client;
mod job;
mod lease;
mod requestor;
mod tls;

pub use check::RoleIdCheck;
pub use client::{VaultBuildError, VaultClient, VaultConfig, DEFAULT_TIMEOUT};
pub use lease::{LeasedSecret, LoginToken};
pub use requestor::CreatedToken;
