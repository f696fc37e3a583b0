//! gostint's settings. Every environment variable the server reads is a documented `const`
//! in [`env`]; [`Settings::from_env`] parses them once at start, so a bad value stops the
//! process with a message naming the variable instead of failing later.
//!
//! Nothing here opens a connection; the server binary turns settings into adapters.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use gostint_core::{JobNetwork, Limits, SandboxPolicy};

/// The environment variables, with their defaults and meaning (docs/design.md §6).
pub mod env {
    /// Listen port. Default `3232`. Not an integer → the server exits with an error.
    pub const PORT: &str = "GOSTINT_PORT";
    /// Listen address. Default `0.0.0.0` (all interfaces); tests and the demo use `127.0.0.1`.
    pub const BIND: &str = "GOSTINT_BIND";
    /// PEM certificate. Default `/var/lib/gostint/cert.pem`. Required unless plain HTTP.
    pub const SSL_CERT: &str = "GOSTINT_SSL_CERT";
    /// PEM private key. Default `/var/lib/gostint/key.pem`. Required unless plain HTTP.
    pub const SSL_KEY: &str = "GOSTINT_SSL_KEY";
    /// `1`: when the cert/key files do not exist, generate a self-signed pair for
    /// `localhost`/`127.0.0.1` there and log where (development only). Default `0`.
    pub const SSL_SELF_SIGNED: &str = "GOSTINT_SSL_SELF_SIGNED";
    /// `1`: serve plain HTTP (behind a TLS proxy, tests). Default `0`.
    pub const PLAIN_HTTP: &str = "GOSTINT_PLAIN_HTTP";
    /// Job store URL: `sqlite://<path>` or a bare path → embedded SQLite (one node);
    /// `postgres://…` → PostgreSQL. Default `sqlite:///var/lib/gostint/gostint.db`.
    pub const DBURL: &str = "GOSTINT_DBURL";
    /// This node's state directory (its previous run's id, for crash recovery; one node per
    /// directory). Default: the SQLite database's directory, else `/var/lib/gostint`.
    pub const STATE_DIR: &str = "GOSTINT_STATE_DIR";
    /// Optional: role_id of an AppRole whose token reads PostgreSQL credentials from Vault's
    /// database secrets engine (`database/creds/<GOSTINT_DB_CREDS_ROLE>`); with it, the
    /// user and password of `GOSTINT_DBURL` come from Vault and are renewed and rotated.
    pub const RUN_ROLEID: &str = "GOSTINT_RUN_ROLEID";
    /// The secret_id for `GOSTINT_RUN_ROLEID` (a value, or `@file`).
    pub const RUN_SECRETID: &str = "GOSTINT_RUN_SECRETID";
    /// The Vault database role. Default `gostint-dbauth-role`.
    pub const DB_CREDS_ROLE: &str = "GOSTINT_DB_CREDS_ROLE";
    /// role_id of the job AppRole. Required.
    pub const ROLEID: &str = "GOSTINT_ROLEID";
    /// Transit key for payload decryption (by convention the AppRole name). A warning if unset;
    /// encrypted submissions then fail.
    pub const ROLENAME: &str = "GOSTINT_ROLENAME";
    /// A boolean: debug logging for gostint's own crates only (libraries that log request
    /// bodies, such as bollard, hyper, reqwest and sqlx, stay at info). `RUST_LOG` overrides.
    pub const DEBUG: &str = "GOSTINT_DEBUG";
    /// Policy that may see and act on every job. Default `gostint-admin`.
    pub const ADMIN_POLICY: &str = "GOSTINT_ADMIN_POLICY";
    /// `1`: metrics and the full health map need `X-Auth-Token`. Default `0`.
    pub const PROTECT_STATUS: &str = "GOSTINT_PROTECT_STATUS";
    /// `0`: give containers no `VAULT_TOKEN`/`TOKEN`. Default `1`.
    pub const INJECT_TOKEN: &str = "GOSTINT_INJECT_TOKEN";
    /// Request body cap (bytes, or `16MiB`, `512KiB`). Default `16MiB`; larger → 413.
    pub const MAX_BODY: &str = "GOSTINT_MAX_BODY";
    /// Cap per stored `output` and `stderr` (tail kept). Default `4MiB`.
    pub const MAX_OUTPUT: &str = "GOSTINT_MAX_OUTPUT";
    /// Cap on the unpacked size of a job's content tar (gzip bombs). Default `1GiB`.
    pub const MAX_CONTENT: &str = "GOSTINT_MAX_CONTENT";
    /// Stop timeout before SIGKILL when a job is killed. Default `15s`.
    pub const KILL_GRACE: &str = "GOSTINT_KILL_GRACE";
    /// How long SIGTERM waits for this node's jobs. Default `10m`.
    pub const DRAIN_TIMEOUT: &str = "GOSTINT_DRAIN_TIMEOUT";
    /// Per-job run limit; `0` = none. Default `0`.
    pub const JOB_TIMEOUT: &str = "GOSTINT_JOB_TIMEOUT";
    /// How the secrets file and the patched `/etc/passwd` reach a job's container. `bind`
    /// (default): written to a private directory of the node (mode 0700, under
    /// `GOSTINT_JOB_FILES_DIR`) and bound read-only at create time, then unlinked once the
    /// container has started; no archive calls, and with the default tmpfs directory secrets
    /// never reach a disk. Needs the engine to see that directory at the same path; if it
    /// does not (gostint in a container, a remote engine), the node warns once and copies.
    /// `copy`: always `PUT /containers/{id}/archive` before start, as the original did.
    pub const JOB_FILES: &str = "GOSTINT_JOB_FILES";
    /// Where `bind` makes the node's private directory. Default `/dev/shm` (tmpfs) when it
    /// exists, else the system temp directory.
    pub const JOB_FILES_DIR: &str = "GOSTINT_JOB_FILES_DIR";
    /// Running containers per node; `0` = no cap. Default `0`.
    pub const MAX_RUNNING: &str = "GOSTINT_MAX_RUNNING";
    /// How long ended jobs are kept. Default `6h`.
    pub const RETENTION: &str = "GOSTINT_RETENTION";
    /// Heartbeat silence before a node's jobs turn `unknown`. Default `5m`.
    pub const STALE_AFTER: &str = "GOSTINT_STALE_AFTER";
    /// Vault/OpenBao address for every server call; injected into jobs. Required.
    pub const VAULT_ADDR: &str = "VAULT_ADDR";
    /// Address `/v1/api/vault/info` hands to browsers. Default `VAULT_ADDR`.
    pub const VAULT_EXTERNAL_ADDR: &str = "VAULT_EXTERNAL_ADDR";
    /// PEM CA for Vault TLS; bind-mounted read-only into jobs and injected.
    pub const VAULT_CACERT: &str = "VAULT_CACERT";
    /// A boolean: skip Vault TLS verification (development only; the server warns at start).
    pub const VAULT_SKIP_VERIFY: &str = "VAULT_SKIP_VERIFY";
    /// Vault Enterprise / OpenBao namespace sent as `X-Vault-Namespace`.
    pub const VAULT_NAMESPACE: &str = "VAULT_NAMESPACE";
    /// Timeout of each Vault call (the database-credential calls included). Default `60s`.
    pub const VAULT_CLIENT_TIMEOUT: &str = "VAULT_CLIENT_TIMEOUT";
    /// A directory of PEM CA files for Vault TLS; as with Vault's client, `VAULT_CACERT` wins
    /// when both are set. Not passed to jobs (only `VAULT_CACERT` is).
    pub const VAULT_CAPATH: &str = "VAULT_CAPATH";
    /// PEM client certificate (chain) for mutual TLS with Vault; needs `VAULT_CLIENT_KEY`.
    pub const VAULT_CLIENT_CERT: &str = "VAULT_CLIENT_CERT";
    /// PEM private key of `VAULT_CLIENT_CERT`; both or neither.
    pub const VAULT_CLIENT_KEY: &str = "VAULT_CLIENT_KEY";
    /// The name Vault's certificate is checked against instead of `VAULT_ADDR`'s host. The
    /// TLS SNI still names `VAULT_ADDR`'s host (a reqwest limit; see gostint-vault).
    pub const VAULT_TLS_SERVER_NAME: &str = "VAULT_TLS_SERVER_NAME";
    /// Accepted but ignored (with a warning), as in the original's later versions.
    pub const IGNORED: &[&str] = &["GOSTINT_DBAUTH_TOKEN", "GOSTINT_RUN_ROLENAME"];
    /// The tenants (docs/design.md §10): comma list of `name:role_id`, one job AppRole each. The name
    /// is the AppRole's name, its transit key and its queue namespace: 1–64 of `a-z 0-9 - _`,
    /// starting with a letter or digit. A job is accepted only with a secret-id wrapped by
    /// Vault at `auth/approle/role/<name>/secret-id` of a listed name, logs in with that
    /// role_id and decrypts with `transit/decrypt/<name>`. Unset (and no
    /// `GOSTINT_APPROLES_FILE`): the one tenant `GOSTINT_ROLENAME:GOSTINT_ROLEID`, as before.
    /// A malformed entry stops the server with a message naming it.
    pub const APPROLES: &str = "GOSTINT_APPROLES";
    /// A file of `name:role_id` tenants, one per line (commas also work), `#` comments;
    /// re-read on SIGHUP (a bad file then keeps the previous set and logs why). Takes
    /// precedence over `GOSTINT_APPROLES`.
    pub const APPROLES_FILE: &str = "GOSTINT_APPROLES_FILE";
    /// Most `queued` jobs one tenant may have; a POST beyond it → 429. Strict: the store
    /// counts and inserts atomically, over every node. Default `10000`; `0` = no limit.
    pub const TENANT_MAX_QUEUED: &str = "GOSTINT_TENANT_MAX_QUEUED";
    /// Most `running` + `stopping` jobs one tenant may have over all nodes sharing the
    /// store. Default `0` = no cap.
    pub const TENANT_MAX_RUNNING: &str = "GOSTINT_TENANT_MAX_RUNNING";
    /// Open `GET /v1/api/job/{id}/stream` connections per caller (Vault identity) on one
    /// node; beyond it the stream answers 429. `0` = no cap. Default `10`.
    pub const MAX_STREAMS_PER_CALLER: &str = "GOSTINT_MAX_STREAMS_PER_CALLER";
    /// `1`: serve the embedded web UI (crate `gostint-web`) at `/`. Default `0`: `/` answers 404.
    /// The browser talks to Vault at `VAULT_EXTERNAL_ADDR` directly, so Vault's CORS must allow
    /// gostint's origin (README, "Web UI").
    pub const UI: &str = "GOSTINT_UI";
    /// How long a client may take to send a request's headers, a client that sends nothing
    /// at all included (also how long an idle keep-alive connection waits for its next
    /// request, and the TLS handshake limit) before the connection is closed.
    /// Default `10s`; at least `1s`.
    pub const HEADER_TIMEOUT: &str = "GOSTINT_HEADER_TIMEOUT";
    /// Requests served at once; beyond it a request is answered 503 at once (never queued
    /// without bound). Default `512`; at least `1`.
    pub const MAX_REQUESTS: &str = "GOSTINT_MAX_REQUESTS";
    /// How long a request waits for a PostgreSQL store connection before it gives up: during
    /// a store outage the API answers 503 `store unavailable` after this, instead of hanging,
    /// and `/v1/api/health` reports the store unavailable. Default `5s`.
    pub const STORE_TIMEOUT: &str = "GOSTINT_STORE_TIMEOUT";
    /// Capabilities job containers get back, a comma list such as `NET_BIND_SERVICE,CHOWN`
    /// (with or without `CAP_`). Default: none; every capability is dropped (docs/design.md §11).
    /// `ALL` is refused. (The engine log of a job is bounded too: two json-files of
    /// 1.25 × `GOSTINT_MAX_OUTPUT` each.)
    pub const JOB_CAP_ADD: &str = "GOSTINT_JOB_CAP_ADD";
    /// Default pids limit of a job container (processes and threads). Default `1024`.
    pub const JOB_PIDS: &str = "GOSTINT_JOB_PIDS";
    /// Default memory limit of a job container; swap is set equal (no swap beyond it).
    /// Default `2GiB`. Exceeded → the job ends `failed` / `job killed: out of memory (limit <m>)`.
    pub const JOB_MEMORY: &str = "GOSTINT_JOB_MEMORY";
    /// Default CPUs of a job container (fractions allowed). Default `2`.
    pub const JOB_CPUS: &str = "GOSTINT_JOB_CPUS";
    /// Most pids a job may ask for with `resources.pids`. Default `GOSTINT_JOB_PIDS`.
    pub const JOB_MAX_PIDS: &str = "GOSTINT_JOB_MAX_PIDS";
    /// Most memory a job may ask for with `resources.memory`. Default `GOSTINT_JOB_MEMORY`.
    pub const JOB_MAX_MEMORY: &str = "GOSTINT_JOB_MAX_MEMORY";
    /// Most CPUs a job may ask for with `resources.cpus`. Default `GOSTINT_JOB_CPUS`.
    pub const JOB_MAX_CPUS: &str = "GOSTINT_JOB_MAX_CPUS";
    /// Network of job containers: `bridge` (default, Docker's default bridge), `none`
    /// (loopback only), `tenant` (a user-defined bridge `gostint-<tenant>` per tenant,
    /// created on demand, so tenants share no network segment) or an existing network's
    /// name. `host` and `container:<id>` are refused.
    pub const JOB_NETWORK: &str = "GOSTINT_JOB_NETWORK";
    /// Images jobs may use: a comma list of glob patterns over the normalised reference
    /// (`docker.io/library/busybox:latest`; `*` stops at `/`, `**` does not, `?` is one
    /// character). Unset: any image. No match → `failed` / `image <ref> is not allowed`
    /// before any engine call.
    pub const IMAGE_ALLOW: &str = "GOSTINT_IMAGE_ALLOW";
    /// Image GC: images this node pulled (recorded in the store per engine) and unused for
    /// this long are removed; images that were already on the engine never are. Default
    /// `24h`; `0` disables.
    pub const IMAGE_GC_AGE: &str = "GOSTINT_IMAGE_GC_AGE";
    /// A static bearer token (`Authorization: Bearer <token>`) that reads
    /// `/v1/api/metrics` even with `GOSTINT_PROTECT_STATUS=1`, for Prometheus, which cannot
    /// renew a Vault token. Unset (the default): no scrape token. Redacted by `config show`.
    pub const METRICS_TOKEN: &str = "GOSTINT_METRICS_TOKEN";

