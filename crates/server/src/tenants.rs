//! SIGHUP re-reads `GOSTINT_APPROLES_FILE` (docs/design.md §10): the new tenant set takes effect for
//! the next POST and the next job run. A file that no longer parses keeps the set in force.

use std::path::PathBuf;

use gostint_core::TenantRegistry;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Listens for SIGHUP until `cancel`; without a file there is nothing to re-read.
pub(crate) async fn reload_on_sighup(file: Option<PathBuf>, tenants: TenantRegistry, cancel: CancellationToken) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot install the SIGHUP handler: GOSTINT_APPROLES_FILE is read at start only");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            got = hup.recv() => if got.is_none() { return },
        }
        let Some(path) = &file else {
            info!("SIGHUP: no GOSTINT_APPROLES_FILE to re-read");
            continue;
        };
        match gostint_config::read_approles_file(path) {
            Ok(set) => {
                let names: Vec<&str> = set.all().iter().map(|t| t.name.as_str()).collect();
                info!(tenants = ?names, "SIGHUP: tenants re-read from GOSTINT_APPROLES_FILE");
                tenants.replace(set);
            }
            Err(e) => warn!(error = %e, "SIGHUP: GOSTINT_APPROLES_FILE not usable; keeping the tenants in force"),
        }
    }
}
