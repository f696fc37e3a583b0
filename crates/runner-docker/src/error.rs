//! Turning bollard failures into [`RuntimeError`]s: the engine's own message, and a kind the
//! worker acts on (never by matching text itself).

use std::error::Error as StdError;

use bollard::errors::Error as BollardError;
use gostint_core::{RuntimeError, RuntimeErrorKind};

/// The HTTP status the engine answered, if it answered at all.
pub(crate) fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether the engine could not be reached or did not answer in time (worth a retry).
pub(crate) fn is_transport(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::RequestTimeoutError
            | BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
            | BollardError::SocketNotFoundError(_)
    )
}

/// The engine's message, or for a transport failure the error chain as text (never a
/// `Debug` dump of bollard's structs).
pub(crate) fn message_of(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { status_code, message } => {
            let message = message.trim();
            if message.is_empty() {
                format!("the Docker engine answered HTTP {status_code}")
            } else {
                message.to_string()
            }
        }
        BollardError::DockerStreamError { error } => error.trim().to_string(),
        BollardError::DockerContainerWaitError { error, code } => {
            if error.is_empty() {
                format!("container exited with {code}")
            } else {
                error.clone()
            }
        }
        BollardError::RequestTimeoutError => "the Docker engine did not answer in time".to_string(),
        e if is_transport(e) => format!("cannot reach the Docker engine: {}", transport_detail(e)),
        e => chain(e),
    }
}

/// Why the engine could not be reached, without the "cannot reach" lead.
pub(crate) fn transport_detail(e: &BollardError) -> String {
    match e {
        BollardError::SocketNotFoundError(path) => format!("no socket at {path}"),
        BollardError::RequestTimeoutError => "no answer in time".to_string(),
        e => chain(e),
    }
}

/// `e` and its sources joined by `: `, skipping a source whose text its parent already shows.
pub(crate) fn chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// Classifies a failed call: a transport failure is `Transient`, a 404 is `on_404`
/// (`NotFound` for container calls, `ImageMissing` for image calls), anything else `Other`.
pub(crate) fn to_runtime(e: &BollardError, on_404: RuntimeErrorKind) -> RuntimeError {
    let kind = match status_of(e) {
        Some(404) => on_404,
        Some(_) => RuntimeErrorKind::Other,
        None if is_transport(e) => RuntimeErrorKind::Transient,
        None => RuntimeErrorKind::Other,
    };
    RuntimeError::new(kind, message_of(e))
}

/// A container call's failure (404 → `NotFound`).
pub(crate) fn container_err(e: BollardError) -> RuntimeError {
    to_runtime(&e, RuntimeErrorKind::NotFound)
}

/// Whether a pull failure reported by the engine is final: the registry said the image does
/// not exist or may not be read, or cannot be reached at all.
///
/// The engine reports every registry failure as HTTP 500 or as an `errorDetail` line whose
/// only structure is text, so this one place has to read it. Anything not recognised here
/// (registry 5xx, timeouts, resets) is retried a few times.
pub(crate) fn is_permanent_pull_failure(message: &str) -> bool {
    const PERMANENT: &[&str] = &[
        "not found",
        "does not exist",
        "denied",
        "unauthorized",
        "forbidden",
        "manifest unknown",
        "name unknown",
        "no matching manifest",
        "invalid reference",
        "repository name must",
        "no such host",
        "connection refused",
        "server gave http response to https client",
        "x509:",
        "certificate",
    ];
    let message = message.to_ascii_lowercase();
    PERMANENT.iter().any(|p| message.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_answers_keep_their_message_and_map_404() {
        let e = BollardError::DockerResponseServerError { status_code: 404, message: "No such container: x".into() };
        let r = container_err(e);
        assert_eq!((r.kind, r.message.as_str()), (RuntimeErrorKind::NotFound, "No such container: x"));

        let e = BollardError::DockerResponseServerError { status_code: 404, message: "No such image: a:b".into() };
        assert_eq!(to_runtime(&e, RuntimeErrorKind::ImageMissing).kind, RuntimeErrorKind::ImageMissing);

        let e = BollardError::DockerResponseServerError { status_code: 409, message: " conflict\n".into() };
        let r = container_err(e);
        assert_eq!((r.kind, r.message.as_str()), (RuntimeErrorKind::Other, "conflict"));

        let e = BollardError::DockerResponseServerError { status_code: 500, message: String::new() };
        assert_eq!(container_err(e).message, "the Docker engine answered HTTP 500");
    }

    #[test]
    fn transport_failures_are_transient() {
        assert_eq!(container_err(BollardError::RequestTimeoutError).kind, RuntimeErrorKind::Transient);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let r = container_err(BollardError::IOError { err: io });
        assert_eq!(r.kind, RuntimeErrorKind::Transient);
        assert_eq!(r.message, "cannot reach the Docker engine: Connection refused");
        let r = container_err(BollardError::SocketNotFoundError("/nope.sock".into()));
        assert_eq!(r.kind, RuntimeErrorKind::Transient);
    }

    #[test]
    fn registry_refusals_are_permanent_and_hiccups_are_not() {
        for m in [
            "pull access denied for x, repository does not exist or may require 'docker login'",
            "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host",
            "manifest for busybox:nope not found: manifest unknown: manifest unknown",
            "dial tcp 127.0.0.1:5000: connect: connection refused",
        ] {
            assert!(is_permanent_pull_failure(m), "{m}");
        }
        for m in [
            "received unexpected HTTP status: 503 Service Unavailable",
            "net/http: TLS handshake timeout",
            "unexpected EOF",
        ] {
            assert!(!is_permanent_pull_failure(m), "{m}");
        }
    }
}
