//! Vault's TLS settings (`VAULT_CACERT`, `VAULT_CAPATH`, `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`,
//! `VAULT_TLS_SERVER_NAME`, `VAULT_SKIP_VERIFY`) applied to the reqwest client.
//!
//! reqwest sets the trusted CAs, the client identity and "accept anything" itself. It cannot
//! verify the certificate against another name than the URL's host, so with
//! `VAULT_TLS_SERVER_NAME` the client gets a rustls configuration of ours whose verifier is
//! webpki's own, called with that name. Limit: the SNI sent in the handshake is still the
//! URL's host (none for an IP address); a Vault behind an SNI-routing proxy needs an address
//! with the right host name instead.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::client::{VaultBuildError, VaultConfig};

/// Applies `config`'s TLS settings to `builder`.
pub(crate) fn configure(
    mut builder: reqwest::ClientBuilder,
    config: &VaultConfig,
) -> Result<reqwest::ClientBuilder, VaultBuildError> {
    let cas = trusted_cas(config)?;
    let identity = client_identity(config)?;
    let server_name = match config.tls_server_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        None => None,
        Some(name) => Some(
            ServerName::try_from(name.to_owned()).map_err(|_| VaultBuildError::InvalidServerName(name.to_owned()))?,
        ),
    };

    let Some(server_name) = server_name.filter(|_| !config.skip_verify) else {
        // reqwest's own TLS set-up does all of it.
        if let Some(cas) = cas {
            // As VAULT_CACERT/VAULT_CAPATH do for Vault's own client: trust these CAs only.
            builder = builder.tls_built_in_root_certs(false);
            for der in cas {
                let cert = reqwest::Certificate::from_der(&der).map_err(|e| VaultBuildError::Tls(e.to_string()))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        if config.skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(identity) = identity {
            let identity = reqwest::Identity::from_pem(&identity.pem).map_err(|e| VaultBuildError::ClientCert {
                what: "certificate",
                path: config.client_cert.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?;
            builder = builder.identity(identity);
        }
        return Ok(builder);
    };

    let mut roots = RootCertStore::empty();
    match cas {
        Some(cas) => {
            for der in cas {
                roots.add(der).map_err(|e| VaultBuildError::Tls(format!("a CA certificate is unusable: {e}")))?;
            }
        }
        None => {
            for der in rustls_native_certs::load_native_certs().certs {
                // The system store may hold certificates webpki cannot use; reqwest skips them too.
                let _ = roots.add(der);
            }
            if roots.is_empty() {
                return Err(VaultBuildError::Tls("no system CA certificates found (set VAULT_CACERT)".into()));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| VaultBuildError::Tls(e.to_string()))?;
    let verifier = Arc::new(NamedVerifier { inner, name: server_name });
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VaultBuildError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let tls = match identity {
        Some(identity) => tls
            .with_client_auth_cert(identity.chain, identity.key)
            .map_err(|e| VaultBuildError::Tls(format!("client certificate and key: {e}")))?,
        None => tls.with_no_client_auth(),
    };
    Ok(builder.use_preconfigured_tls(tls))
}

/// webpki's verification, for a name of our choosing (`VAULT_TLS_SERVER_NAME`) instead of
/// the URL's host.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _url_host: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The CAs to trust instead of the system's: `VAULT_CACERT`'s file, else every file in
/// `VAULT_CAPATH` (Vault's own precedence); `None` for the system CAs.
fn trusted_cas(config: &VaultConfig) -> Result<Option<Vec<CertificateDer<'static>>>, VaultBuildError> {
    if let Some(path) = &config.ca_cert {
        return read_ca_file(path).map(Some);
    }
    let Some(dir) = &config.ca_path else {
        return Ok(None);
    };
    let ca_path = |reason: String| VaultBuildError::CaPath { path: dir.clone(), reason };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ca_path(format!("cannot list it: {e}")))? {
        let entry = entry.map_err(|e| ca_path(format!("cannot list it: {e}")))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // Symbolic links (c_rehash's `<hash>.0`) count as the files they point at.
        if !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut cas = Vec::new();
    for file in &files {
        cas.extend(read_ca_file(file)?);
    }
    if cas.is_empty() {
        return Err(ca_path("it holds no PEM CA file".into()));
    }
    Ok(Some(cas))
}

/// Every certificate of one PEM file: at least one, or an error naming the file.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, VaultBuildError> {
    let pem = std::fs::read(path).map_err(|source| VaultBuildError::CaCertRead { path: path.to_owned(), source })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| VaultBuildError::CaCertInvalid { path: path.to_owned(), reason: Some(e.to_string()) })?;
    if certs.is_empty() {
        return Err(VaultBuildError::CaCertInvalid { path: path.to_owned(), reason: None });
    }
    Ok(certs)
}

/// A client certificate chain and its key, parsed, and as one PEM for reqwest.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pem: Vec<u8>,
}

fn client_identity(config: &VaultConfig) -> Result<Option<Identity>, VaultBuildError> {
    let (cert_path, key_path) = match (&config.client_cert, &config.client_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err(VaultBuildError::ClientCertIncomplete),
    };
    let bad = |what: &'static str, path: &Path, reason: String| VaultBuildError::ClientCert {
        what,
        path: path.to_owned(),
        reason,
    };
    let cert_pem =
        std::fs::read(cert_path).map_err(|e| bad("certificate", cert_path, format!("cannot read it: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", cert_path, format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad("certificate", cert_path, "holds no PEM certificate".into()));
    }
    let key_pem = std::fs::read(key_path).map_err(|e| bad("key", key_path, format!("cannot read it: {e}")))?;
    // The parse error names what was wrong, never the key's bytes.
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad("key", key_path, format!("holds no usable PEM private key: {e}")))?;
    let mut pem = cert_pem;
    pem.push(b'\n');
    pem.extend_from_slice(&key_pem);
    Ok(Some(Identity { chain, key, pem }))
}
