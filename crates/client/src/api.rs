//! gostint's v1 API (docs/design.md §2) as the client uses it: one [`Gostint`] per process,
//! verified TLS, `X-Auth-Token` on every call, bodies kept as they came (`--json` prints
//! them unchanged).

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Limit for one exchange with gostint.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Error bodies are shown to the user, but a proxy's HTML page must not flood the terminal.
const MAX_BODY_SHOWN: usize = 2000;

/// Why the HTTP client for gostint could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `--url` is not an http(s) URL.
    #[error("--url: {0:?} is not an http:// or https:// URL")]
    Url(String),
    /// `--ca-cert` cannot be read.
    #[error("--ca-cert: cannot read {path}")]
    CaRead {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--ca-cert` holds no PEM certificate.
    #[error("--ca-cert: {0} holds no PEM certificate")]
    CaInvalid(String),
    /// reqwest could not set up TLS.
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// A failed call to gostint.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer: connection, TLS or timeout.
    #[error("{call}: no answer from gostint")]
    Transport {
        /// `GET /v1/api/job/…`.
        call: String,
        /// The failure.
        #[source]
        source: reqwest::Error,
    },
    /// An answer other than 200; `body` is gostint's `{"status","error"}` (or whatever came).
    #[error("{call}: gostint answered {status}: {body}")]
    Status {
        /// `POST /v1/api/job`.
        call: String,
        /// The HTTP status.
        status: StatusCode,
        /// The body, trimmed and shortened.
        body: String,
    },
    /// A 200 whose body is not the JSON expected.
    #[error("{call}: gostint's answer is not JSON: {body}")]
    Decode {
        /// The call.
        call: String,
        /// The body, shortened.
        body: String,
    },
}

impl ApiError {
    /// Whether asking again may help: no answer, or 502/503/504. Only used for reads.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } => true,
            ApiError::Status { status, .. } => matches!(
                *status,
                StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
            ),
            ApiError::Decode { .. } => false,
        }
    }

    /// The HTTP status, if gostint answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A 200 answer: parsed, and as it came.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The parsed body.
    pub json: Value,
    /// The body exactly as gostint sent it.
    pub raw: String,
}

/// gostint's API at one base URL.
#[derive(Debug, Clone)]
pub struct Gostint {
    http: reqwest::Client,
    base: String,
}

impl Gostint {
    /// A client for `url` (a path prefix is kept). TLS is verified against the system roots,
    /// or only against `ca_cert` when given; `insecure` turns verification off. Redirects are
    /// not followed, so `X-Auth-Token` never travels to another host.
    ///
    /// # Errors
    /// See [`BuildError`].
    pub fn new(url: &str, ca_cert: Option<&Path>, insecure: bool) -> Result<Self, BuildError> {
        let parsed = reqwest::Url::parse(url.trim()).map_err(|_| BuildError::Url(url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
            return Err(BuildError::Url(url.to_string()));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("gostint-client/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_cert {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|source| BuildError::CaRead { path: shown.clone(), source })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| BuildError::CaInvalid(shown.clone()))?;
            if certs.is_empty() {
                return Err(BuildError::CaInvalid(shown));
            }
            if insecure {
                builder = builder.tls_built_in_root_certs(false);
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            } else {
                // The bundle's certificates as roots, and each one pinned: a server
                // presenting exactly one of them (a self-signed, CA:TRUE certificate
                // from plain `openssl req -x509`) is trusted after its name and dates.
                use rustls::pki_types::pem::PemObject;
                let ders = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| BuildError::CaInvalid(shown.clone()))?;
                let verifier =
                    crate::pin::PinningVerifier::new(ders).map_err(|_| BuildError::CaInvalid(shown.clone()))?;
                builder = builder.use_preconfigured_tls(verifier.client_config());
            }
        }
        if insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(BuildError::Http)?;
        Ok(Self { http, base: parsed.as_str().trim_end_matches('/').to_string() })
    }

    /// A request to `path` under the base URL with `X-Auth-Token` (for the stream).
    pub(crate) fn request(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("X-Auth-Token", token)
    }

    /// `POST /v1/api/job` with `body` (sent once: a retry could queue the job twice).
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn submit(&self, token: &str, body: &Value) -> Result<Reply, ApiError> {
        self.call(Method::POST, "/v1/api/job", token, Some(body.to_string())).await
    }

    /// `GET /v1/api/job/{id}`: the job view.
    ///
    /// # Errors
    /// See [`ApiError`]; 404 when the job is gone or not the caller's.
    pub async fn job(&self, token: &str, id: &str) -> Result<Reply, ApiError> {
        self.call(Method::GET, &format!("/v1/api/job/{id}"), token, None).await
    }

    /// `GET /v1/api/job/{id}?wait=<wait>`: the job view, answered when it is final or after
    /// `wait` (e.g. `30s`); an older gostint ignores `wait` and answers at once.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn job_wait(&self, token: &str, id: &str, wait: &str) -> Result<Reply, ApiError> {
        self.call(Method::GET, &format!("/v1/api/job/{id}?wait={wait}"), token, None).await
    }

    /// `GET /v1/api/job?skip=N`: a page of the caller's jobs.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn list(&self, token: &str, skip: u64) -> Result<Reply, ApiError> {
        self.call(Method::GET, &format!("/v1/api/job?skip={skip}"), token, None).await
    }

    /// `POST /v1/api/job/kill/{id}`.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn kill(&self, token: &str, id: &str) -> Result<Reply, ApiError> {
        self.call(Method::POST, &format!("/v1/api/job/kill/{id}"), token, None).await
    }

    /// `DELETE /v1/api/job/{id}`.
    ///
    /// # Errors
    /// See [`ApiError`]; 400 while the job is running or stopping.
    pub async fn delete(&self, token: &str, id: &str) -> Result<Reply, ApiError> {
        self.call(Method::DELETE, &format!("/v1/api/job/{id}"), token, None).await
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<String>) -> Result<Reply, ApiError> {
        let call = format!("{method} {path}");
        let mut token_value = reqwest::header::HeaderValue::from_str(token).map_err(|_| ApiError::Status {
            call: call.clone(),
            status: StatusCode::BAD_REQUEST,
            body: "the API token is not a valid header value".into(),
        })?;
        token_value.set_sensitive(true);
        let mut request = self.http.request(method, format!("{}{path}", self.base)).header("X-Auth-Token", token_value);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let transport = |source| ApiError::Transport { call: call.clone(), source };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let raw = response.text().await.map_err(transport)?;
        if status != StatusCode::OK {
            return Err(ApiError::Status { call, status, body: shorten(raw.trim()) });
        }
        match serde_json::from_str(&raw) {
            Ok(json) => Ok(Reply { json, raw }),
            Err(_) => Err(ApiError::Decode { call, body: shorten(raw.trim()) }),
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() > MAX_BODY_SHOWN {
        text.chars().take(MAX_BODY_SHOWN).collect::<String>() + "…"
    } else {
        text.to_string()
    }
}

/// Whether `id` has the shape of a job id (24 hex characters, any case), checked before it
/// goes into a URL path.
pub fn is_job_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_and_keep_a_path_prefix() {
        assert!(Gostint::new("gostint:3232", None, false).is_err());
        assert!(Gostint::new("ftp://x", None, false).is_err());
        let g = Gostint::new("https://h.example:3232/prefix/", None, false).unwrap();
        assert_eq!(g.base, "https://h.example:3232/prefix");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        assert!(matches!(Gostint::new("https://x", Some(&f), false), Err(BuildError::CaInvalid(_))));
        assert!(matches!(
            Gostint::new("https://x", Some(&dir.path().join("missing")), false),
            Err(BuildError::CaRead { .. })
        ));
    }

    #[test]
    fn job_ids_are_24_hex_characters() {
        assert!(is_job_id("65f0c0ffee0123456789ABCD"));
        assert!(!is_job_id("65f0c0ffee0123456789abc"));
        assert!(!is_job_id("../../v1/api/health?k=xx"));
    }

    #[test]
    fn only_silence_and_gateway_errors_are_transient() {
        let e = |status| ApiError::Status { call: "GET /".into(), status, body: String::new() };
        assert!(e(StatusCode::SERVICE_UNAVAILABLE).is_transient());
        assert!(e(StatusCode::BAD_GATEWAY).is_transient());
        assert!(!e(StatusCode::FORBIDDEN).is_transient());
        assert!(!e(StatusCode::NOT_FOUND).is_transient());
        assert!(!ApiError::Decode { call: "x".into(), body: String::new() }.is_transient());
    }
}
