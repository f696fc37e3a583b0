//! The Vault TLS settings against a real OpenBao TLS listener: a private `bao server -dev`
//! of this test's own (never the shared one) with an extra `tcp` listener that requires and
//! verifies client certificates, using a CA, server and client certificates made here.
//! The binary is `GOSTINT_DEV_BAO_BIN` (`.dev/env`), `BAO_BIN`, or `bao` on the PATH;
//! without one the test is skipped, unless `GOSTINT_TEST_REQUIRE` names `vault`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gostint_core::{JobVault, VaultErrorKind};
use gostint_vault::{VaultBuildError, VaultClient, VaultConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

const ROOT_TOKEN: &str = "gostint-tls-test-root";
/// The only names the server certificate is valid for: `localhost` and this one, never
/// `127.0.0.1`.
const SERVER_NAME: &str = "vault.gostint.internal";

fn bao_bin() -> Option<PathBuf> {
    for var in ["GOSTINT_DEV_BAO_BIN", "BAO_BIN"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("bao")).find(|p| p.is_file())
}

/// The private server; killed (and its files removed) on drop.
struct PrivateBao {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for PrivateBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// CA, server certificate (for `localhost` and [`SERVER_NAME`]) and client certificate,
/// all written under `dir`; `ca.d/` holds the CA alone, for `VAULT_CAPATH`.
fn make_pki(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "gostint test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let mut server = CertificateParams::new(vec!["localhost".to_owned(), SERVER_NAME.to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &ca, &ca_key).unwrap();

    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name.push(DnType::CommonName, "gostint");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &ca, &ca_key).unwrap();

    write(dir, "ca.pem", &ca.pem());
    std::fs::create_dir(dir.join("ca.d")).unwrap();
    write(&dir.join("ca.d"), "gostint-test-ca.pem", &ca.pem());
    write(dir, "server.pem", &server_cert.pem());
    write(dir, "server-key.pem", &server_key.serialize_pem());
    write(dir, "client.pem", &client_cert.pem());
    write(dir, "client-key.pem", &client_key.serialize_pem());
}

fn start() -> Option<PrivateBao> {
    let Some(bin) = bao_bin() else {
        let required = std::env::var("GOSTINT_TEST_REQUIRE").unwrap_or_default();
        assert!(
            !required.split([',', ' ']).any(|s| matches!(s.trim(), "vault" | "openbao")),
            "GOSTINT_TEST_REQUIRE names vault but no bao binary was found (GOSTINT_DEV_BAO_BIN, BAO_BIN, PATH)"
        );
        eprintln!("skipped: no bao binary");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let port = free_port();
    let d = dir.path().display();
    let config = format!(
        r#"listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_cert_file = "{d}/server.pem"
  tls_key_file = "{d}/server-key.pem"
  tls_client_ca_file = "{d}/ca.pem"
  tls_require_and_verify_client_cert = true
}}
disable_mlock = true
"#
    );
    let config = write(dir.path(), "tls.hcl", &config);
    let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
    let child = Command::new(&bin)
        .arg("server")
        .arg("-dev")
        .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("-config={}", config.display()))
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    Some(PrivateBao { child, port, dir })
}

impl PrivateBao {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A configuration for `host` with the CA directory and the client certificate.
    fn config(&self, host: &str) -> VaultConfig {
        let mut c = VaultConfig::new(format!("https://{host}:{}", self.port));
        c.ca_path = Some(self.path("ca.d"));
        c.client_cert = Some(self.path("client.pem"));
        c.client_key = Some(self.path("client-key.pem"));
        c.timeout = Duration::from_secs(5);
        c
    }

