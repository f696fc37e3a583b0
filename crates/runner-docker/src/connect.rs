//! Where the engine is and how to talk to it, read the way the Docker CLI reads it.

use std::path::PathBuf;

use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use gostint_core::{RuntimeError, RuntimeErrorKind};

use crate::error::{is_transport, message_of, transport_detail};

/// The engine address used when `DOCKER_HOST` is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How to reach the Docker engine. [`DockerConnection::from_env`] reads the variables the
/// Docker CLI honours; fields left `None` take the CLI's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerConnection {
    /// `unix:///path`, `tcp://host:port`, `http://…` or `https://…` (`DOCKER_HOST`);
    /// default `unix:///var/run/docker.sock`.
    pub host: Option<String>,
    /// Use TLS and verify the engine with `ca.pem` (`DOCKER_TLS_VERIFY` non-empty). An
    /// `https://` host always uses TLS.
    pub tls_verify: bool,
    /// Directory holding `ca.pem`, `cert.pem`, `key.pem` (`DOCKER_CERT_PATH`, else
    /// `$HOME/.docker`).
    pub cert_path: Option<PathBuf>,
    /// Pins the API version, e.g. `1.41` (`DOCKER_API_VERSION`); unset → negotiated with
    /// the engine at connect time.
    pub api_version: Option<String>,
}

impl DockerConnection {
    /// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` and
    /// `DOCKER_API_VERSION`; empty values count as unset.
    // These are Docker's own variables, not gostint settings, so they are read here rather
    // than in gostint-config.
    #[allow(clippy::disallowed_methods)]
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            host: var("DOCKER_HOST"),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            cert_path: var("DOCKER_CERT_PATH")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker"))),
            api_version: var("DOCKER_API_VERSION"),
        }
    }

    /// The engine address in use.
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or(DEFAULT_HOST)
    }

    /// Builds the client (no I/O yet) and whether the version must still be negotiated.
    pub(crate) fn client(&self, timeout_secs: u64) -> Result<(Docker, bool), RuntimeError> {
        let (version, negotiate) = match &self.api_version {
            Some(v) => (parse_version(v)?, false),
            None => (*API_DEFAULT_VERSION, true),
        };
        let host = self.host();
        let setup = |e: bollard::errors::Error| unreachable_at(host, &e);
        let tls = host.starts_with("https://")
            || (self.tls_verify && (host.starts_with("tcp://") || host.starts_with("http://")));
        let docker = if host.starts_with("unix://") {
            Docker::connect_with_unix(host, timeout_secs, &version).map_err(setup)?
        } else if tls {
            // bollard asks rustls for the process-wide crypto provider, which panics when
            // the build enables several and none was chosen: choose ring if nobody did.
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
            let dir = self.cert_path.clone().unwrap_or_else(|| PathBuf::from(".docker"));
            Docker::connect_with_ssl(
                host,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                timeout_secs,
                &version,
            )
            .map_err(setup)?
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(host, timeout_secs, &version).map_err(setup)?
        } else {
            return Err(RuntimeError::new(
                RuntimeErrorKind::Other,
                format!("unsupported DOCKER_HOST {host:?}: expected unix://, tcp://, http:// or https://"),
            ));
        };
        Ok((docker, negotiate))
    }
}

/// A failure to set up or reach the engine at `host`, naming it.
pub(crate) fn unreachable_at(host: &str, e: &bollard::errors::Error) -> RuntimeError {
    if is_transport(e) {
        RuntimeError::new(
            RuntimeErrorKind::Transient,
            format!("cannot reach the Docker engine at {host}: {}", transport_detail(e)),
        )
    } else {
        RuntimeError::new(RuntimeErrorKind::Other, format!("cannot use the Docker engine at {host}: {}", message_of(e)))
    }
}

/// `1.41` (a leading `v` is tolerated) → a client version.
fn parse_version(text: &str) -> Result<ClientVersion, RuntimeError> {
    let bad = || RuntimeError::new(RuntimeErrorKind::Other, format!("invalid DOCKER_API_VERSION {text:?}"));
    let (major, minor) = text.trim().trim_start_matches('v').split_once('.').ok_or_else(bad)?;
    Ok(ClientVersion {
        major_version: major.parse().map_err(|_| bad())?,
        minor_version: minor.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_parse() {
        let v = parse_version("1.41").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        let v = parse_version("v1.24").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 24));
        for bad in ["", "1", "one.two", "1.x"] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unsupported_hosts_are_refused_before_any_io() {
        let c = DockerConnection { host: Some("ssh://box".into()), ..Default::default() };
        let e = c.client(5).unwrap_err();
        assert_eq!(e.kind, RuntimeErrorKind::Other);
        assert!(e.message.contains("ssh://box"), "{}", e.message);
    }

    #[test]
    fn the_default_host_is_the_local_socket() {
        assert_eq!(DockerConnection::default().host(), "unix:///var/run/docker.sock");
    }
}
