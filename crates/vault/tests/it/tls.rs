//! VAULT_CACERT and VAULT_SKIP_VERIFY against a fake Vault speaking TLS.

use std::io::Write;
use std::sync::Arc;

use gostint_core::{JobVault, VaultErrorKind};
use gostint_vault::{VaultBuildError, VaultClient, VaultConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::{Behaviour, Fake};

const LOOKUP_OK: &str = r#"{"data":{"accessor":"acc-1","policies":["default"]}}"#;

/// A CA (PEM) and a TLS acceptor whose certificate for 127.0.0.1 it signed.
fn ca_and_acceptor() -> (String, tokio_rustls::TlsAcceptor) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    (ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn pem_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[tokio::test]
async fn a_vault_cacert_makes_a_privately_signed_vault_trusted() {
    let (ca_pem, acceptor) = ca_and_acceptor();
    let fake = Fake::start_with(Behaviour::answer(200, LOOKUP_OK), Some(acceptor)).await;
    let ca = pem_file(&ca_pem);
    let mut config = VaultConfig::new(&fake.addr);
    config.ca_cert = Some(ca.path().to_owned());

    let info = VaultClient::new(&config).unwrap().lookup_self("s.token-abc").await.unwrap();

    assert_eq!(info.accessor, "acc-1");
}

#[tokio::test]
async fn without_the_ca_the_vault_is_untrusted_and_unavailable() {
    let (_, acceptor) = ca_and_acceptor();
    let fake = Fake::start_with(Behaviour::answer(200, LOOKUP_OK), Some(acceptor)).await;

    let err = VaultClient::new(&VaultConfig::new(&fake.addr)).unwrap().lookup_self("s.token-abc").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert!(err.message.contains("certificate"), "{}", err.message);
    assert!(fake.requests().is_empty(), "nothing was sent over an untrusted connection");
}

#[tokio::test]
async fn skip_verify_accepts_any_certificate() {
    let (_, acceptor) = ca_and_acceptor();
    let fake = Fake::start_with(Behaviour::answer(200, LOOKUP_OK), Some(acceptor)).await;
    let mut config = VaultConfig::new(&fake.addr);
    config.skip_verify = true;

    assert!(VaultClient::new(&config).unwrap().lookup_self("s.token-abc").await.is_ok());
}

#[test]
fn a_missing_or_empty_ca_file_is_a_build_error() {
    let mut config = VaultConfig::new("https://127.0.0.1:8200");
    config.ca_cert = Some("/nonexistent/ca.pem".into());
    assert!(matches!(VaultClient::new(&config), Err(VaultBuildError::CaCertRead { .. })));

    let empty = pem_file("not a certificate\n");
    config.ca_cert = Some(empty.path().to_owned());
    assert!(matches!(VaultClient::new(&config), Err(VaultBuildError::CaCertInvalid { .. })));
}

#[test]
fn a_namespace_that_cannot_be_a_header_is_a_build_error() {
    let mut config = VaultConfig::new("https://127.0.0.1:8200");
    config.namespace = Some("a\nb".to_owned());
    assert!(matches!(VaultClient::new(&config), Err(VaultBuildError::InvalidNamespace(_))));
}
