//! The transport: configuration, the HTTP client, one request with its retry policy, and
//! the mapping of every failure onto a token-free [`VaultError`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use gostint_core::{VaultError, VaultErrorKind};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::tls;

/// Vault's own default client timeout (`VAULT_CLIENT_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Attempts for a retried read (the first one included).
const READ_ATTEMPTS: u32 = 3;
/// Pause before the second attempt; doubled before each further one.
const READ_BACKOFF: Duration = Duration::from_millis(100);
/// Error messages are for logs and job output: a proxy's HTML page must not flood them.
const MAX_MESSAGE_CHARS: usize = 1024;
/// Secrets shorter than this are not redacted from messages: replacing a one-letter
/// "token" everywhere would garble the text and protect nothing real.
const MIN_REDACT_LEN: usize = 6;

const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-vault-token");
const NAMESPACE_HEADER: HeaderName = HeaderName::from_static("x-vault-namespace");
const WRAP_TTL_HEADER: HeaderName = HeaderName::from_static("x-vault-wrap-ttl");

/// How to reach Vault/OpenBao: the usual `VAULT_*` client settings.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Base address, e.g. `https://vault.example:8200` (`VAULT_ADDR`); a path prefix is kept.
    pub addr: String,
    /// A PEM file of CA certificates (`VAULT_CACERT`). When set, only these CAs are trusted,
    /// as with Vault's own client.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate (`VAULT_SKIP_VERIFY`). For development only.
    pub skip_verify: bool,
    /// Sent as `X-Vault-Namespace` on every call when set (`VAULT_NAMESPACE`).
    pub namespace: Option<String>,
    /// Limit for one HTTP exchange, connect to last byte (`VAULT_CLIENT_TIMEOUT`).
    pub timeout: Duration,
    /// A directory of PEM CA files (`VAULT_CAPATH`). As with Vault's own client,
    /// `VAULT_CACERT` wins when both are set; either one replaces the system CAs.
    pub ca_path: Option<PathBuf>,
    /// A PEM client certificate chain for mutual TLS (`VAULT_CLIENT_CERT`); needs
    /// [`client_key`](Self::client_key).
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of [`client_cert`](Self::client_cert) (`VAULT_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// The name Vault's certificate must be valid for, instead of `addr`'s host
    /// (`VAULT_TLS_SERVER_NAME`). Limit: reqwest cannot send a different SNI, so the TLS
    /// handshake still names `addr`'s host (none for an IP address); only the certificate
    /// check uses this name.
    pub tls_server_name: Option<String>,
}

impl VaultConfig {
    /// A configuration for `addr` with system CAs, verification on, no namespace and
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            ca_cert: None,
            skip_verify: false,
            namespace: None,
            timeout: DEFAULT_TIMEOUT,
            ca_path: None,
            client_cert: None,
            client_key: None,
            tls_server_name: None,
        }
    }
}

/// Why a [`VaultClient`] could not be built (gostint reports it as
/// `Failed create vault client api: <e>`).
#[derive(Debug, thiserror::Error)]
pub enum VaultBuildError {
    /// `addr` is not an `http://` or `https://` URL with a host.
    #[error("invalid vault address {addr:?}: {reason}")]
    InvalidAddr {
        /// The address as configured.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file could not be read.
    #[error("cannot read vault CA certificate file {}", path.display())]
    CaCertRead {
        /// The configured file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no certificate, or one that cannot be parsed.
    #[error("vault CA certificate file {} holds no usable PEM certificate{}", path.display(), reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    CaCertInvalid {
        /// The configured file (or the file of `VAULT_CAPATH` at fault).
        path: PathBuf,
        /// The parse failure, if there was one (an empty file has none).
        reason: Option<String>,
    },
    /// The `VAULT_CAPATH` directory cannot be listed, or holds no CA file.
    #[error("vault CA directory {} (VAULT_CAPATH): {reason}", path.display())]
    CaPath {
        /// The configured directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Only one of `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY` is set.
    #[error("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together")]
    ClientCertIncomplete,
    /// The client certificate or key file cannot be read or holds no usable PEM.
    #[error("vault client {what} file {}: {reason}", path.display())]
    ClientCert {
        /// `certificate` or `key`.
        what: &'static str,
        /// The configured file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `VAULT_TLS_SERVER_NAME` is not a DNS name or an IP address.
    #[error("invalid VAULT_TLS_SERVER_NAME {0:?}")]
    InvalidServerName(String),
    /// The TLS configuration was refused (e.g. a key that does not match its certificate).
    #[error("cannot set up TLS for vault: {0}")]
    Tls(String),
    /// The namespace cannot be sent as an HTTP header value.
    #[error("invalid vault namespace {0:?}")]
    InvalidNamespace(String),
    /// The HTTP client itself could not be built (TLS set-up).
    #[error("cannot build the vault HTTP client")]
    Http(#[source] reqwest::Error),
}

/// A Vault/OpenBao HTTP client. It holds no token: every call takes the token it acts
/// with, so one client serves every job and requestor. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    /// HTTPS without a client certificate: a handshake the server ends gets a hint.
    hint_client_cert: bool,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient").field("addr", &self.base.as_str()).finish_non_exhaustive()
    }
}

/// Whether a call may be sent again after a transport failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// A read that changes nothing when repeated: retried on transport errors and on
    /// 502/503/504, [`READ_ATTEMPTS`] in all.
    Read,
    /// Sent once: unwrap and secret-id redemption are single use, a login or a token
    /// creation would be repeated.
    Never,
}

/// One Vault call.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    /// The API path below `/v1/`, e.g. `auth/token/lookup-self`.
    pub(crate) path: &'a str,
    pub(crate) token: Option<&'a str>,
    pub(crate) body: Option<Value>,
    pub(crate) wrap_ttl: Option<&'a str>,
    pub(crate) retry: Retry,
    /// Whether a 404 is an answer (`Reply::NotFound`) rather than an error.
    pub(crate) not_found_ok: bool,
    /// Further secrets in the request (e.g. a secret-id) to keep out of error messages.
    pub(crate) also_redact: &'a [&'a str],
}