    /// Waits until the TLS listener answers `config`'s client (30 s at most).
    async fn wait_ready(&mut self) {
        let client = VaultClient::new(&self.config("localhost")).unwrap();
        let started = Instant::now();
        loop {
            match client.health().await {
                Ok(()) => return,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    let log = std::fs::read_to_string(self.path("bao.log")).unwrap_or_default();
                    panic!("private bao not ready after 30 s: {}\n{log}", e.message);
                }
                Err(_) => {}
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.path("bao.log")).unwrap_or_default();
                panic!("private bao exited: {status}\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_tls_settings_against_a_real_openbao_requiring_client_certificates() {
    let Some(mut bao) = start() else { return };
    bao.wait_ready().await;

    // VAULT_CAPATH + VAULT_CLIENT_CERT/KEY: trusted, and an authenticated call works.
    let client = VaultClient::new(&bao.config("localhost")).unwrap();
    let info = client.lookup_self(ROOT_TOKEN).await.expect("CA from VAULT_CAPATH and a client certificate");
    assert!(info.policies.iter().any(|p| p == "root"), "{:?}", info.policies);

    // The same CA as VAULT_CACERT instead: also fine (the existing path still works).
    let mut c = bao.config("localhost");
    c.ca_path = None;
    c.ca_cert = Some(bao.path("ca.pem"));
    VaultClient::new(&c).unwrap().health().await.expect("VAULT_CACERT");

    // Without a client certificate OpenBao ends the handshake: a clear, token-free error.
    let mut c = bao.config("localhost");
    c.client_cert = None;
    c.client_key = None;
    let err = VaultClient::new(&c).unwrap().lookup_self(ROOT_TOKEN).await.unwrap_err();
    eprintln!("without a client certificate: {}", err.message);
    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert!(err.message.starts_with("GET /v1/auth/token/lookup-self: "), "{}", err.message);
    assert!(err.message.contains("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY"), "{}", err.message);
    assert!(!err.message.contains(ROOT_TOKEN), "{}", err.message);

    // Without the CA (system roots only) the server is not trusted.
    let mut c = bao.config("localhost");
    c.ca_path = None;
    let err = VaultClient::new(&c).unwrap().health().await.unwrap_err();
    eprintln!("without the CA: {}", err.message);
    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert!(err.message.contains("certificate"), "{}", err.message);

    // By IP address the certificate (localhost, SERVER_NAME) does not match...
    let err = VaultClient::new(&bao.config("127.0.0.1")).unwrap().health().await.unwrap_err();
    eprintln!("by IP address, no server name: {}", err.message);
    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert!(err.message.contains("certificate"), "{}", err.message);

    // ...VAULT_TLS_SERVER_NAME makes it acceptable (client certificate still sent)...
    let mut c = bao.config("127.0.0.1");
    c.tls_server_name = Some(SERVER_NAME.to_owned());
    let info = VaultClient::new(&c).unwrap().lookup_self(ROOT_TOKEN).await.expect("VAULT_TLS_SERVER_NAME");
    assert!(info.policies.iter().any(|p| p == "root"), "{:?}", info.policies);

    // ...and a name the certificate is not for fails.
    c.tls_server_name = Some("other.gostint.internal".to_owned());
    let err = VaultClient::new(&c).unwrap().health().await.unwrap_err();
    eprintln!("wrong server name: {}", err.message);
    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert!(err.message.contains("certificate"), "{}", err.message);

    // A server name without a client certificate: still refused by OpenBao.
    c.tls_server_name = Some(SERVER_NAME.to_owned());
    c.client_cert = None;
    c.client_key = None;
    let err = VaultClient::new(&c).unwrap().lookup_self(ROOT_TOKEN).await.unwrap_err();
    eprintln!("server name, no client certificate: {}", err.message);
    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert!(err.message.contains("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY"), "{}", err.message);
}

#[test]
fn incomplete_or_unreadable_tls_files_are_build_errors() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let mut c = VaultConfig::new("https://127.0.0.1:8200");
    c.client_cert = Some(dir.path().join("client.pem"));
    assert!(matches!(VaultClient::new(&c), Err(VaultBuildError::ClientCertIncomplete)));

    c.client_key = Some(dir.path().join("ca.pem"));
    let err = VaultClient::new(&c).unwrap_err();
    assert!(matches!(err, VaultBuildError::ClientCert { what: "key", .. }), "{err}");

    c.client_key = Some(dir.path().join("client-key.pem"));
    c.ca_path = Some(dir.path().join("missing.d"));
    let err = VaultClient::new(&c).unwrap_err();
    assert!(matches!(err, VaultBuildError::CaPath { .. }), "{err}");

    let empty = dir.path().join("empty.d");
    std::fs::create_dir(&empty).unwrap();
    c.ca_path = Some(empty.clone());
    assert!(matches!(VaultClient::new(&c), Err(VaultBuildError::CaPath { .. })));
    write(&empty, "README", "not a certificate");
    let err = VaultClient::new(&c).unwrap_err();
    assert!(err.to_string().contains("README"), "{err}");

    c.ca_path = Some(dir.path().join("ca.d"));
    c.tls_server_name = Some("not a name!".to_owned());
    assert!(matches!(VaultClient::new(&c), Err(VaultBuildError::InvalidServerName(_))));
    c.tls_server_name = Some(SERVER_NAME.to_owned());
    VaultClient::new(&c).expect("complete settings build");
}
