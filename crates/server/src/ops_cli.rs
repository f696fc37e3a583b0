//! `gostint config show` and `gostint check`: what an operator runs before (and while)
//! serving. Both print one line per item; neither ever prints a password or a token.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use gostint_config::{env, ProcessEnv, Settings, Source, StoreKind, Tls};
use gostint_core::ContainerRuntime;

/// Every setting `config show` lists, in the README's order.
const SETTINGS: &[&str] = &[
    env::PORT,
    env::BIND,
    env::SSL_CERT,
    env::SSL_KEY,
    env::SSL_SELF_SIGNED,
    env::PLAIN_HTTP,
    env::DBURL,
    env::RUN_ROLEID,
    env::RUN_SECRETID,
    env::DB_CREDS_ROLE,
    env::STATE_DIR,
    env::ROLEID,
    env::ROLENAME,
    env::ADMIN_POLICY,
    env::PROTECT_STATUS,
    env::METRICS_TOKEN,
    env::INJECT_TOKEN,
    env::MAX_BODY,
    env::MAX_OUTPUT,
    env::MAX_CONTENT,
    env::KILL_GRACE,
    env::DRAIN_TIMEOUT,
    env::JOB_TIMEOUT,
    env::MAX_RUNNING,
    env::JOB_FILES,
    env::JOB_FILES_DIR,
    env::RETENTION,
    env::STALE_AFTER,
    env::DEBUG,
    env::OTEL_ENDPOINT,
    env::OTEL_TRACES_ENDPOINT,
    env::OTEL_HEADERS,
    env::OTEL_TRACES_HEADERS,
    env::OTEL_TIMEOUT,
    env::OTEL_TRACES_TIMEOUT,
    env::OTEL_PROTOCOL,
    env::OTEL_TRACES_PROTOCOL,
    env::OTEL_SERVICE_NAME,
    env::OTEL_SDK_DISABLED,
    env::VAULT_ADDR,
    env::VAULT_EXTERNAL_ADDR,
    env::VAULT_CACERT,
    env::VAULT_SKIP_VERIFY,
    env::VAULT_NAMESPACE,
    env::VAULT_CLIENT_TIMEOUT,
    env::VAULT_CAPATH,
    env::VAULT_CLIENT_CERT,
    env::VAULT_CLIENT_KEY,
    env::VAULT_TLS_SERVER_NAME,
    "DOCKER_HOST",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_API_VERSION",
];

const REDACTED: &str = "<redacted>";

/// Whether a variable holds a credential: its value is never shown (OTLP headers often
/// carry an API key).
fn is_secret(name: &str) -> bool {
    ["SECRET", "TOKEN", "PASSWORD", "PASSWD"].iter().any(|w| name.contains(w)) || name.ends_with("_HEADERS")
}

/// A URL's password (`scheme://user:password@host`) replaced by `<redacted>`.
fn redact_url(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_string() };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return value.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}{tail}"),
        None => value.to_string(),
    }
}

/// What a variable shows: a secret's value never, a URL's password never.
fn shown(name: &str, value: &str) -> String {
    if is_secret(name) {
        REDACTED.to_string()
    } else {
        // Also catches a password in a query (`?password=`): show the URL without it.
        let v = redact_url(value);
        match v.split_once('?') {
            Some((head, q)) if q.to_ascii_lowercase().contains("pass") => format!("{head}?{REDACTED}"),
            _ => v,
        }
    }
}