    // OpenTelemetry trace export (README, "Tracing (OpenTelemetry)"): the OpenTelemetry
    // standard variables, parsed strictly. Neither endpoint set (the default): no exporter.
    /// OTLP/HTTP collector base URL (`http(s)://host:4318`); traces go to `<it>/v1/traces`.
    /// Unset (and no `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): no trace export at all. Credentials
    /// in the URL (`user:password@`) are refused: they would reach the log; use the headers.
    pub const OTEL_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// The full OTLP/HTTP traces URL, used as it is; wins over `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub const OTEL_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    /// Headers sent with each export, `key=value,key2=value2` (values percent-encoded), often
    /// an API key: `config show` redacts them. Default: none.
    pub const OTEL_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
    /// As `OTEL_EXPORTER_OTLP_HEADERS`, for traces only; wins over it when set.
    pub const OTEL_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
    /// Timeout of one export, in milliseconds (the standard's unit) or with a unit (`10s`).
    /// Default `10000`.
    pub const OTEL_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
    /// As `OTEL_EXPORTER_OTLP_TIMEOUT`, for traces only; wins over it when set.
    pub const OTEL_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
    /// Only `http/protobuf` (the default) is supported; `grpc` or `http/json` are refused.
    pub const OTEL_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
    /// As `OTEL_EXPORTER_OTLP_PROTOCOL`, for traces only.
    pub const OTEL_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    /// The `service.name` of the exported spans. Default `gostint`.
    pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
    /// A boolean: `true` turns trace export off even with an endpoint set. Default `false`.
    pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
}

