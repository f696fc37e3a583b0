//! `ApiError`: every failure renders as the v1 contract's `{"status": …, "error": …}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API failure; the variant picks the HTTP status and the `status` text.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `Invalid request.`
    BadRequest(String),
    /// 400 `Invalid job request.`
    BadJob(String),
    /// 403 `Permission Denied.`
    Denied,
    /// 404 `Not Found.`
    NotFound,
    /// 413 `Request Too Large.`
    TooLarge,
    /// 403 `Permission Denied.` with a detail (docs/design.md §10's creation-path check).
    Forbidden(String),
    /// 429 `Too Many Requests.` (docs/design.md §10's tenant quota).
    TooMany(String),
    /// 500 `Internal Error.` with a caller-safe detail (the chain is logged where it happened).
    Internal(String),
    /// 503 `Service Unavailable.`
    Unavailable(&'static str),
    /// 429 `Too Many Requests.`: the caller has this many streams open already.
    TooManyStreams(usize),
}

#[derive(Serialize)]
struct Body<'a> {
    status: &'a str,
    error: &'a str,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            ApiError::TooManyStreams(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests.",
                "too many open streams for this caller (GOSTINT_MAX_STREAMS_PER_CALLER); close one and retry",
            ),
            ApiError::BadRequest(e) => (StatusCode::BAD_REQUEST, "Invalid request.", e),
            ApiError::BadJob(e) => (StatusCode::BAD_REQUEST, "Invalid job request.", e),
            ApiError::Denied => (StatusCode::FORBIDDEN, "Permission Denied.", "permission denied"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "Not Found.", "not found"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Request Too Large.", "request body too large"),
            ApiError::Forbidden(e) => (StatusCode::FORBIDDEN, "Permission Denied.", e),
            ApiError::TooMany(e) => (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests.", e),
            ApiError::Internal(e) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Error.", e),
            ApiError::Unavailable(e) => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable.", e),
        }
    }

    /// A store failure: logged here once, generic for the caller.
    pub fn store(e: gostint_core::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "job store unavailable");
            return ApiError::Unavailable("store unavailable");
        }
        tracing::error!(error = %e, "job store failure");
        ApiError::Internal("job store failure".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status, error) = self.parts();
        let mut body = serde_json::to_vec(&Body { status, error }).expect("two strings always serialise");
        body.push(b'\n');
        (code, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
    }
}

/// A 200 JSON answer with the original's trailing newline.
pub struct JsonLine<T>(pub T);

impl<T: Serialize> IntoResponse for JsonLine<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(mut body) => {
                body.push(b'\n');
                ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
            }
            Err(e) => ApiError::Internal(format!("could not encode the answer: {e}")).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, item 7: an unreachable store is a 503 `store unavailable`, not a 500.
    #[test]
    fn an_unavailable_store_is_a_503_and_a_broken_one_a_500() {
        let e = ApiError::store(gostint_core::StoreError::Unavailable("pool timed out".into()));
        assert_eq!(e.parts().0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.parts().2, "store unavailable");
        let e = ApiError::store(gostint_core::StoreError::Corrupt("bad row".into()));
        assert_eq!(e.parts().0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