impl<'a> Call<'a> {
    pub(crate) fn new(method: Method, path: &'a str) -> Self {
        Self {
            method,
            path,
            token: None,
            body: None,
            wrap_ttl: None,
            retry: Retry::Never,
            not_found_ok: false,
            also_redact: &[],
        }
    }

    pub(crate) fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn read(mut self) -> Self {
        self.retry = Retry::Read;
        self
    }

    pub(crate) fn not_found_ok(mut self) -> Self {
        self.not_found_ok = true;
        self
    }

    pub(crate) fn wrap_ttl(mut self, ttl: &'a str) -> Self {
        self.wrap_ttl = Some(ttl);
        self
    }

    pub(crate) fn also_redact(mut self, secrets: &'a [&'a str]) -> Self {
        self.also_redact = secrets;
        self
    }

    /// `PUT /v1/auth/token/lookup-self`-style label for messages: method and path, never
    /// the host or a query.
    pub(crate) fn label(&self) -> String {
        format!("{} /v1/{}", self.method, self.path)
    }
}

/// A successful exchange.
#[derive(Debug)]
pub(crate) enum Reply {
    /// 2xx: the decoded body, `Value::Null` when empty (204).
    Body(Value),
    /// 404, when the call allowed it.
    NotFound,
}

impl VaultClient {
    /// Builds a client for `config`.
    ///
    /// # Errors
    /// A malformed address or namespace, or an unreadable or empty CA file.
    pub fn new(config: &VaultConfig) -> Result<Self, VaultBuildError> {
        let base = parse_addr(&config.addr)?;

        let mut headers = HeaderMap::new();
        if let Some(ns) = config.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            let value = HeaderValue::from_str(ns).map_err(|_| VaultBuildError::InvalidNamespace(ns.to_owned()))?;
            headers.insert(NAMESPACE_HEADER, value);
        }

        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .default_headers(headers)
            .user_agent(concat!("gostint/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // Never follow a redirect: X-Vault-Token is a custom header that reqwest would
            // carry to whatever host the redirect names.
            .redirect(reqwest::redirect::Policy::none());

        builder = tls::configure(builder, config)?;
        let http = builder.build().map_err(VaultBuildError::Http)?;
        let hint_client_cert = base.scheme() == "https" && config.client_cert.is_none() && !config.skip_verify;
        Ok(Self { http, base, timeout: config.timeout, hint_client_cert })
    }

    /// The Vault address this client talks to (as normalised: no trailing slash).
    pub fn addr(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `<addr>/v1/<path>`, each segment percent-encoded as needed.
    fn url(&self, label: &str, path: &str) -> Result<Url, VaultError> {
        let segments = api_segments(path)
            .ok_or_else(|| VaultError::new(VaultErrorKind::Invalid, format!("{label}: not a valid vault API path")))?;
        let mut url = self.base.clone();
        {
            let mut parts = url.path_segments_mut().map_err(|()| {
                VaultError::new(VaultErrorKind::Invalid, format!("{label}: vault address cannot take a path"))
            })?;
            parts.pop_if_empty().push("v1").extend(segments);
        }
        Ok(url)
    }

    /// Sends one call (retried as its [`Retry`] allows) and maps the answer.
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Reply, VaultError> {
        let label = call.label();
        let redactor = Redactor { token: call.token, others: call.also_redact };
        let url = self.url(&label, call.path)?;

        let mut headers = HeaderMap::new();
        if let Some(token) = call.token {
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                VaultError::new(VaultErrorKind::Denied, format!("{label}: the token is not a valid header value"))
            })?;
            value.set_sensitive(true);
            headers.insert(TOKEN_HEADER, value);
        }
        if let Some(ttl) = call.wrap_ttl {
            let value = HeaderValue::from_str(ttl)
                .map_err(|_| VaultError::new(VaultErrorKind::Invalid, format!("{label}: invalid wrap TTL {ttl:?}")))?;
            headers.insert(WRAP_TTL_HEADER, value);
        }

        let attempts = match call.retry {
            Retry::Read => READ_ATTEMPTS,
            Retry::Never => 1,
        };
        let mut backoff = READ_BACKOFF;
        let mut attempt = 1;
        loop {
            let error = match self.exchange(&call, &url, &headers).await {
                Ok((status, body)) => match self.answer(&call, &label, &redactor, status, &body) {
                    Ok(reply) => return Ok(reply),
                    Err(error) if is_retryable_status(status) => error,
                    Err(error) => return Err(error),
                },
                Err(error) if error.is_timeout() => {
                    // A slow Vault stays slow: another full timeout would only delay the verdict.
                    return Err(self.transport_error(&label, &redactor, &error));
                }
                Err(error) => self.transport_error(&label, &redactor, &error),
            };
            if attempt >= attempts {
                return Err(error);
            }
            tracing::debug!(call = %label, attempt, error = %error.message, "vault read failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// One HTTP exchange: the status and the whole body.
    async fn exchange(
        &self,
        call: &Call<'_>,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<(StatusCode, bytes::Bytes), reqwest::Error> {
        let mut request = self.http.request(call.method.clone(), url.clone()).headers(headers.clone());
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        tracing::debug!(call = %call.label(), status = status.as_u16(), "vault answered");
        Ok((status, body))
    }

    /// Maps a complete HTTP answer onto a reply or an error.
    fn answer(
        &self,
        call: &Call<'_>,
        label: &str,
        redactor: &Redactor<'_>,
        status: StatusCode,
        body: &[u8],
    ) -> Result<Reply, VaultError> {
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Reply::Body(Value::Null));
            }
            return serde_json::from_slice(body).map(Reply::Body).map_err(|e| {
                VaultError::new(VaultErrorKind::Invalid, format!("{label}: vault's answer is not JSON: {e}"))
            });
        }
        if status == StatusCode::NOT_FOUND && call.not_found_ok {
            return Ok(Reply::NotFound);
        }
        let kind = if status.is_client_error() {
            VaultErrorKind::Denied
        } else if status.is_server_error() {
            VaultErrorKind::Unavailable
        } else {
            // 1xx/3xx: redirects are not followed (see `new`), nothing else is expected.
            VaultErrorKind::Invalid
        };
        let errors = vault_errors(body);
        let message =
            if errors.is_empty() { format!("{label}: {status}") } else { format!("{label}: {status}: {errors}") };
        Err(VaultError::new(kind, redactor.clean(message)))
    }