/// The value gostint uses when `name` is unset, as the parsed settings have it.
fn effective(s: &Settings, name: &str) -> Option<String> {
    let secs = |d: Duration| format!("{}s", d.as_secs());
    Some(match name {
        n if n == env::PORT => s.port.to_string(),
        n if n == env::BIND => s.bind.clone(),
        n if n == env::SSL_CERT => match &s.tls {
            Tls::Files { cert, .. } => cert.display().to_string(),
            Tls::Plain => return None,
        },
        n if n == env::SSL_KEY => match &s.tls {
            Tls::Files { key, .. } => key.display().to_string(),
            Tls::Plain => return None,
        },
        n if n == env::DBURL => match &s.store {
            StoreKind::Sqlite(p) => format!("sqlite://{}", p.display()),
            StoreKind::Postgres(url) => redact_url(url),
        },
        n if n == env::STATE_DIR => s.state_dir.display().to_string(),
        n if n == env::ADMIN_POLICY => s.admin_policy.clone(),
        n if n == env::PROTECT_STATUS => u8::from(s.protect_status).to_string(),
        n if n == env::INJECT_TOKEN => u8::from(s.inject_token).to_string(),
        n if n == env::MAX_BODY => format!("{} bytes", s.max_body),
        n if n == env::MAX_OUTPUT => format!("{} bytes", s.max_output),
        n if n == env::MAX_CONTENT => format!("{} bytes", s.max_content),
        n if n == env::KILL_GRACE => secs(s.kill_grace),
        n if n == env::DRAIN_TIMEOUT => secs(s.drain_timeout),
        n if n == env::JOB_TIMEOUT => s.job_timeout.map(secs).unwrap_or_else(|| "0 (none)".into()),
        n if n == env::MAX_RUNNING => s.max_running.to_string(),
        n if n == env::JOB_FILES => if s.job_files_dir.is_some() { "bind" } else { "copy" }.to_string(),
        n if n == env::JOB_FILES_DIR => s.job_files_dir.as_ref()?.display().to_string(),
        n if n == env::RETENTION => secs(s.retention),
        n if n == env::STALE_AFTER => secs(s.stale_after),
        n if n == env::VAULT_EXTERNAL_ADDR => s.vault.external_addr.clone(),
        n if n == env::VAULT_CLIENT_TIMEOUT => secs(s.vault.timeout),
        n if n == env::DB_CREDS_ROLE => s.db_creds.as_ref()?.creds_role.clone(),
        n if n == env::OTEL_TRACES_ENDPOINT => redact_url(&s.otlp.as_ref()?.endpoint),
        n if n == env::OTEL_TRACES_TIMEOUT => format!("{}ms", s.otlp.as_ref()?.timeout.as_millis()),
        n if n == env::OTEL_TRACES_PROTOCOL => s.otlp.as_ref().map(|_| "http/protobuf".to_string())?,
        n if n == env::OTEL_SERVICE_NAME => s.otlp.as_ref()?.service_name.clone(),
        _ => return None,
    })
}

/// `gostint config show`: one line per setting — name, value, and where it came from
/// (`env`, `default`, or `unset`), credentials redacted. Then the verdict on the whole:
/// `Err` carries the text and the reason the settings do not parse.
///
/// # Errors
/// The settings do not parse (the text is still complete).
pub fn config_show(src: &dyn Source) -> Result<String, String> {
    let parsed = Settings::from_source(src);
    let mut out = String::new();
    let width = SETTINGS.iter().map(|n| n.len()).max().unwrap_or(0);
    for name in SETTINGS {
        let set = src.get(name).filter(|v| !v.trim().is_empty());
        let (value, from) = match (&set, parsed.as_ref().ok().and_then(|s| effective(s, name))) {
            (Some(v), _) => (shown(name, v), "env"),
            (None, Some(v)) => (v, "default"),
            (None, None) => ("-".to_string(), "unset"),
        };
        let _ = writeln!(out, "{name:<width$}  {from:<7}  {value}");
    }
    for name in env::IGNORED {
        if src.get(name).is_some() {
            let _ = writeln!(out, "{name:<width$}  {:<7}  {REDACTED} (ignored)", "env");
        }
    }
    match parsed {
        Ok(_) => Ok(out),
        Err(e) => Err(format!("{out}configuration error: {e}")),
    }
}

/// `config show` for the process environment.
///
/// # Errors
/// As [`config_show`].
pub fn config_show_env() -> Result<String, String> {
    config_show(&ProcessEnv)
}

/// One line of `gostint check`.
#[derive(Debug)]
pub struct CheckLine {
    /// What was checked (`vault`, `role-id`, `docker`, `store`, `tls`; `otlp` with trace export on).
    pub part: &'static str,
    /// Passed (a warning passes: `check` still exits 0).
    pub ok: bool,
    /// Passed, but needs attention soon (e.g. the certificate expires within 14 days).
    pub warn: bool,
    /// What was found; a failure names the setting to look at.
    pub detail: String,
}

