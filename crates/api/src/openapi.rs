//! `GET /v1/api/openapi.json`: the OpenAPI 3.1 document of every route, generated with
//! `utoipa` from the types the handlers answer with (the job view, the submit, list, kill,
//! delete and error bodies). Only the request body of a submit is described here by its own
//! type: the handler reads `gostint_core::SubmitRequest`, whose allow-list it mirrors.
//! The API tests check real answers against this document.

#![allow(dead_code)] // the path functions exist only to carry their `#[utoipa::path]`

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::handlers::{Deleted, Killed, ListPage, Submitted, TenantList, VaultInfo};
use crate::view::JobView;

/// A job submission (docs/design.md §2.5): job fields plus the transport fields.
#[derive(Serialize, ToSchema)]
struct SubmitBody {
    /// Queue name (lower-cased by the server).
    qname: Option<String>,
    /// Response-wrapping token holding a secret id of the job AppRole. Required.
    wrap_secret_id: String,
    /// Mode B: a 2-use token whose cubbyhole holds the encrypted payload.
    cubby_token: Option<String>,
    /// Mode B: the cubbyhole path (normally `cubbyhole/job`).
    cubby_path: Option<String>,
    /// Mode C: transit ciphertext of the job definition.
    payload: Option<String>,
    /// Image reference.
    container_image: Option<String>,
    /// `IfNotPresent` (default) or `Always`.
    image_pull_policy: Option<String>,
    /// `targz,<base64 of a .tar.gz>`.
    content: Option<String>,
    /// Docker entrypoint.
    entrypoint: Option<Vec<String>>,
    /// Docker command.
    run: Option<Vec<String>>,
    /// Working directory.
    working_directory: Option<String>,
    /// `NAME=value` entries.
    env_vars: Option<Vec<String>>,
    /// `<var>@<vault path>.<key>` entries.
    secret_refs: Option<Vec<String>>,
    /// `yaml` (default) or `json`.
    secret_file_type: Option<String>,
    /// Continue when Vault answers a secret read with warnings.
    cont_on_warnings: Option<bool>,
    /// Allocate a TTY (combined output).
    tty: Option<bool>,
}

/// Every error: exactly these two keys (docs/design.md §2.2).
#[derive(Serialize, ToSchema)]
struct ErrorBody {
    /// The status text, e.g. `Invalid job request.`.
    status: String,
    /// The detail, e.g. `not found`.
    error: String,
}

/// `/v1/api/livez`.
#[derive(Serialize, ToSchema)]
struct Live {
    status: String,
}

/// `/v1/api/readyz`: `status` is `ready` or `not ready`; each part `ok`, `down` or
/// `timeout`; `node` is `active` or `draining`.
#[derive(Serialize, ToSchema)]
struct Ready {
    status: String,
    node: String,
    store: String,
    vault: String,
    docker: String,
}

#[utoipa::path(post, path = "/v1/api/job", tag = "jobs",
    params(("X-Auth-Token" = String, Header, description = "a Vault token")),
    request_body(content = SubmitBody, description = "JSON whatever the Content-Type"),
    responses(
        (status = 200, description = "queued", body = Submitted),
        (status = 400, description = "missing token or invalid job request", body = ErrorBody),
        (status = 403, description = "Vault refused the token", body = ErrorBody),
        (status = 413, description = "body over GOSTINT_MAX_BODY", body = ErrorBody),
        (status = 500, description = "store failure or cubbyhole interception alert", body = ErrorBody),
        (status = 503, description = "Vault unavailable", body = ErrorBody),
    ))]
fn submit() {}

#[utoipa::path(get, path = "/v1/api/job", tag = "jobs",
    params(("X-Auth-Token" = String, Header, description = "a Vault token"),
           ("skip" = Option<u64>, Query, description = "jobs to skip; not a non-negative integer → 0")),
    responses(
        (status = 200, description = "the caller's jobs, newest first, 10 a page", body = ListPage),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
fn list() {}

#[utoipa::path(get, path = "/v1/api/job/{jobID}", tag = "jobs",
    params(("X-Auth-Token" = String, Header, description = "a Vault token"),
           ("jobID" = String, Path, description = "24 hex digits")),
    responses(
        (status = 200, description = "the job", body = JobView),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "absent or not the caller's", body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
fn get_job() {}

#[utoipa::path(delete, path = "/v1/api/job/{jobID}", tag = "jobs",
    params(("X-Auth-Token" = String, Header, description = "a Vault token"),
           ("jobID" = String, Path, description = "24 hex digits")),
    responses(
        (status = 200, description = "deleted (a queued job is cancelled)", body = Deleted),
        (status = 400, description = "running/stopping, or a bad id", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
fn delete() {}

#[utoipa::path(post, path = "/v1/api/job/kill/{jobID}", tag = "jobs",
    params(("X-Auth-Token" = String, Header, description = "a Vault token"),
           ("jobID" = String, Path, description = "24 hex digits")),
    responses(
        (status = 200, description = "kill requested; `status` is the status before the call", body = Killed),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
fn kill() {}

#[utoipa::path(get, path = "/v1/api/health", tag = "status",
    params(("k" = Option<String>, Query, description = "one key: the bare value as text/plain"),
           ("X-Auth-Token" = Option<String>, Header, description = "optional; an admin token adds `tenant.<name>.queued_jobs` and `tenant.<name>.running_jobs`")),
    responses(
        (status = 200, description = "every value a string (JSON), or with `k` the bare value as text/plain",
         body = std::collections::BTreeMap<String, String>),
        (status = 400, description = "unknown key, or the token missing with GOSTINT_PROTECT_STATUS=1", body = ErrorBody),
        (status = 403, description = "a token was sent and Vault refused it", body = ErrorBody),
        (status = 503, description = "a Docker key while Docker is down", body = ErrorBody),
    ))]
fn health() {}

#[utoipa::path(get, path = "/v1/api/tenants", tag = "jobs",
    params(("X-Auth-Token" = String, Header, description = "a Vault token")),
    responses(
        (status = 200, description = "the tenants (AppRole names) whose secret-id this token may request, as Vault's sys/capabilities-self says", body = TenantList),
        (status = 400, description = "no token", body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
fn tenants() {}

#[utoipa::path(get, path = "/v1/api/vault/info", tag = "status",
    responses((status = 200, body = VaultInfo)))]
fn vault_info() {}

#[utoipa::path(get, path = "/v1/api/metrics", tag = "status",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
fn metrics() {}

#[utoipa::path(get, path = "/v1/api/livez", tag = "status", responses((status = 200, body = Live)))]
fn livez() {}

#[utoipa::path(get, path = "/v1/api/readyz", tag = "status",
    responses((status = 200, description = "ready", body = Ready), (status = 503, description = "not ready", body = Ready)))]
fn readyz() {}

#[utoipa::path(get, path = "/v1/api/openapi.json", tag = "status",
    responses((status = 200, description = "this document")))]
fn openapi_json() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gostint",
        description = "Automation jobs in containers, secured by Vault/OpenBao. See docs/design.md §2."
    ),
    paths(submit, list, get_job, delete, kill, health, tenants, vault_info, metrics, livez, readyz, openapi_json),
    components(schemas(
        SubmitBody, Submitted, ListPage, JobView, Deleted, Killed, TenantList, VaultInfo, ErrorBody, Live, Ready
    ))
)]
struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc.to_pretty_json().expect("the OpenAPI document serialises")
    })
}

/// `GET /v1/api/openapi.json`.
pub(crate) async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], document()).into_response()
}