    fn transport_error(&self, label: &str, redactor: &Redactor<'_>, error: &reqwest::Error) -> VaultError {
        let message = if error.is_timeout() {
            format!("{label}: no answer from vault within {:?}", self.timeout)
        } else {
            let chain = error_chain(error);
            // A Vault that requires client certificates ends the handshake with an alert
            // or, as often with TLS 1.3, just closes the connection.
            let refused = ["CertificateRequired", "connection closed", "channel closed", "connection reset"];
            if self.hint_client_cert && refused.iter().any(|r| chain.contains(r)) {
                format!(
                    "{label}: {chain} (if vault requires a client certificate: set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)"
                )
            } else {
                format!("{label}: {chain}")
            }
        };
        VaultError::new(VaultErrorKind::Unavailable, redactor.clean(message))
    }
}

fn parse_addr(addr: &str) -> Result<Url, VaultBuildError> {
    let invalid = |reason: &str| VaultBuildError::InvalidAddr { addr: addr.to_owned(), reason: reason.to_owned() };
    let url = Url::parse(addr.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the address are not allowed"));
    }
    Ok(url)
}

/// The segments of an API path, or `None` if it is empty or has an empty, `.` or `..`
/// segment (a path from a job must not climb out of `/v1/`). A leading `/` is tolerated.
pub(crate) fn api_segments(path: &str) -> Option<Vec<&str>> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let bad = |s: &&str| s.is_empty() || *s == "." || *s == ".." || s.chars().any(char::is_control);
    if segments.iter().any(bad) {
        return None;
    }
    Some(segments)
}

/// Whether a name (AppRole, transit key) can be one path segment.
pub(crate) fn is_segment(name: &str) -> bool {
    !name.contains('/') && api_segments(name).is_some()
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
}

