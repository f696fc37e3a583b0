//! gostint's web UI (docs/design.md §8): a single-page app of plain HTML, CSS and JavaScript
//! modules, embedded in the binary with `include_str!` (no Node toolchain, no CDN, no
//! extra crate) and served at `/` when `GOSTINT_UI=1`.
//!
//! The UI is just another API client: it calls the v1 API with relative paths (so it
//! works behind a path-based ingress) and talks to Vault directly from the browser, at
//! the address `v1/api/vault/info` gives it. There are no UI-only API routes here: this
//! crate only answers `GET` for its own files. It depends on axum alone. Start at
//! [`router`]; the app itself starts at `assets/app.js`.
#![warn(missing_docs)]

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One embedded file: its path under `/`, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { path: "", content_type: "text/html; charset=utf-8", body: include_str!("../assets/index.html") },
    Asset { path: "index.html", content_type: "text/html; charset=utf-8", body: include_str!("../assets/index.html") },
    Asset { path: "style.css", content_type: "text/css; charset=utf-8", body: include_str!("../assets/style.css") },
    Asset { path: "app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../assets/app.js") },
    Asset { path: "ansi.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../assets/ansi.js") },
    Asset {
        path: "vault.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/vault.js"),
    },
    Asset { path: "util.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../assets/util.js") },
    Asset { path: "favicon.svg", content_type: "image/svg+xml", body: include_str!("../assets/favicon.svg") },
];

/// The UI as a router with no routes of its own, only a fallback that serves the embedded
/// files (`GET`/`HEAD`), so the API's router can mount it as its fallback: every path no
/// API route takes comes here, and the request metrics label it `/*`.
///
/// `vault_external_addr` goes into the Content-Security-Policy's `connect-src`: the page may
/// talk to gostint itself and to that Vault, nothing else, and runs no inline script.
pub fn router(vault_external_addr: &str) -> Router {
    let csp = content_security_policy(vault_external_addr);
    Router::new().fallback(move |method: Method, uri: Uri| {
        let csp = csp.clone();
        async move { serve(&method, &uri, csp) }
    })
}

fn content_security_policy(vault_external_addr: &str) -> HeaderValue {
    // Only the scheme://host[:port] part, and only characters a header value and a CSP source allow.
    let origin: String = origin_of(vault_external_addr)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '[' | ']'))
        .collect();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {origin}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    );
    HeaderValue::from_str(&policy).expect("filtered to header-safe characters")
}

fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn serve(method: &Method, uri: &Uri, csp: HeaderValue) -> Response {
    let not_found = || {
        (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 page not found\n")
            .into_response()
    };
    let Some(asset) = ASSETS.iter().find(|a| uri.path().strip_prefix('/') == Some(a.path)) else {
        return not_found();
    };
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            // Small files, and a new binary may ship new ones: always revalidate.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_allows_only_gostint_and_the_vault_origin() {
        let csp = content_security_policy("https://vault.example:8200/some/path");
        let csp = csp.to_str().unwrap();
        assert!(csp.contains("connect-src 'self' https://vault.example:8200;"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let odd = content_security_policy("http://x'; script-src *");
        assert!(!odd.to_str().unwrap().contains("script-src *"), "{odd:?}");
    }

    #[test]
    fn every_asset_the_page_references_is_embedded() {
        let index = ASSETS[0].body;
        for name in ["style.css", "app.js", "favicon.svg"] {
            assert!(index.contains(&format!("\"{name}\"")), "index.html must reference {name} relatively");
            assert!(ASSETS.iter().any(|a| a.path == name));
        }
        let app = ASSETS.iter().find(|a| a.path == "app.js").unwrap().body;
        for module in ["./ansi.js", "./vault.js", "./util.js"] {
            assert!(app.contains(module), "app.js imports {module}");
        }
        // Relative paths only: no absolute API or asset path in the page or the app.
        for a in ASSETS {
            assert!(!a.body.contains("\"/v1/"), "{} uses an absolute API path", a.path);
            assert!(!a.body.contains("'/v1/"), "{} uses an absolute API path", a.path);
        }
    }
}
