//! Development TLS: a self-signed pair for `localhost` and `127.0.0.1`.

use std::path::Path;

use anyhow::Context;
use tracing::info;

/// Writes a self-signed certificate and key at these paths unless both exist.
pub(crate) fn ensure_self_signed(cert: &Path, key: &Path) -> anyhow::Result<()> {
    if cert.exists() && key.exists() {
        return Ok(());
    }
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).context("generating a self-signed certificate")?;
    for p in [cert, key] {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    std::fs::write(cert, certified.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    write_private(key, certified.key_pair.serialize_pem().as_bytes())?;
    info!(cert = %cert.display(), key = %key.display(), "generated a self-signed TLS pair (development only)");
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data).with_context(|| format!("writing {}", path.display()))
}