impl std::fmt::Display for CheckLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = match (self.ok, self.warn) {
            (false, _) => "FAILED",
            (true, true) => "WARN",
            (true, false) => "ok",
        };
        write!(f, "{:<8} {verdict:<6} {}", self.part, self.detail)
    }
}

fn line(part: &'static str, r: Result<String, String>) -> CheckLine {
    match r {
        Ok(detail) => CheckLine { part, ok: true, warn: false, detail },
        Err(detail) => CheckLine { part, ok: false, warn: false, detail },
    }
}

/// `gostint check`: Vault answers, each job role id is known to it, Docker answers, the
/// store opens and counts, the certificate loads, and (trace export on) the OTLP collector
/// accepts an empty export. Every part is tried, whatever failed
/// before; each is bounded by `limit`.
pub async fn check(settings: &Settings, limit: Duration) -> Vec<CheckLine> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut lines = Vec::new();
    let bounded = |what: &'static str| format!("no answer within {}s ({what})", limit.as_secs());

    let mut vcfg = crate::vault_config(&settings.vault);
    vcfg.timeout = settings.vault.timeout.min(limit);
    let tls = vault_tls(&settings.vault);
    let vault = gostint_vault::VaultClient::new(&vcfg);
    let vault_up = match &vault {
        Err(e) => {
            lines.push(line("vault", Err(format!("VAULT_*{tls}: {e}"))));
            false
        }
        Ok(v) => {
            let r = match tokio::time::timeout(limit, v.health()).await {
                Ok(Ok(())) => Ok(format!("{} answers sys/health{tls}", v.addr())),
                Ok(Err(e)) => Err(format!("VAULT_ADDR {}{tls}: {}", v.addr(), e.message)),
                Err(_) => Err(format!("VAULT_ADDR {}{tls}: {}", v.addr(), bounded("sys/health"))),
            };
            let up = r.is_ok();
            lines.push(line("vault", r));
            up
        }
    };
    // The job AppRole's role id (each tenant's, once tenants exist, goes through here too).
    let roles: Vec<(&str, &str)> = vec![(env::ROLEID, settings.role_id.as_str())];
    for (var, role_id) in roles {
        let r = match (&vault, vault_up) {
            (Ok(v), true) => match tokio::time::timeout(limit, v.check_role_id(role_id)).await {
                Ok(Ok(gostint_vault::RoleIdCheck::Known)) => Ok(format!("{var}: the AppRole exists")),
                Ok(Ok(gostint_vault::RoleIdCheck::Unknown)) => {
                    Err(format!("{var}: Vault knows no AppRole with this role id (invalid role id)"))
                }
                Ok(Err(e)) => Err(format!("{var}: {}", e.message)),
                Err(_) => Err(format!("{var}: {}", bounded("approle login"))),
            },
            _ => Err(format!("{var}: not checked, Vault is not reachable")),
        };
        lines.push(line("role-id", r));
    }

    let docker = async {
        let rt = gostint_runner_docker::DockerRuntime::connect().await.map_err(|e| e.message)?;
        let info = rt.info().await.map_err(|e| e.message)?;
        Ok::<_, String>(format!(
            "engine {}/{}, {} containers, {} images",
            info.operating_system, info.architecture, info.containers, info.images
        ))
    };
    let r = match tokio::time::timeout(limit, docker).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(format!("DOCKER_HOST: {e}")),
        Err(_) => Err(format!("DOCKER_HOST: {}", bounded("engine info"))),
    };
    lines.push(line("docker", r));

    lines.push(line("store", check_store(settings, limit).await));
    lines.push(match check_tls(settings, time::OffsetDateTime::now_utc()).await {
        Ok(Tlsed::Fine(detail)) => line("tls", Ok(detail)),
        Ok(Tlsed::Soon(detail)) => CheckLine { part: "tls", ok: true, warn: true, detail },
        Err(detail) => line("tls", Err(detail)),
    });
    if let Some(otlp) = &settings.otlp {
        lines.push(line("otlp", check_otlp(otlp, limit).await));
    }
    lines
}

