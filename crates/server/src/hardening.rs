//! The node protects itself (docs/design.md §11): log levels scoped to gostint's own crates,
//! start-up warnings for weakened transport, private SQLite paths, and the count of open
//! client connections.

use std::io;
use std::path::Path;

use gostint_config::{Settings, Tls};
use gostint_metrics::IntGauge;
use tracing::warn;

/// gostint's own crates (log targets are module paths, so each is a prefix).
const OWN_CRATES: &[&str] = &[
    "gostint",
    "gostint_server",
    "gostint_api",
    "gostint_worker",
    "gostint_vault",
    "gostint_runner_docker",
    "gostint_store_sqlite",
    "gostint_store_postgres",
    "gostint_core",
    "gostint_config",
    "gostint_metrics",
];

/// The default `EnvFilter` directives: `info` everywhere; with `GOSTINT_DEBUG`, `debug` for
/// gostint's own crates only. Libraries that log request bodies (bollard logs the
/// container-create body, and with it `VAULT_TOKEN`; hyper, reqwest, sqlx) stay at `info`.
pub fn log_filter(debug: bool) -> String {
    let mut f = String::from("info");
    if debug {
        for c in OWN_CRATES {
            f.push_str(&format!(",{c}=debug"));
        }
    }
    f
}

/// Warns once per start for each weakened transport setting.
pub(crate) fn warn_weak_settings(settings: &Settings) {
    if settings.vault.skip_verify {
        warn!("VAULT_SKIP_VERIFY is on: Vault's TLS certificate is NOT verified (development only)");
    }
    if settings.vault.addr.trim().to_ascii_lowercase().starts_with("http://") {
        warn!(vault_addr = %settings.vault.addr, "VAULT_ADDR is http://: tokens and secrets cross the network unencrypted");
    }
    if settings.tls == Tls::Plain {
        warn!("GOSTINT_PLAIN_HTTP is on: the API is served without TLS (only behind a TLS-terminating proxy)");
    }
}

/// Before SQLite opens `path`: its directory is created 0700 if missing, and the database
/// file is created 0600 if missing, else narrowed to 0600 (SQLite gives its `-wal`/`-shm`
/// files the database file's mode). An existing directory is left as it is (it may be a
/// shared one such as `/tmp`).
pub(crate) fn prepare_sqlite_path(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            for suffix in ["", "-wal", "-shm"] {
                let p = format!("{}{suffix}", path.display());
                match std::fs::metadata(&p) {
                    Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Keeps one connection counted in `gostint_http_connections_open` until dropped.
pub(crate) struct ConnGuard(IntGauge);

impl ConnGuard {
    pub(crate) fn new(g: IntGauge) -> Self {
        g.inc();
        Self(g)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_raises_only_gostint_crates() {
        assert_eq!(log_filter(false), "info");
        let f = log_filter(true);
        assert!(f.starts_with("info,") && f.contains("gostint_worker=debug"), "{f}");
        for lib in ["bollard", "hyper", "reqwest", "sqlx"] {
            assert!(!f.contains(lib), "{f}");
        }
    }

    #[test]
    fn sqlite_paths_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state/sub/gostint.db");
        prepare_sqlite_path(&db).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(db.parent().unwrap()), 0o700);
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare_sqlite_path(&db).unwrap();
        assert_eq!(mode(&db), 0o600, "an existing database is narrowed");
    }
}
