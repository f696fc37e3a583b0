//! gostint's settings. Every environment variable the server reads is a documented `const`
//! in [`env`]; [`Settings::from_env`] parses them once at start, so a bad value stops the
//! process with a message naming the variable instead of failing later.
//!
//! Nothing here opens a connection; the server binary turns settings into adapters.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// The environment variables, with their defaults and meaning (SPEC.md §6).
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
    /// Non-empty: debug logging. `RUST_LOG` overrides.
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
    /// Non-empty and not `0`/`false`: skip Vault TLS verification (development only).
    pub const VAULT_SKIP_VERIFY: &str = "VAULT_SKIP_VERIFY";
    /// Vault Enterprise / OpenBao namespace sent as `X-Vault-Namespace`.
    pub const VAULT_NAMESPACE: &str = "VAULT_NAMESPACE";
    /// Timeout of each Vault call. Default `60s`.
    pub const VAULT_CLIENT_TIMEOUT: &str = "VAULT_CLIENT_TIMEOUT";
    /// Accepted but ignored (with a warning), as in the original's later versions.
    pub const IGNORED: &[&str] = &["GOSTINT_DBAUTH_TOKEN", "GOSTINT_RUN_ROLENAME"];
    /// A static bearer token (`Authorization: Bearer <token>`) that reads
    /// `/v1/api/metrics` even with `GOSTINT_PROTECT_STATUS=1`, for Prometheus, which cannot
    /// renew a Vault token. Unset (the default): no scrape token. Redacted by `config show`.
    pub const METRICS_TOKEN: &str = "GOSTINT_METRICS_TOKEN";
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
    /// `GOSTINT_METRICS_TOKEN`.
    pub metrics_token: Option<secrecy::SecretString>,
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

fn flag(value: Option<String>, default: bool) -> bool {
    match value.as_deref().map(str::trim) {
        None | Some("") => default,
        Some("0") | Some("false") | Some("no") | Some("off") => false,
        Some(_) => true,
    }
}

impl Settings {
    /// Reads the process environment.
    ///
    /// # Errors
    /// The first variable that is missing or does not parse.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    /// Reads any [`Source`].
    ///
    /// # Errors
    /// The first variable that is missing or does not parse.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let get = |name: &str| src.get(name).filter(|v| !v.trim().is_empty());
        let invalid = |var: &'static str, value: String, msg: String| ConfigError::Invalid { var, value, msg };
        let duration = |var: &'static str, default: &str| -> Result<Duration, ConfigError> {
            let v = get(var).unwrap_or_else(|| default.to_string());
            parse_duration(&v).map_err(|msg| invalid(var, v, msg))
        };
        let size = |var: &'static str, default: &str| -> Result<usize, ConfigError> {
            let v = get(var).unwrap_or_else(|| default.to_string());
            parse_size(&v).map_err(|msg| invalid(var, v, msg))
        };

        let port = match get(env::PORT) {
            None => 3232,
            Some(v) => v.trim().parse::<u16>().map_err(|_| invalid(env::PORT, v, "expected a port number".into()))?,
        };
        let tls = if flag(src.get(env::PLAIN_HTTP), false) {
            Tls::Plain
        } else {
            Tls::Files {
                cert: get(env::SSL_CERT).unwrap_or_else(|| "/var/lib/gostint/cert.pem".into()).into(),
                key: get(env::SSL_KEY).unwrap_or_else(|| "/var/lib/gostint/key.pem".into()).into(),
                self_signed: flag(src.get(env::SSL_SELF_SIGNED), false),
            }
        };
        let dburl = get(env::DBURL).unwrap_or_else(|| "sqlite:///var/lib/gostint/gostint.db".into());
        let store = parse_store(&dburl).map_err(|msg| invalid(env::DBURL, dburl.clone(), msg))?;

        let vault_addr = get(env::VAULT_ADDR).ok_or(ConfigError::Missing(env::VAULT_ADDR))?;
        let vault = VaultSettings {
            external_addr: get(env::VAULT_EXTERNAL_ADDR).unwrap_or_else(|| vault_addr.clone()),
            addr: vault_addr,
            ca_cert: get(env::VAULT_CACERT).map(PathBuf::from),
            skip_verify: flag(src.get(env::VAULT_SKIP_VERIFY), false),
            namespace: get(env::VAULT_NAMESPACE),
            timeout: duration(env::VAULT_CLIENT_TIMEOUT, "60s")?,
        };
        let job_timeout = duration(env::JOB_TIMEOUT, "0")?;
        let max_running = match get(env::MAX_RUNNING) {
            None => 0,
            Some(v) => v.trim().parse().map_err(|_| invalid(env::MAX_RUNNING, v, "expected a whole number".into()))?,
        };
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
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| invalid(env::RUN_SECRETID, format!("@{path}"), e.to_string()))?
                        .trim_end()
                        .to_string(),
                    None => secret,
                };
                if !matches!(store, StoreKind::Postgres(_)) {
                    return Err(invalid(
                        env::RUN_ROLEID,
                        role_id,
                        "Vault database credentials need a postgres:// GOSTINT_DBURL".into(),
                    ));
                }
                Some(DbCreds {
                    role_id,
                    secret_id: secret.into(),
                    creds_role: get(env::DB_CREDS_ROLE).unwrap_or_else(|| "gostint-dbauth-role".into()),
                })
            }
            (Some(_), None) => return Err(ConfigError::Missing(env::RUN_SECRETID)),
            (None, Some(_)) => return Err(ConfigError::Missing(env::RUN_ROLEID)),
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
            Some(other) => return Err(invalid(env::JOB_FILES, other.to_string(), "expected bind or copy".into())),
        };
        Ok(Settings {
            job_files_dir,
            db_creds,
            state_dir,
            bind: get(env::BIND).unwrap_or_else(|| "0.0.0.0".into()),
            port,
            tls,
            store,
            role_id: get(env::ROLEID).ok_or(ConfigError::Missing(env::ROLEID))?,
            role_name: get(env::ROLENAME),
            vault,
            debug: get(env::DEBUG).is_some(),
            admin_policy: get(env::ADMIN_POLICY).unwrap_or_else(|| "gostint-admin".into()),
            protect_status: flag(src.get(env::PROTECT_STATUS), false),
            inject_token: flag(src.get(env::INJECT_TOKEN), true),
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
            metrics_token: get(env::METRICS_TOKEN).map(|t| secrecy::SecretString::from(t.trim().to_string())),
        })
    }
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
    fn store_urls() {
        assert_eq!(parse_store("sqlite:///tmp/a.db").unwrap(), StoreKind::Sqlite("/tmp/a.db".into()));
        assert_eq!(parse_store("/tmp/a.db").unwrap(), StoreKind::Sqlite("/tmp/a.db".into()));
        assert_eq!(parse_store("postgres://u:p@h/db").unwrap(), StoreKind::Postgres("postgres://u:p@h/db".into()));
        assert!(parse_store("mongodb://h").is_err());
        assert!(parse_store("redis://h").is_err());
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
}