/// With trace export on: the collector accepts an empty OTLP/HTTP protobuf export (an empty
/// message is valid protobuf), with the configured headers.
async fn check_otlp(o: &gostint_config::OtlpSettings, limit: Duration) -> Result<String, String> {
    let shown = &o.endpoint;
    let var = o.endpoint_var;
    let client = reqwest::Client::builder()
        .timeout(limit.min(o.timeout))
        .build()
        .map_err(|e| format!("{var}: building the HTTP client: {e}"))?;
    let mut req = client.post(&o.endpoint).header("content-type", "application/x-protobuf").body(Vec::new());
    for (k, v) in &o.headers {
        req = req.header(k.as_str(), secrecy::ExposeSecret::expose_secret(v));
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(format!("{shown} accepts OTLP/HTTP protobuf traces")),
        Ok(r) => Err(format!("{var} {shown}: the collector answered {}", r.status())),
        Err(e) => Err(format!("{var} {shown}: {}", e.without_url())),
    }
}

/// The Vault TLS settings in force, for `check`'s vault line: ` (TLS: …)`, or nothing.
fn vault_tls(v: &gostint_config::VaultSettings) -> String {
    let mut parts = Vec::new();
    match (&v.ca_cert, &v.ca_path) {
        (Some(file), _) => parts.push(format!("CA file {}", file.display())),
        (None, Some(dir)) => parts.push(format!("CA directory {}", dir.display())),
        (None, None) => {}
    }
    if let Some(cert) = &v.client_cert {
        parts.push(format!("client cert {}", cert.display()));
    }
    if let Some(name) = &v.tls_server_name {
        parts.push(format!("server name {name}"));
    }
    if v.skip_verify {
        parts.push("verification OFF".into());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (TLS: {})", parts.join(", "))
    }
}

async fn check_store(settings: &Settings, limit: Duration) -> Result<String, String> {
    if let StoreKind::Sqlite(path) = &settings.store {
        if !path.exists() {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            return match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() && !m.permissions().readonly() => {
                    Ok(format!("sqlite: {} does not exist yet; created at the first start", path.display()))
                }
                Ok(_) => Err(format!("GOSTINT_DBURL: {} is not a writable directory", dir.display())),
                Err(e) => Err(format!("GOSTINT_DBURL: directory {}: {e}", dir.display())),
            };
        }
    }
    let open = async {
        let store = crate::open_store(settings).await.map_err(|e| format!("GOSTINT_DBURL: {e:#}"))?;
        let counts = store.count_by_status().await.map_err(|e| format!("GOSTINT_DBURL: {e}"))?;
        let total: u64 = counts.values().sum();
        let kind = match settings.store {
            StoreKind::Sqlite(_) => "sqlite",
            StoreKind::Postgres(_) => "postgres",
        };
        Ok::<_, String>(format!("{kind}: opens, {total} jobs"))
    };
    match tokio::time::timeout(limit, open).await {
        Ok(r) => r,
        Err(_) => Err(format!("GOSTINT_DBURL: no answer within {}s", limit.as_secs())),
    }
}

/// A certificate that expires within this is a warning.
const EXPIRY_WARNING: time::Duration = time::Duration::days(14);

/// The TLS line's verdict when the pair loads.
#[derive(Debug, PartialEq, Eq)]
enum Tlsed {
    /// Nothing to say but what loaded.
    Fine(String),
    /// Loads, but expires within [`EXPIRY_WARNING`].
    Soon(String),
}