/// Every boolean setting takes exactly one of these, in any case (docs/design.md §11: anything
/// else refuses to start, naming the variable).
pub const BOOLEAN_WORDS: &str = "1, 0, true, false, yes, no, on or off";

/// Parses a strict boolean: `1/0/true/false/yes/no/on/off` in any case, surrounding blanks
/// ignored.
///
/// # Errors
/// Anything else (so `VAULT_SKIP_VERIFY=False` is `false`, and `=nope` is an error, never
/// `true`).
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("expected a boolean: {BOOLEAN_WORDS}")),
    }
}

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{0} must be set")]
    Missing(&'static str),
    /// A value that does not parse.
    #[error("{var}: {msg} (got {value:?})")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        msg: String,
    },
    /// More than one setting is wrong: all of them, in the order they were read.
    #[error("{} settings are wrong: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// Each single error (one for `Missing`/`Invalid`, all of them for `Several`).
    pub fn all(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Several(v) => v.iter().collect(),
            e => vec![e],
        }
    }
}

/// How the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tls {
    /// HTTPS with these PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
        /// Generate a self-signed pair there when absent.
        self_signed: bool,
    },
    /// Plain HTTP.
    Plain,
}

/// Which job store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Embedded SQLite at this path.
    Sqlite(PathBuf),
    /// PostgreSQL at this URL.
    Postgres(String),
}

/// Vault-issued PostgreSQL credentials (`GOSTINT_RUN_ROLEID` / `GOSTINT_RUN_SECRETID`).
#[derive(Clone)]
pub struct DbCreds {
    /// AppRole role_id.
    pub role_id: String,
    /// AppRole secret_id.
    pub secret_id: secrecy::SecretString,
    /// Vault database role.
    pub creds_role: String,
}

impl std::fmt::Debug for DbCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCreds")
            .field("role_id", &self.role_id)
            .field("creds_role", &self.creds_role)
            .finish_non_exhaustive()
    }
}

