//! What every scenario gets: the real services, a requestor, a tenant token and the binary.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use gostint_test_support::{services, Requestor, Services};

/// The shared context of a suite run.
pub struct Ctx {
    /// The real services (`scripts/services up`, `.dev/env`).
    pub svc: Services,
    /// Makes tokens and wrapped secret ids as `gostint-client` does.
    pub req: Arc<Requestor>,
    /// A `default`-policy token (the tenant submitting the jobs).
    pub token: String,
    /// The `gostint` binary under test.
    pub bin: PathBuf,
    /// Whether this process runs as root (tmpfs mounts).
    pub root: bool,
}

impl Ctx {
    /// The context, or `None` (after a `skipped:` line) when the services are missing and
    /// `GOSTINT_TEST_REQUIRE` does not name them.
    pub async fn new() -> anyhow::Result<Option<Ctx>> {
        let Some(svc) = services() else { return Ok(None) };
        let bin = gostint_bin()?;
        let req = Arc::new(Requestor::new(&svc));
        let token = req.token(None, &["default"]).await;
        Ok(Some(Ctx { svc, req, token, bin, root: is_root() }))
    }
}

/// `GOSTINT_BIN`, else `target/debug/gostint` of this workspace.
pub fn gostint_bin() -> anyhow::Result<PathBuf> {
    let bin = match std::env::var_os("GOSTINT_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/gostint"),
    };
    let bin = bin.canonicalize().with_context(|| {
        format!(
            "the gostint binary {} is missing (cargo build -p gostint-server --bin gostint, or set GOSTINT_BIN)",
            bin.display()
        )
    })?;
    Ok(bin)
}

/// Effective uid 0, read from /proc (no libc call).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}
