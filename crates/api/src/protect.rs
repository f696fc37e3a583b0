//! The node protects itself at the HTTP edge (docs/design.md §11): a cap on requests served at once
//! (503 at once beyond it, never an unbounded queue) and a declared `Content-Length` above
//! the body cap refused with 413 before the body is read.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::Router;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The limits [`protect`] applies.
#[derive(Clone)]
pub struct Protection {
    /// Requests served at once; beyond it, 503 `server busy`.
    pub max_requests: usize,
    /// A declared `Content-Length` above this is a 413 before anything is read.
    pub max_body: usize,
    /// Counts the requests refused for the cap.
    pub metrics: gostint_metrics::Metrics,
}

/// Wraps the whole router (the outermost layer, so a refused request costs no handler work).
pub fn protect(router: Router, p: Protection) -> Router {
    let permits = Arc::new(Semaphore::new(p.max_requests.max(1)));
    let max_body = p.max_body;
    let metrics = p.metrics;
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let permits = permits.clone();
        let metrics = metrics.clone();
        async move {
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > max_body as u64) {
                return ApiError::TooLarge.into_response();
            }
            let Ok(_permit) = permits.try_acquire_owned() else {
                metrics.requests_refused.inc();
                return ApiError::Unavailable("server busy: too many requests at once, retry shortly").into_response();
            };
            next.run(req).await
        }
    }))
}

/// The `method` label of the request histogram: a known method, else `OTHER` (invented
/// methods must not grow `/metrics` without bound).
pub(crate) fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// The `Location` for a path without its trailing slash: never off-site. A path starting
/// with `//` or `/\` would be read by a browser as `//host/...` (another site), so the run
/// of leading slashes and backslashes collapses to one `/`.
pub(crate) fn same_site_location(trimmed: &str, query: Option<&str>) -> String {
    let rest = trimmed.trim_start_matches(['/', '\\']);
    match query {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_site() {
        assert_eq!(same_site_location("//evil.example", None), "/evil.example");
        assert_eq!(same_site_location("/\\evil.example", None), "/evil.example");
        assert_eq!(same_site_location("/\\/\\evil.example/x", Some("a=1")), "/evil.example/x?a=1");
        assert_eq!(same_site_location("/v1/api/job", Some("skip=10")), "/v1/api/job?skip=10");
        assert_eq!(same_site_location("/", None), "/");
    }

    #[test]
    fn invented_methods_share_one_label() {
        let m = axum::http::Method::from_bytes(b"FROBNICATE").unwrap();
        assert_eq!(method_label(&m), "OTHER");
        assert_eq!(method_label(&axum::http::Method::GET), "GET");
    }
}