/// Vault client settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSettings {
    /// `VAULT_ADDR`.
    pub addr: String,
    /// `VAULT_EXTERNAL_ADDR`, else `VAULT_ADDR`.
    pub external_addr: String,
    /// `VAULT_CACERT`.
    pub ca_cert: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY`.
    pub skip_verify: bool,
    /// `VAULT_NAMESPACE`.
    pub namespace: Option<String>,
    /// `VAULT_CLIENT_TIMEOUT`.
    pub timeout: Duration,
    /// `VAULT_CAPATH`.
    pub ca_path: Option<PathBuf>,
    /// `VAULT_CLIENT_CERT`.
    pub client_cert: Option<PathBuf>,
    /// `VAULT_CLIENT_KEY`.
    pub client_key: Option<PathBuf>,
    /// `VAULT_TLS_SERVER_NAME`.
    pub tls_server_name: Option<String>,
}

/// OpenTelemetry trace export over OTLP/HTTP protobuf (`OTEL_EXPORTER_OTLP_*`).
#[derive(Clone, Debug)]
pub struct OtlpSettings {
    /// The full traces URL (`…/v1/traces`).
    pub endpoint: String,
    /// The variable it came from, for messages.
    pub endpoint_var: &'static str,
    /// Headers sent with each export (values are secrets: never logged nor shown).
    pub headers: Vec<(String, secrecy::SecretString)>,
    /// Timeout of one export.
    pub timeout: Duration,
    /// `service.name`.
    pub service_name: String,
}

/// Everything the server needs, parsed.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Listen address.
    pub bind: String,
    /// Listen port.
    pub port: u16,
    /// TLS or plain.
    pub tls: Tls,
    /// Store backend.
    pub store: StoreKind,
    /// This node's state directory.
    pub state_dir: PathBuf,
    /// Vault-issued database credentials, if configured.
    pub db_creds: Option<DbCreds>,
    /// Job AppRole role_id.
    pub role_id: String,
    /// Transit key name, if set.
    pub role_name: Option<String>,
    /// Vault.
    pub vault: VaultSettings,
    /// Debug logging.
    pub debug: bool,
    /// Admin policy name.
    pub admin_policy: String,
    /// Token needed for metrics and full health.
    pub protect_status: bool,
    /// Inject the job token into containers.
    pub inject_token: bool,
    /// Request body cap in bytes.
    pub max_body: usize,
    /// Stored output cap in bytes, per stream.
    pub max_output: usize,
    /// Unpacked content cap in bytes.
    pub max_content: u64,
    /// Kill grace.
    pub kill_grace: Duration,
    /// SIGTERM drain limit.
    pub drain_timeout: Duration,
    /// Job run limit (`None` = none).
    pub job_timeout: Option<Duration>,
    /// Containers per node (`0` = no cap).
    pub max_running: usize,
    /// Where bound job files go; `None` = copy them in (`GOSTINT_JOB_FILES=copy`).
    pub job_files_dir: Option<PathBuf>,
    /// Retention of ended jobs.
    pub retention: Duration,
    /// Stale-node threshold.
    pub stale_after: Duration,
    /// Variables that were set but are ignored (the server warns).
    pub ignored_set: Vec<&'static str>,
    /// The tenants (`GOSTINT_APPROLES[_FILE]`, else `GOSTINT_ROLENAME:GOSTINT_ROLEID`).
    pub tenants: gostint_core::Tenants,
    /// `GOSTINT_APPROLES_FILE`, re-read on SIGHUP.
    pub approles_file: Option<PathBuf>,
    /// Queued jobs per tenant (`0` = no limit).
    pub tenant_max_queued: u64,
    /// Active jobs per tenant over all nodes (`0` = no cap).
    pub tenant_max_running: usize,
    /// Open streams per caller (`0` = no cap).
    pub max_streams_per_caller: usize,
    /// Serve the web UI at `/` (`GOSTINT_UI`).
    pub ui: bool,
    /// `GOSTINT_HEADER_TIMEOUT`: how long a new connection may stay silent or take over its
    /// request headers (also the TLS handshake), and how long an idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// `GOSTINT_MAX_REQUESTS`: requests served at once (503 beyond).
    pub max_requests: usize,
    /// Wait for a store connection before answering `store unavailable`.
    pub store_timeout: Duration,
    /// The job sandbox (`GOSTINT_JOB_*`, `GOSTINT_IMAGE_ALLOW`).
    pub sandbox: SandboxPolicy,
    /// Image GC age (`None` = disabled).
    pub image_gc_age: Option<Duration>,
    /// `GOSTINT_METRICS_TOKEN`.
    pub metrics_token: Option<secrecy::SecretString>,
    /// OTLP trace export (`None`: off, the default).
    pub otlp: Option<OtlpSettings>,
}

/// Reads `GOSTINT_APPROLES_FILE` (at start and on SIGHUP).
///
/// # Errors
/// The file cannot be read, or an entry is malformed (named in the message).
pub fn read_approles_file(path: &std::path::Path) -> Result<gostint_core::Tenants, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        var: env::APPROLES_FILE,
        value: shown.clone(),
        msg: e.to_string(),
    })?;
    gostint_core::Tenants::parse(&text).map_err(|e| ConfigError::Invalid {
        var: env::APPROLES_FILE,
        value: shown,
        msg: e.to_string(),
    })
}

/// Where values come from: the process environment, or a map in tests.
pub trait Source {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // the one place that reads the environment
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Parses `30s`, `5m`, `6h`, `1d`, `250ms` or plain seconds.
///
/// # Errors
/// Anything else.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| "expected a duration such as 30s, 5m, 6h or plain seconds".to_string())?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => return Err("unknown unit; use ms, s, m, h or d".to_string()),
    };
    Ok(d)
}

/// Parses `16MiB`, `512KiB`, `1GiB`, `10MB`, `4096` (bytes).
///
/// # Errors
/// Anything else.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| "expected a size such as 16MiB or plain bytes".to_string())?;
    let mul: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err("unknown unit; use KiB, MiB, GiB or plain bytes".to_string()),
    };
    n.checked_mul(mul).ok_or_else(|| "size too large".to_string())
}

impl Settings {
    /// Reads the process environment.
    ///
    /// # Errors
    /// Every variable that is missing or does not parse (see [`Settings::from_source`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads any [`Source`].
    ///
    /// # Errors
    /// Every variable that is missing or does not parse, all at once: one error is returned
    /// as itself, several as [`ConfigError::Several`]. A malformed duration, size or boolean
    /// is recorded and parsing goes on with its default, so the next bad setting is found
    /// too; nothing built from a bad value is ever returned.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let errors = std::cell::RefCell::new(Vec::<ConfigError>::new());
        let report = |e: ConfigError| errors.borrow_mut().push(e);
        let get = |name: &str| src.get(name).filter(|v| !v.trim().is_empty());
        let invalid = |var: &'static str, value: String, msg: String| ConfigError::Invalid { var, value, msg };
        let duration = |var: &'static str, default: &str| -> Result<Duration, ConfigError> {
            let v = get(var).unwrap_or_else(|| default.to_string());
            Ok(parse_duration(&v).unwrap_or_else(|msg| {
                report(invalid(var, v, msg));
                parse_duration(default).unwrap_or_default()
            }))
        };
        let size = |var: &'static str, default: &str| -> Result<usize, ConfigError> {
            let v = get(var).unwrap_or_else(|| default.to_string());
            Ok(parse_size(&v).unwrap_or_else(|msg| {
                report(invalid(var, v, msg));
                parse_size(default).unwrap_or_default()
            }))
        };
        // Strict booleans (docs/design.md §11): unset or blank is the default, a bad word an error.
        let flag = |var: &'static str, default: bool| -> bool {
            match get(var) {
                None => default,
                Some(v) => parse_bool(&v).unwrap_or_else(|msg| {
                    report(invalid(var, v, msg));
                    default
                }),
            }
        };
        let whole = |var: &'static str, default: usize| -> usize {
            match get(var) {
                None => default,
                Some(v) => v.trim().parse().unwrap_or_else(|_| {
                    report(invalid(var, v, "expected a whole number".into()));
                    default
                }),
            }
        };

        let port = match get(env::PORT) {
            None => 3232,
            Some(v) => v.trim().parse::<u16>().unwrap_or_else(|_| {
                report(invalid(env::PORT, v, "expected a port number".into()));
                3232
            }),
        };
        let tls = if flag(env::PLAIN_HTTP, false) {
            Tls::Plain
        } else {
            Tls::Files {
                cert: get(env::SSL_CERT).unwrap_or_else(|| "/var/lib/gostint/cert.pem".into()).into(),
                key: get(env::SSL_KEY).unwrap_or_else(|| "/var/lib/gostint/key.pem".into()).into(),
                self_signed: flag(env::SSL_SELF_SIGNED, false),
            }
        };
        let dburl = get(env::DBURL).unwrap_or_else(|| "sqlite:///var/lib/gostint/gostint.db".into());
        let store = parse_store(&dburl).unwrap_or_else(|msg| {
            report(invalid(env::DBURL, dburl.clone(), msg));
            StoreKind::Sqlite(PathBuf::from("/var/lib/gostint/gostint.db"))
        });

        let vault_addr = get(env::VAULT_ADDR).unwrap_or_else(|| {
            report(ConfigError::Missing(env::VAULT_ADDR));
            String::new()
        });
        let vault = VaultSettings {
            external_addr: get(env::VAULT_EXTERNAL_ADDR).unwrap_or_else(|| vault_addr.clone()),
            addr: vault_addr,
            ca_cert: get(env::VAULT_CACERT).map(PathBuf::from),
            skip_verify: flag(env::VAULT_SKIP_VERIFY, false),
            namespace: get(env::VAULT_NAMESPACE),
            timeout: duration(env::VAULT_CLIENT_TIMEOUT, "60s")?,
            ca_path: get(env::VAULT_CAPATH).map(PathBuf::from),
            client_cert: get(env::VAULT_CLIENT_CERT).map(PathBuf::from),
            client_key: get(env::VAULT_CLIENT_KEY).map(PathBuf::from),
            tls_server_name: get(env::VAULT_TLS_SERVER_NAME).map(|n| n.trim().to_owned()),
        };
        match (&vault.client_cert, &vault.client_key) {
            (Some(_), None) => report(ConfigError::Missing(env::VAULT_CLIENT_KEY)),
            (None, Some(_)) => report(ConfigError::Missing(env::VAULT_CLIENT_CERT)),
            _ => {}
        }
        let job_timeout = duration(env::JOB_TIMEOUT, "0")?;
        let max_running = whole(env::MAX_RUNNING, 0);
        let max_streams_per_caller = whole(env::MAX_STREAMS_PER_CALLER, 10);
        let state_dir = match (get(env::STATE_DIR), &store) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, StoreKind::Sqlite(path)) => match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
            (None, StoreKind::Postgres(_)) => PathBuf::from("/var/lib/gostint"),
        };
        let db_creds = match (get(env::RUN_ROLEID), get(env::RUN_SECRETID)) {
            (None, None) => None,
            (Some(role_id), Some(secret)) => {
                let secret = match secret.strip_prefix('@') {
                    Some(path) => match std::fs::read_to_string(path) {
                        Ok(text) => text.trim_end().to_string(),
                        Err(e) => {
                            report(invalid(env::RUN_SECRETID, format!("@{path}"), e.to_string()));
                            String::new()
                        }
                    },
                    None => secret,
                };
                if !matches!(store, StoreKind::Postgres(_)) {
                    report(invalid(
                        env::RUN_ROLEID,
                        role_id.clone(),
                        "Vault database credentials need a postgres:// GOSTINT_DBURL".into(),
                    ));
                }
                Some(DbCreds {
                    role_id,
                    secret_id: secret.into(),
                    creds_role: get(env::DB_CREDS_ROLE).unwrap_or_else(|| "gostint-dbauth-role".into()),
                })
            }
            (Some(_), None) => {
                report(ConfigError::Missing(env::RUN_SECRETID));
                None
            }
            (None, Some(_)) => {
                report(ConfigError::Missing(env::RUN_ROLEID));
                None
            }
        };
        let job_files_dir = match get(env::JOB_FILES).as_deref().map(str::trim) {
            None | Some("bind") => Some(get(env::JOB_FILES_DIR).map(PathBuf::from).unwrap_or_else(|| {
                let shm = PathBuf::from("/dev/shm");
                if shm.is_dir() {
                    shm
                } else {
                    std::env::temp_dir()
                }
            })),
            Some("copy") => None,
            Some(other) => {
                report(invalid(env::JOB_FILES, other.to_string(), "expected bind or copy".into()));
                None
            }
        };
        let role_id = get(env::ROLEID).unwrap_or_else(|| {
            report(ConfigError::Missing(env::ROLEID));
            String::new()
        });
        let role_name = get(env::ROLENAME);
        let approles_file = get(env::APPROLES_FILE).map(PathBuf::from);
        let single = || gostint_core::Tenants::single(role_name.clone(), role_id.clone());
        let tenants = match (&approles_file, get(env::APPROLES)) {
            (Some(path), _) => read_approles_file(path).unwrap_or_else(|e| {
                report(e);
                single()
            }),
            (None, Some(list)) => gostint_core::Tenants::parse(&list).unwrap_or_else(|e| {
                report(ConfigError::Invalid { var: env::APPROLES, value: e.entry.clone(), msg: e.msg });
                single()
            }),
            (None, None) => single(),
        };
        let tenant_max_queued = whole(env::TENANT_MAX_QUEUED, 10_000) as u64;
        let tenant_max_running = whole(env::TENANT_MAX_RUNNING, 0);
        let sandbox = sandbox(&get, size(env::MAX_OUTPUT, "4MiB")?).unwrap_or_else(|e| {
            report(e);
            SandboxPolicy::default()
        });
        let image_gc_age = duration(env::IMAGE_GC_AGE, "24h")?;
        let settings = Settings {
            sandbox,
            image_gc_age: (!image_gc_age.is_zero()).then_some(image_gc_age),
            tenants,
            approles_file,
            tenant_max_queued,
            tenant_max_running,
            job_files_dir,
            db_creds,
            state_dir,
            bind: get(env::BIND).unwrap_or_else(|| "0.0.0.0".into()),
            port,
            tls,
            store,
            role_id,
            role_name,
            vault,
            debug: flag(env::DEBUG, false),
            admin_policy: get(env::ADMIN_POLICY).unwrap_or_else(|| "gostint-admin".into()),
            protect_status: flag(env::PROTECT_STATUS, false),
            inject_token: flag(env::INJECT_TOKEN, true),
            max_body: size(env::MAX_BODY, "16MiB")?,
            max_output: size(env::MAX_OUTPUT, "4MiB")?,
            max_content: size(env::MAX_CONTENT, "1GiB")? as u64,
            kill_grace: duration(env::KILL_GRACE, "15s")?,
            drain_timeout: duration(env::DRAIN_TIMEOUT, "10m")?,
            job_timeout: (!job_timeout.is_zero()).then_some(job_timeout),
            max_running,
            retention: duration(env::RETENTION, "6h")?,
            stale_after: duration(env::STALE_AFTER, "5m")?,
            ignored_set: env::IGNORED.iter().copied().filter(|v| get(v).is_some()).collect(),
            max_streams_per_caller,
            ui: flag(env::UI, false),
            header_timeout: duration(env::HEADER_TIMEOUT, "10s")?.max(Duration::from_secs(1)),
            max_requests: whole(env::MAX_REQUESTS, 512).max(1),
            store_timeout: duration(env::STORE_TIMEOUT, "5s")?,
            metrics_token: get(env::METRICS_TOKEN).map(|t| secrecy::SecretString::from(t.trim().to_string())),
            otlp: otlp(&get, &report, flag(env::OTEL_SDK_DISABLED, false)),
        };
        let mut errors = errors.into_inner();
        match errors.len() {
            0 => Ok(settings),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Several(errors)),
        }
    }
}

/// The OTLP trace export settings; `None` when no endpoint is set or `OTEL_SDK_DISABLED` is
/// true. Each bad value is reported naming its variable; header values never appear in a
/// message.
fn otlp(get: &dyn Fn(&str) -> Option<String>, report: &dyn Fn(ConfigError), disabled: bool) -> Option<OtlpSettings> {
    let invalid =
        |var: &'static str, value: String, msg: &str| report(ConfigError::Invalid { var, value, msg: msg.into() });
    let first = |a: &'static str, b: &'static str| get(a).map(|v| (a, v)).or_else(|| get(b).map(|v| (b, v)));
    if let Some((var, v)) = first(env::OTEL_TRACES_PROTOCOL, env::OTEL_PROTOCOL) {
        if v.trim() != "http/protobuf" {
            invalid(var, v, "only http/protobuf is supported (no gRPC nor JSON)");
        }
    }
    let timeout = match first(env::OTEL_TRACES_TIMEOUT, env::OTEL_TIMEOUT) {
        None => Duration::from_secs(10),
        Some((var, v)) => {
            let t = v.trim();
            let parsed = if t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse::<u64>().map(Duration::from_millis).map_err(|e| e.to_string())
            } else {
                parse_duration(t)
            };
            match parsed {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    invalid(var, v, "expected milliseconds (10000) or a duration such as 10s, above 0");
                    Duration::from_secs(10)
                }
            }
        }
    };
    let mut headers = Vec::new();
    if let Some((var, v)) = first(env::OTEL_TRACES_HEADERS, env::OTEL_HEADERS) {
        for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = key.trim();
            let value = percent_decode(value.trim());
            let key_ok =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            match value {
                Some(value)
                    if key_ok
                        && pair.contains('=')
                        && value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) =>
                {
                    headers.push((key.to_string(), secrecy::SecretString::from(value)));
                }
                // The value is likely an API key: the message names the header only.
                _ => {
                    let shown =
                        if key_ok && pair.contains('=') { format!("{key}=<redacted>") } else { "<redacted>".into() };
                    invalid(var, shown, "expected key=value pairs separated by commas (values percent-encoded)")
                }
            }
        }
    }
    let service_name = get(env::OTEL_SERVICE_NAME).map(|v| v.trim().to_string()).unwrap_or_else(|| "gostint".into());
    let (endpoint_var, endpoint) = match (get(env::OTEL_TRACES_ENDPOINT), get(env::OTEL_ENDPOINT)) {
        (Some(url), _) => (env::OTEL_TRACES_ENDPOINT, url.trim().to_string()),
        (None, Some(base)) => {
            let base = base.trim();
            (env::OTEL_ENDPOINT, format!("{}/v1/traces", base.strip_suffix('/').unwrap_or(base)))
        }
        (None, None) => return None,
    };
    let rest = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
    let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    // A password in the URL's user part is never repeated.
    let shown = || {
        let v = get(endpoint_var).unwrap_or_default();
        match v.split_once("://").and_then(|(s, r)| r.rsplit_once('@').map(|(_, h)| (s, h))) {
            Some((scheme, hostpart)) => format!("{scheme}://<redacted>@{hostpart}"),
            None => v,
        }
    };
    if authority.is_some_and(|a| a.contains('@')) {
        // The exporter's error messages carry the URL: credentials there would reach the log.
        invalid(endpoint_var, shown(), "no credentials in the URL: send them with OTEL_EXPORTER_OTLP_HEADERS");
    } else if !matches!(authority, Some(h) if !h.is_empty())
        || endpoint.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        invalid(
            endpoint_var,
            shown(),
            "expected an http:// or https:// URL with a host, such as http://collector:4318",
        );
    }
    (!disabled).then_some(OtlpSettings { endpoint, endpoint_var, headers, timeout, service_name })
}

/// `%XX` escapes decoded (the OpenTelemetry header format); `None` when one is malformed or
/// the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The sandbox settings (docs/design.md §11); `max_output` sizes the engine's log.
fn sandbox(get: &dyn Fn(&str) -> Option<String>, max_output: usize) -> Result<SandboxPolicy, ConfigError> {
    let invalid = |var: &'static str, value: String, msg: String| ConfigError::Invalid { var, value, msg };
    let pids = |var: &'static str, default: i64| -> Result<i64, ConfigError> {
        match get(var) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(invalid(var, v, "expected a whole number of at least 1".into())),
            },
        }
    };
    let memory = |var: &'static str, default: u64| -> Result<u64, ConfigError> {
        match get(var) {
            None => Ok(default),
            Some(v) => match parse_size(&v) {
                // Docker refuses less than 6 MiB.
                Ok(n) if n >= 6 << 20 => Ok(n as u64),
                Ok(_) => Err(invalid(var, v, "the engine needs at least 6MiB".into())),
                Err(msg) => Err(invalid(var, v, msg)),
            },
        }
    };
    let cpus = |var: &'static str, default: f64| -> Result<f64, ConfigError> {
        match get(var) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.01 => Ok(n),
                _ => Err(invalid(var, v, "expected a number of CPUs such as 2 or 0.5".into())),
            },
        }
    };
    let defaults = Limits {
        pids: pids(env::JOB_PIDS, 1024)?,
        memory: memory(env::JOB_MEMORY, 2 << 30)?,
        cpus: cpus(env::JOB_CPUS, 2.0)?,
    };
    let max = Limits {
        pids: pids(env::JOB_MAX_PIDS, defaults.pids)?,
        memory: memory(env::JOB_MAX_MEMORY, defaults.memory)?,
        cpus: cpus(env::JOB_MAX_CPUS, defaults.cpus)?,
    };
    for (var, over) in [
        (env::JOB_MAX_PIDS, defaults.pids > max.pids),
        (env::JOB_MAX_MEMORY, defaults.memory > max.memory),
        (env::JOB_MAX_CPUS, defaults.cpus > max.cpus),
    ] {
        if over {
            return Err(invalid(var, get(var).unwrap_or_default(), "is below the default it caps".into()));
        }
    }
    let list = |var: &str| -> Vec<String> {
        get(var)
            .map(|v| v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default()
    };
    let mut cap_add = Vec::new();
    for cap in list(env::JOB_CAP_ADD) {
        let name = cap.to_ascii_uppercase();
        let name = name.strip_prefix("CAP_").unwrap_or(&name).to_string();
        if name == "ALL" || name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return Err(invalid(
                env::JOB_CAP_ADD,
                cap,
                "expected capability names such as NET_BIND_SERVICE (ALL is refused)".into(),
            ));
        }
        cap_add.push(name);
    }
    let network = match get(env::JOB_NETWORK) {
        None => JobNetwork::Bridge,
        Some(v) => JobNetwork::parse(&v).map_err(|msg| invalid(env::JOB_NETWORK, v, msg))?,
    };
    Ok(SandboxPolicy {
        cap_add,
        defaults,
        max,
        network,
        image_allow: list(env::IMAGE_ALLOW),
        // Two files of 1.25 × what is stored (2.5 × in all): a chatty job cannot fill the
        // host's disk, and after a rotation the previous file still holds the stored tail
        // (one file would be emptied at each rotation and lose it; 1/4 covers json-file's
        // framing).
        log_max_size: (max_output as u64).saturating_mul(5).saturating_div(4).max(1 << 20),
    })
}

/// `sqlite://<path>`, `sqlite:<path>`, a bare path, or `postgres(ql)://…`.
fn parse_store(url: &str) -> Result<StoreKind, String> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(StoreKind::Postgres(url.to_string()));
    }
    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
        return Err(
            "MongoDB is no longer supported: use sqlite://<path> (one node) or postgres://… (several nodes)".into()
        );
    }
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        if path.is_empty() {
            return Err("sqlite URL without a path".into());
        }
        return Ok(StoreKind::Sqlite(PathBuf::from(path)));
    }
    if url.contains("://") {
        return Err("unsupported database URL scheme: use sqlite://<path> or postgres://…".into());
    }
    // The original's MongoDB `host:port` form.
    let looks_like_host_port = url.rsplit_once(':').is_some_and(|(host, port)| {
        !host.contains('/') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    });
    if looks_like_host_port {
        return Err(
            "looks like the original's MongoDB host:port; gostint now uses sqlite://<path> (one node) or postgres://… (several nodes)"
                .into(),
        );
    }
    Ok(StoreKind::Sqlite(PathBuf::from(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [("VAULT_ADDR", "http://127.0.0.1:8200"), ("GOSTINT_ROLEID", "rid")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in pairs {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = Settings::from_source(&src(&[])).unwrap();
        assert_eq!(s.port, 3232);
        assert_eq!(s.store, StoreKind::Sqlite("/var/lib/gostint/gostint.db".into()));
        assert_eq!(s.max_body, 16 << 20);
        assert_eq!(s.max_output, 4 << 20);
        assert_eq!(s.retention, Duration::from_secs(6 * 3600));
        assert_eq!(s.stale_after, Duration::from_secs(300));
        assert_eq!(s.kill_grace, Duration::from_secs(15));
        assert_eq!(s.job_timeout, None);
        assert!(s.inject_token);
        assert_eq!(s.vault.external_addr, "http://127.0.0.1:8200");
        assert!(matches!(s.tls, Tls::Files { .. }));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Settings::from_source(&src(&[("GOSTINT_PORT", "abc")])).unwrap_err();
        assert!(e.to_string().starts_with("GOSTINT_PORT:"), "{e}");
        let mut m = src(&[]);
        m.remove("GOSTINT_ROLEID");
        assert_eq!(Settings::from_source(&m).unwrap_err(), ConfigError::Missing("GOSTINT_ROLEID"));
        let e = Settings::from_source(&src(&[("GOSTINT_DBURL", "mongodb:27017")])).unwrap_err();
        assert!(e.to_string().contains("MongoDB"), "{e}");
        let e = Settings::from_source(&src(&[("GOSTINT_RETENTION", "6 weeks")])).unwrap_err();
        assert!(e.to_string().starts_with("GOSTINT_RETENTION:"), "{e}");
    }

    #[test]
    fn vault_database_credentials_need_both_halves_and_postgres() {
        let pg = [("GOSTINT_DBURL", "postgres://h/db")];
        assert!(Settings::from_source(&src(&pg)).unwrap().db_creds.is_none());
        let both =
            [("GOSTINT_DBURL", "postgres://h/db"), ("GOSTINT_RUN_ROLEID", "r"), ("GOSTINT_RUN_SECRETID", "topsecret")];
        let c = Settings::from_source(&src(&both)).unwrap().db_creds.unwrap();
        assert_eq!((c.role_id.as_str(), c.creds_role.as_str()), ("r", "gostint-dbauth-role"));
        assert!(!format!("{c:?}").contains("topsecret"), "the secret id never shows in Debug");
        let half = [("GOSTINT_DBURL", "postgres://h/db"), ("GOSTINT_RUN_ROLEID", "r")];
        assert_eq!(Settings::from_source(&src(&half)).unwrap_err(), ConfigError::Missing("GOSTINT_RUN_SECRETID"));
        let sqlite = [("GOSTINT_RUN_ROLEID", "r"), ("GOSTINT_RUN_SECRETID", "s")];
        assert!(Settings::from_source(&src(&sqlite)).is_err());
    }

    #[test]
    fn job_files_bind_by_default_or_copy() {
        let s = Settings::from_source(&src(&[])).unwrap();
        assert!(s.job_files_dir.is_some(), "bind by default");
        let s = Settings::from_source(&src(&[("GOSTINT_JOB_FILES_DIR", "/run/gostint")])).unwrap();
        assert_eq!(s.job_files_dir, Some(PathBuf::from("/run/gostint")));
        let s = Settings::from_source(&src(&[("GOSTINT_JOB_FILES", "copy")])).unwrap();
        assert_eq!(s.job_files_dir, None);
        let e = Settings::from_source(&src(&[("GOSTINT_JOB_FILES", "mount")])).unwrap_err();
        assert!(e.to_string().starts_with("GOSTINT_JOB_FILES:"), "{e}");
    }

    #[test]
    fn tenants_from_approles_or_the_single_role() {
        let s = Settings::from_source(&src(&[("GOSTINT_ROLENAME", "gostint-role")])).unwrap();
        assert_eq!(s.tenants.all().len(), 1);
        assert_eq!(s.tenants.all()[0].name, "gostint-role");
        assert_eq!(s.tenants.all()[0].role_id, "rid");
        assert_eq!((s.tenant_max_queued, s.tenant_max_running), (10_000, 0));
        let s = Settings::from_source(&src(&[("GOSTINT_APPROLES", "a:1,b:2"), ("GOSTINT_TENANT_MAX_RUNNING", "3")]))
            .unwrap();
        assert_eq!(s.tenants.get("b").unwrap().role_id, "2");
        assert_eq!(s.tenant_max_running, 3);
        let e = Settings::from_source(&src(&[("GOSTINT_APPROLES", "a:1,b/x:2")])).unwrap_err();
        assert!(e.to_string().starts_with("GOSTINT_APPROLES:"), "{e}");
        assert!(e.to_string().contains("b/x:2"), "names the entry: {e}");
        let e = Settings::from_source(&src(&[("GOSTINT_TENANT_MAX_QUEUED", "many")])).unwrap_err();
        assert!(e.to_string().starts_with("GOSTINT_TENANT_MAX_QUEUED:"), "{e}");
        let dir = std::env::temp_dir().join(format!("gostint-approles-{}", std::process::id()));
        std::fs::write(&dir, "# tenants\nx:10\ny:20 # second\n").unwrap();
        let s = Settings::from_source(&src(&[("GOSTINT_APPROLES_FILE", dir.to_str().unwrap())])).unwrap();
        assert_eq!(s.tenants.all().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["x", "y"]);
        std::fs::write(&dir, "x:10\nbroken line\n").unwrap();
        let e = Settings::from_source(&src(&[("GOSTINT_APPROLES_FILE", dir.to_str().unwrap())])).unwrap_err();
        assert!(e.to_string().contains("broken line"), "{e}");
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn sandbox_settings_have_safe_defaults_and_refuse_nonsense() {
        let s = Settings::from_source(&src(&[])).unwrap();
        assert_eq!(s.sandbox.defaults, Limits { pids: 1024, memory: 2 << 30, cpus: 2.0 });
        assert_eq!(s.sandbox.max, s.sandbox.defaults);
        assert!(s.sandbox.cap_add.is_empty() && s.sandbox.image_allow.is_empty());
        assert_eq!(s.sandbox.network, JobNetwork::Bridge);
        assert_eq!(s.sandbox.log_max_size, 5 << 20, "1.25 × GOSTINT_MAX_OUTPUT per file");
        assert_eq!(s.image_gc_age, Some(Duration::from_secs(86400)));
        let s = Settings::from_source(&src(&[
            ("GOSTINT_JOB_CAP_ADD", "net_bind_service, CAP_CHOWN"),
            ("GOSTINT_JOB_MEMORY", "256MiB"),
            ("GOSTINT_JOB_MAX_MEMORY", "4GiB"),
            ("GOSTINT_JOB_NETWORK", "tenant"),
            ("GOSTINT_IMAGE_ALLOW", "docker.io/library/*, reg.example/**"),
            ("GOSTINT_IMAGE_GC_AGE", "0"),
        ]))
        .unwrap();
        assert_eq!(s.sandbox.cap_add, ["NET_BIND_SERVICE", "CHOWN"]);
        assert_eq!((s.sandbox.defaults.memory, s.sandbox.max.memory), (256 << 20, 4 << 30));
        assert_eq!(s.sandbox.network, JobNetwork::Tenant);
        assert_eq!(s.sandbox.image_allow, ["docker.io/library/*", "reg.example/**"]);
        assert_eq!(s.image_gc_age, None);
        for (var, value) in [
            ("GOSTINT_JOB_CAP_ADD", "ALL"),
            ("GOSTINT_JOB_PIDS", "0"),
            ("GOSTINT_JOB_MEMORY", "1MiB"),
            ("GOSTINT_JOB_CPUS", "lots"),
            ("GOSTINT_JOB_MAX_PIDS", "10"),
            ("GOSTINT_JOB_NETWORK", "host"),
            ("GOSTINT_IMAGE_GC_AGE", "soon"),
        ] {
            let e = Settings::from_source(&src(&[(var, value)])).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{var}:")), "{var}={value}: {e}");
        }
    }

    #[test]
    fn store_urls() {
        assert_eq!(parse_store("sqlite:///tmp/a.db").unwrap(), StoreKind::Sqlite("/tmp/a.db".into()));
        assert_eq!(parse_store("/tmp/a.db").unwrap(), StoreKind::Sqlite("/tmp/a.db".into()));
        assert_eq!(parse_store("postgres://u:p@h/db").unwrap(), StoreKind::Postgres("postgres://u:p@h/db".into()));
        assert!(parse_store("mongodb://h").is_err());
        assert!(parse_store("redis://h").is_err());
    }

    #[test]
    fn booleans_are_strict_in_any_case() {
        for (v, want) in [("1", true), ("TRUE", true), ("Yes", true), ("on", true), (" 0 ", false), ("False", false)] {
            assert_eq!(parse_bool(v), Ok(want), "{v}");
        }
        // VAULT_SKIP_VERIFY=False must never turn verification off.
        let s = Settings::from_source(&src(&[("VAULT_SKIP_VERIFY", "False")])).unwrap();
        assert!(!s.vault.skip_verify);
        let s = Settings::from_source(&src(&[("GOSTINT_DEBUG", "0")])).unwrap();
        assert!(!s.debug, "GOSTINT_DEBUG=0 must not enable debug");
        assert!(Settings::from_source(&src(&[("GOSTINT_DEBUG", "ON")])).unwrap().debug);
        for var in [
            "GOSTINT_PLAIN_HTTP",
            "GOSTINT_SSL_SELF_SIGNED",
            "GOSTINT_PROTECT_STATUS",
            "GOSTINT_INJECT_TOKEN",
            "GOSTINT_DEBUG",
            "VAULT_SKIP_VERIFY",
        ] {
            let e = Settings::from_source(&src(&[(var, "nope")])).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{var}: expected a boolean")), "{e}");
        }
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let mut m = src(&[
            ("GOSTINT_PORT", "http"),
            ("GOSTINT_PLAIN_HTTP", "nope"),
            ("GOSTINT_RETENTION", "6 weeks"),
            ("GOSTINT_MAX_BODY", "lots"),
            ("GOSTINT_MAX_RUNNING", "-1"),
            ("GOSTINT_JOB_FILES", "mount"),
            ("VAULT_SKIP_VERIFY", "maybe"),
            ("GOSTINT_DBURL", "mongodb://h"),
        ]);
        m.remove("VAULT_ADDR");
        m.remove("GOSTINT_ROLEID");
        let e = Settings::from_source(&m).unwrap_err();
        let named: Vec<&str> = e
            .all()
            .iter()
            .map(|e| match e {
                ConfigError::Missing(v) | ConfigError::Invalid { var: v, .. } => *v,
                ConfigError::Several(_) => "nested",
            })
            .collect();
        let mut want = vec![
            "GOSTINT_PORT",
            "GOSTINT_PLAIN_HTTP",
            "GOSTINT_RETENTION",
            "GOSTINT_MAX_BODY",
            "GOSTINT_MAX_RUNNING",
            "GOSTINT_JOB_FILES",
            "VAULT_SKIP_VERIFY",
            "GOSTINT_DBURL",
            "VAULT_ADDR",
            "GOSTINT_ROLEID",
        ];
        let mut got = named.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{e}");
        let text = e.to_string();
        assert!(text.starts_with("10 settings are wrong: "), "{text}");
        for var in want {
            assert!(text.contains(var), "{var} missing from {text}");
        }
    }

    #[test]
    fn vault_tls_settings_are_read_and_a_client_key_needs_its_cert() {
        let s = Settings::from_source(&src(&[])).unwrap();
        assert_eq!((s.vault.ca_path, s.vault.client_cert, s.vault.tls_server_name), (None, None, None));
        let s = Settings::from_source(&src(&[
            ("VAULT_CAPATH", "/etc/vault/ca.d"),
            ("VAULT_CLIENT_CERT", "/etc/vault/client.pem"),
            ("VAULT_CLIENT_KEY", "/etc/vault/client-key.pem"),
            ("VAULT_TLS_SERVER_NAME", " vault.internal "),
        ]))
        .unwrap();
        assert_eq!(s.vault.ca_path, Some(PathBuf::from("/etc/vault/ca.d")));
        assert_eq!(s.vault.client_cert, Some(PathBuf::from("/etc/vault/client.pem")));
        assert_eq!(s.vault.client_key, Some(PathBuf::from("/etc/vault/client-key.pem")));
        assert_eq!(s.vault.tls_server_name.as_deref(), Some("vault.internal"));
        let e = Settings::from_source(&src(&[("VAULT_CLIENT_CERT", "/c.pem")])).unwrap_err();
        assert_eq!(e, ConfigError::Missing("VAULT_CLIENT_KEY"));
        let e = Settings::from_source(&src(&[("VAULT_CLIENT_KEY", "/k.pem")])).unwrap_err();
        assert_eq!(e, ConfigError::Missing("VAULT_CLIENT_CERT"));
    }

    #[test]
    fn header_timeout_and_request_cap() {
        let s = Settings::from_source(&src(&[])).unwrap();
        assert_eq!((s.header_timeout, s.max_requests), (Duration::from_secs(10), 512));
        let s =
            Settings::from_source(&src(&[("GOSTINT_HEADER_TIMEOUT", "3s"), ("GOSTINT_MAX_REQUESTS", "8")])).unwrap();
        assert_eq!((s.header_timeout, s.max_requests), (Duration::from_secs(3), 8));
        let e = Settings::from_source(&src(&[("GOSTINT_MAX_REQUESTS", "many")])).unwrap_err();
        assert!(e.to_string().starts_with("GOSTINT_MAX_REQUESTS:"), "{e}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(21600));
        assert_eq!(parse_duration("42").unwrap(), Duration::from_secs(42));
        assert!(parse_duration("x").is_err());
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn otlp_export_is_off_by_default_and_its_settings_are_strict() {
        assert!(Settings::from_source(&src(&[])).unwrap().otlp.is_none(), "off by default");
        let o = Settings::from_source(&src(&[(env::OTEL_ENDPOINT, "http://collector:4318/")])).unwrap().otlp.unwrap();
        assert_eq!(o.endpoint, "http://collector:4318/v1/traces");
        assert_eq!((o.service_name.as_str(), o.timeout, o.headers.len()), ("gostint", Duration::from_secs(10), 0));
        let o = Settings::from_source(&src(&[
            (env::OTEL_ENDPOINT, "http://ignored:4318"),
            (env::OTEL_TRACES_ENDPOINT, "https://c.example/otlp/traces"),
            (env::OTEL_HEADERS, "ignored=1"),
            (env::OTEL_TRACES_HEADERS, "x-api-key=hunter2%2Cx, tenant=ops"),
            (env::OTEL_TIMEOUT, "2500"),
            (env::OTEL_SERVICE_NAME, "gostint-eu"),
            (env::OTEL_PROTOCOL, "http/protobuf"),
        ]))
        .unwrap()
        .otlp
        .unwrap();
        assert_eq!((o.endpoint.as_str(), o.endpoint_var), ("https://c.example/otlp/traces", env::OTEL_TRACES_ENDPOINT));
        let h: Vec<(&str, &str)> =
            o.headers.iter().map(|(k, v)| (k.as_str(), secrecy::ExposeSecret::expose_secret(v))).collect();
        assert_eq!(h, [("x-api-key", "hunter2,x"), ("tenant", "ops")]);
        assert_eq!((o.timeout, o.service_name.as_str()), (Duration::from_millis(2500), "gostint-eu"));
        assert!(!format!("{o:?}").contains("hunter2"), "header values never show in Debug");
        let off = [(env::OTEL_ENDPOINT, "http://c:4318"), (env::OTEL_SDK_DISABLED, "true")];
        assert!(Settings::from_source(&src(&off)).unwrap().otlp.is_none());
        for (var, value) in [
            (env::OTEL_ENDPOINT, "collector:4318"),
            (env::OTEL_TRACES_ENDPOINT, "http://"),
            (env::OTEL_TIMEOUT, "soon"),
            (env::OTEL_PROTOCOL, "grpc"),
            (env::OTEL_SDK_DISABLED, "maybe"),
        ] {
            let e = Settings::from_source(&src(&[(env::OTEL_ENDPOINT, "http://c:4318"), (var, value)])).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{var}:")), "{var}={value}: {e}");
        }
        let e =
            Settings::from_source(&src(&[(env::OTEL_ENDPOINT, "http://c:4318"), (env::OTEL_HEADERS, "key-hunter2")]))
                .unwrap_err();
        assert!(e.to_string().starts_with("OTEL_EXPORTER_OTLP_HEADERS:") && !e.to_string().contains("hunter2"), "{e}");
        let e = Settings::from_source(&src(&[(env::OTEL_ENDPOINT, "https://u:hunter2@c.example:4318")])).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT:") && text.contains("HEADERS"), "{text}");
        assert!(!text.contains("hunter2") && text.contains("https://<redacted>@c.example:4318"), "{text}");
        let e = Settings::from_source(&src(&[(env::OTEL_HEADERS, "k=bad%zzhunter2")])).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "a header value is never in a message: {e}");
    }

    #[test]
    fn the_web_ui_is_off_unless_gostint_ui_is_set() {
        assert!(!Settings::from_source(&src(&[])).unwrap().ui);
        assert!(Settings::from_source(&src(&[(env::UI, "1")])).unwrap().ui);
        assert!(!Settings::from_source(&src(&[(env::UI, "0")])).unwrap().ui);
    }
}