async fn check_tls(settings: &Settings, now: time::OffsetDateTime) -> Result<Tlsed, String> {
    match &settings.tls {
        Tls::Plain => Ok(Tlsed::Fine("plain HTTP (GOSTINT_PLAIN_HTTP=1): TLS is the proxy's".into())),
        Tls::Files { cert, key, self_signed } => {
            if *self_signed && !cert.exists() && !key.exists() {
                return Ok(Tlsed::Fine(format!(
                    "{} absent: a self-signed pair is made at the first start",
                    cert.display()
                )));
            }
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await.map_err(|e| {
                format!("GOSTINT_SSL_CERT/GOSTINT_SSL_KEY ({}, {}): {e}", cert.display(), key.display())
            })?;
            let (not_before, not_after) =
                cert_validity(cert).map_err(|e| format!("GOSTINT_SSL_CERT {}: {e}", cert.display()))?;
            if now < not_before {
                return Err(format!(
                    "GOSTINT_SSL_CERT {}: not valid before {} (not yet valid)",
                    cert.display(),
                    utc(not_before)
                ));
            }
            if now > not_after {
                return Err(format!("GOSTINT_SSL_CERT {}: expired on {}", cert.display(), utc(not_after)));
            }
            let left = not_after - now;
            if left < EXPIRY_WARNING {
                return Ok(Tlsed::Soon(format!(
                    "GOSTINT_SSL_CERT {} expires on {}, in {} days: renew it (then SIGHUP)",
                    cert.display(),
                    utc(not_after),
                    left.whole_days()
                )));
            }
            Ok(Tlsed::Fine(format!("{} and its key load; valid until {}", cert.display(), utc(not_after))))
        }
    }
}