/// Vault's `errors` array, joined; empty if the body is not such JSON.
fn vault_errors(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    value
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| match e {
                    Value::String(s) => one_line(s),
                    other => other.to_string(),
                })
                .filter(|e| !e.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// One error text on one line. Vault and OpenBao often send Go's multierror format,
/// `"1 error occurred:\n\t* permission denied\n\n"`: that becomes its items, `; `-joined.
fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return String::new();
    };
    let is_multierror_head = first
        .strip_suffix("error occurred:")
        .or_else(|| first.strip_suffix("errors occurred:"))
        .is_some_and(|count| count.trim().chars().all(|c| c.is_ascii_digit()) && !count.trim().is_empty());
    if is_multierror_head {
        lines.map(|l| l.strip_prefix("* ").unwrap_or(l)).collect::<Vec<_>>().join("; ")
    } else {
        std::iter::once(first).chain(lines).collect::<Vec<_>>().join(" ")
    }
}

/// The error and its sources, without the URL reqwest puts in its own text.
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    // reqwest's top-level text names the URL; say what kind of failure it was instead.
    parts.push(if error.is_connect() {
        "cannot connect to vault".to_owned()
    } else if error.is_body() || error.is_decode() {
        "error reading vault's answer".to_owned()
    } else {
        "error sending request to vault".to_owned()
    });
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Keeps the secrets of one call out of its error messages, and bounds their length.
struct Redactor<'a> {
    token: Option<&'a str>,
    others: &'a [&'a str],
}

impl Redactor<'_> {
    fn clean(&self, mut message: String) -> String {
        for secret in self.token.into_iter().chain(self.others.iter().copied()) {
            if secret.len() >= MIN_REDACT_LEN {
                message = message.replace(secret, "<redacted>");
            }
        }
        if message.chars().count() > MAX_MESSAGE_CHARS {
            message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_may_not_climb_out_of_v1() {
        assert_eq!(api_segments("secret/my-secret"), Some(vec!["secret", "my-secret"]));
        assert_eq!(api_segments("/cubbyhole/job"), Some(vec!["cubbyhole", "job"]));
        assert_eq!(api_segments(""), None);
        assert_eq!(api_segments("secret//x"), None);
        assert_eq!(api_segments("secret/../sys/raw"), None);
        assert_eq!(api_segments("./x"), None);
        assert_eq!(api_segments("secret/x/"), None);
        assert!(is_segment("gostint-role"));
        assert!(!is_segment("a/b"));
    }

    #[test]
    fn urls_keep_a_path_prefix_and_encode_odd_characters() {
        let client = VaultClient::new(&VaultConfig::new("http://127.0.0.1:8200/vault/")).unwrap();
        let url = client.url("x", "secret/a?b#c").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8200/vault/v1/secret/a%3Fb%23c");
        let client = VaultClient::new(&VaultConfig::new("http://127.0.0.1:8200")).unwrap();
        assert_eq!(
            client.url("x", "auth/token/lookup-self").unwrap().as_str(),
            "http://127.0.0.1:8200/v1/auth/token/lookup-self"
        );
        assert_eq!(client.addr(), "http://127.0.0.1:8200");
    }

    #[test]
    fn bad_addresses_are_refused() {
        for addr in ["", "127.0.0.1:8200", "ftp://x", "http://u:p@x:8200", "http://x:8200/?a=b"] {
            assert!(
                matches!(VaultClient::new(&VaultConfig::new(addr)), Err(VaultBuildError::InvalidAddr { .. })),
                "{addr}"
            );
        }
    }

    #[test]
    fn vault_errors_are_joined() {
        assert_eq!(vault_errors(br#"{"errors":["permission denied","x"]}"#), "permission denied; x");
        assert_eq!(vault_errors(br#"{"errors":[]}"#), "");
        assert_eq!(vault_errors(br#"{"errors":["1 error occurred:\n\t* invalid accessor\n\n"]}"#), "invalid accessor");
        assert_eq!(
            vault_errors(br#"{"errors":["2 errors occurred:\n\t* a\n\t* b\n\n", "line one\nline two"]}"#),
            "a; b; line one line two"
        );
        assert_eq!(vault_errors(b"<html>bad gateway</html>"), "");
    }

    #[test]
    fn messages_lose_secrets_and_stay_short() {
        let r = Redactor { token: Some("s.abcdef123"), others: &["secret-id-1"] };
        assert_eq!(r.clean("bad s.abcdef123 and secret-id-1".into()), "bad <redacted> and <redacted>");
        let short = Redactor { token: Some("x"), others: &[] };
        assert_eq!(short.clean("x marks".into()), "x marks");
        assert!(r.clean("y".repeat(5000)).chars().count() <= MAX_MESSAGE_CHARS + 1);
    }
}