fn utc(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The first certificate's notBefore and notAfter.
fn cert_validity(path: &Path) -> Result<(time::OffsetDateTime, time::OffsetDateTime), String> {
    use rustls::pki_types::pem::PemObject as _;
    let first = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .next()
        .ok_or("holds no PEM certificate")?
        .map_err(|e| format!("not PEM: {e}"))?;
    der_validity(&first).ok_or_else(|| "the certificate's validity dates cannot be read".to_string())
}

/// One DER tag-length-value: (tag, contents, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// X.509 `Certificate → TBSCertificate → Validity` (RFC 5280 §4.1).
fn der_validity(der: &[u8]) -> Option<(time::OffsetDateTime, time::OffsetDateTime)> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = tlv(der)? else { return None };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else { return None };
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        // [0] version, then the serial number.
        rest = tlv(rest)?.2;
    }
    let rest = tlv(rest)?.2; // signature algorithm
    let rest = tlv(rest)?.2; // issuer
    let (SEQUENCE, validity, _) = tlv(rest)? else { return None };
    let (tag1, not_before, rest) = tlv(validity)?;
    let (tag2, not_after, _) = tlv(rest)?;
    Some((asn1_time(tag1, not_before)?, asn1_time(tag2, not_after)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime (`YYYYMMDDHHMMSSZ`, 0x18).
fn asn1_time(tag: u8, bytes: &[u8]) -> Option<time::OffsetDateTime> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two = |i: usize| rest[i..i + 2].parse::<u8>().ok();
    let date = time::Date::from_calendar_date(year, time::Month::try_from(two(0)?).ok()?, two(2)?).ok()?;
    let clock = time::Time::from_hms(two(4)?, two(6)?, two(8)?).ok()?;
    Some(date.with_time(clock).assume_utc())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn config_show_never_prints_a_credential() {
        let env: HashMap<String, String> = [
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("GOSTINT_ROLEID", "role-id-visible"),
            ("GOSTINT_DBURL", "postgres://gostint:hunter2-db@db.example:5432/gostint?sslmode=require"),
            ("GOSTINT_RUN_ROLEID", "run-role"),
            ("GOSTINT_RUN_SECRETID", "hunter2-secretid"),
            ("GOSTINT_METRICS_TOKEN", "hunter2-scrape"),
            ("GOSTINT_DBAUTH_TOKEN", "hunter2-dbauth"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=hunter2-otlp"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let text = config_show(&env).expect("these settings parse");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("postgres://gostint:<redacted>@db.example:5432/gostint?sslmode=require"), "{text}");
        assert!(text.contains("GOSTINT_METRICS_TOKEN"), "{text}");
        assert!(
            text.lines().any(|l| l.starts_with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                && l.ends_with("https://collector.example:4318/v1/traces")),
            "{text}"
        );
        assert!(text.lines().any(|l| l.starts_with("OTEL_SERVICE_NAME") && l.ends_with("gostint")), "{text}");
        assert!(text.lines().any(|l| l.starts_with("GOSTINT_PORT") && l.contains("default") && l.ends_with("3232")));
        assert!(text
            .lines()
            .any(|l| l.starts_with("GOSTINT_ROLEID") && l.contains("env") && l.ends_with("role-id-visible")));
    }

    #[test]
    fn config_show_names_the_bad_setting() {
        let env: HashMap<String, String> = [("GOSTINT_PORT".to_string(), "eighty".to_string())].into_iter().collect();
        let err = config_show(&env).unwrap_err();
        assert!(err.contains("GOSTINT_PORT"), "{err}");
        assert!(err.lines().any(|l| l.starts_with("VAULT_ADDR") && l.contains("unset")), "{err}");
    }

    /// A certificate for localhost valid from `from` to `until`, written with its key into
    /// `dir`; the settings that name them.
    fn tls_settings(dir: &Path, from: time::OffsetDateTime, until: time::OffsetDateTime) -> Settings {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = from;
        params.not_after = until;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let env: HashMap<String, String> = [
            ("VAULT_ADDR", "http://127.0.0.1:8200".to_string()),
            ("GOSTINT_ROLEID", "rid".to_string()),
            ("GOSTINT_SSL_CERT", dir.join("cert.pem").display().to_string()),
            ("GOSTINT_SSL_KEY", dir.join("key.pem").display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Settings::from_source(&env).unwrap()
    }

    #[tokio::test]
    async fn the_tls_line_warns_before_expiry_and_fails_when_expired_or_not_yet_valid() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let day = time::Duration::days(1);
        let at = |d: time::OffsetDateTime| utc(d);

        let s = tls_settings(dir.path(), now - day, now + 90 * day);
        let Ok(Tlsed::Fine(text)) = check_tls(&s, now).await else { panic!("90 days left is fine") };
        assert!(text.ends_with(&format!("valid until {}", at(now + 90 * day))), "{text}");

        let s = tls_settings(dir.path(), now - day, now + 10 * day);
        let verdict = check_tls(&s, now).await;
        let Ok(Tlsed::Soon(text)) = &verdict else { panic!("10 days left warns: {verdict:?}") };
        assert!(text.contains(&format!("expires on {}, in 10 days", at(now + 10 * day))), "{text}");
        let line = CheckLine { part: "tls", ok: true, warn: true, detail: text.clone() };
        assert!(line.to_string().starts_with("tls      WARN   GOSTINT_SSL_CERT"), "{line}");

        let s = tls_settings(dir.path(), now - 30 * day, now - day);
        let text = check_tls(&s, now).await.unwrap_err();
        assert!(text.contains(&format!("expired on {}", at(now - day))), "{text}");

        let s = tls_settings(dir.path(), now + day, now + 30 * day);
        let text = check_tls(&s, now).await.unwrap_err();
        assert!(text.contains(&format!("not valid before {}", at(now + day))), "{text}");

        // GeneralizedTime (from 2050 on) is read too.
        let far = time::macros::datetime!(2051-03-04 05:06:07 UTC);
        let s = tls_settings(dir.path(), now - day, far);
        let Ok(Tlsed::Fine(text)) = check_tls(&s, now).await else { panic!("2051 is fine") };
        assert!(text.ends_with("valid until 2051-03-04 05:06:07 UTC"), "{text}");
    }

    #[test]
    fn broken_der_is_no_validity_never_a_panic() {
        assert_eq!(der_validity(&[]), None);
        assert_eq!(der_validity(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(der_validity(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        assert_eq!(asn1_time(0x17, b"991332000000Z"), None);
        assert_eq!(asn1_time(0x17, b"2501010000Z"), None);
    }

    #[test]
    fn urls_lose_their_password_only() {
        assert_eq!(redact_url("postgres://u:p@h/db"), "postgres://u:<redacted>@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:///var/lib/x.db"), "sqlite:///var/lib/x.db");
        assert_eq!(shown("GOSTINT_DBURL", "postgres://h/db?password=p"), "postgres://h/db?<redacted>");
    }
}
