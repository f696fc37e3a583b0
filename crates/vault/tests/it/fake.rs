//! Error mapping, retries and headers, against a fake Vault that answers what we tell it.

use std::time::{Duration, Instant};

use gostint_core::{JobVault, VaultErrorKind};
use gostint_vault::{VaultClient, VaultConfig};
use secrecy::ExposeSecret;

use crate::support::{closed_port_addr, Behaviour, Fake};

const LOOKUP_OK: &str =
    r#"{"data":{"accessor":"acc-1","entity_id":"","policies":["default"],"identity_policies":null}}"#;

#[tokio::test]
async fn a_503_on_a_read_is_retried_then_unavailable_with_vaults_errors() {
    let fake = Fake::start(Behaviour::answer(503, r#"{"errors":["Vault is sealed"]}"#)).await;

    let err = fake.client().lookup_self("s.some-caller-token").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert_eq!(err.message, "GET /v1/auth/token/lookup-self: 503 Service Unavailable: Vault is sealed");
    assert_eq!(fake.requests().len(), 3, "a read is tried three times");
}

#[tokio::test]
async fn a_500_on_a_read_is_unavailable_and_not_retried() {
    let fake = Fake::start(Behaviour::answer(500, r#"{"errors":["internal error"]}"#)).await;

    let err = fake.client().read_secret("s.job-token-123", "secret/x").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn unwrap_is_sent_once_with_only_the_wrapping_token_and_an_empty_body() {
    let fake = Fake::start(Behaviour::answer(503, r#"{"errors":["standby"]}"#)).await;

    let err = fake.client().unwrap("s.the-wrapping-token").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "a wrapping token is single use: never retried");
    let request = requests[0].to_lowercase();
    assert!(request.starts_with("put /v1/sys/wrapping/unwrap http/1.1\r\n"), "{request}");
    assert_eq!(request.matches("x-vault-token:").count(), 1);
    assert!(request.contains("x-vault-token: s.the-wrapping-token\r\n"));
    assert!(request.ends_with("\r\n\r\n"), "empty body: {request}");
    assert!(!err.message.contains("the-wrapping-token"));
}

#[tokio::test]
async fn approle_login_is_sent_once_without_a_token() {
    let fake = Fake::start(Behaviour::answer(502, "<html>bad gateway</html>")).await;

    let err = fake.client().approle_login("role-id-1", "secret-id-1").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert_eq!(err.message, "PUT /v1/auth/approle/login: 502 Bad Gateway");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert!(!requests[0].to_lowercase().contains("x-vault-token"));
    assert!(requests[0].contains(r#""role_id":"role-id-1""#) && requests[0].contains(r#""secret_id":"secret-id-1""#));
}

#[tokio::test]
async fn a_login_answer_without_auth_is_none() {
    let fake = Fake::start(Behaviour::answer(200, r#"{"auth":null,"data":null,"warnings":null}"#)).await;

    assert_eq!(fake.client().approle_login("r", "s").await.unwrap(), None);
}

#[tokio::test]
async fn a_4xx_is_denied_and_the_message_never_holds_the_token() {
    // A Vault that echoed the token back must not get it into logs or job output.
    let fake = Fake::start(Behaviour::answer(403, r#"{"errors":["permission denied for s.leaky-token-42"]}"#)).await;

    let err = fake.client().lookup_self("s.leaky-token-42").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Denied);
    assert_eq!(err.message, "GET /v1/auth/token/lookup-self: 403 Forbidden: permission denied for <redacted>");
    assert_eq!(fake.requests().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_denied_without_a_request() {
    let fake = Fake::start(Behaviour::answer(200, LOOKUP_OK)).await;

    let err = fake.client().lookup_self("bad\ntoken").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Denied);
    assert!(!err.message.contains("bad"));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_invalid() {
    let fake = Fake::start(Behaviour::answer(200, "<html>hello</html>")).await;

    let err = fake.client().lookup_self("s.token-abc").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Invalid);
}

#[tokio::test]
async fn a_lookup_without_data_or_without_entity_and_accessor_is_invalid() {
    for body in [r#"{}"#, r#"{"data":{"policies":["default"]}}"#, r#"{"data":{"accessor":1}}"#] {
        let fake = Fake::start(Behaviour::answer(200, body)).await;
        let err = fake.client().lookup_self("s.token-abc").await.unwrap_err();
        assert_eq!(err.kind, VaultErrorKind::Invalid, "{body}");
    }
}

#[tokio::test]
async fn a_lookup_unites_policies_and_identity_policies() {
    let body = r#"{"data":{"accessor":"a1","entity_id":"e1","policies":["default"],"identity_policies":["gostint-admin","default"]}}"#;
    let fake = Fake::start(Behaviour::answer(200, body)).await;

    let info = fake.client().lookup_self("s.token-abc").await.unwrap();

    assert_eq!(info.policies, vec!["default", "gostint-admin"]);
    assert_eq!(info.owner().as_str(), "e1");
    assert!(info.is_admin("gostint-admin"));
}

#[tokio::test]
async fn a_404_secret_or_cubbyhole_is_none_but_a_404_unwrap_is_denied() {
    let fake = Fake::start(Behaviour::answer(404, r#"{"errors":[]}"#)).await;
    let client = fake.client();

    assert!(client.read_secret("s.token-abc", "secret/nope").await.unwrap().is_none());
    assert!(client.read_cubbyhole("s.token-abc", "cubbyhole/job").await.unwrap().is_none());
    let err = client.unwrap("s.token-abc").await.unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Denied);
    assert_eq!(err.message, "PUT /v1/sys/wrapping/unwrap: 404 Not Found");
}

#[tokio::test]
async fn a_silent_vault_times_out_as_unavailable_without_retry() {
    let fake = Fake::start(Behaviour::Hang).await;
    let mut config = VaultConfig::new(&fake.addr);
    config.timeout = Duration::from_millis(300);
    let client = VaultClient::new(&config).unwrap();

    let started = Instant::now();
    let err = client.lookup_self("s.token-abc").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert_eq!(err.message, "GET /v1/auth/token/lookup-self: no answer from vault within 300ms");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_vault_is_unavailable_and_the_message_names_no_host() {
    let addr = closed_port_addr().await;
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let client = VaultClient::new(&VaultConfig::new(&addr)).unwrap();

    let started = Instant::now();
    let err = client.lookup_self("s.token-abc").await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Unavailable);
    assert!(err.message.starts_with("GET /v1/auth/token/lookup-self: cannot connect to vault"), "{}", err.message);
    assert!(!err.message.contains("127.0.0.1") && !err.message.contains(&port), "{}", err.message);
    assert!(started.elapsed() >= Duration::from_millis(300), "retried with back-off (100 + 200 ms)");

    let err = client.unwrap("s.wrap-token").await.unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Unavailable);
}

#[tokio::test]
async fn namespace_and_wrap_ttl_headers_are_sent() {
    let fake = Fake::start(Behaviour::answer(200, r#"{"wrap_info":{"token":"s.wrapped-1","ttl":3600}}"#)).await;
    let mut config = VaultConfig::new(&fake.addr);
    config.namespace = Some("team-a".to_owned());
    let client = VaultClient::new(&config).unwrap();

    let wrapped = client.wrapped_secret_id("s.requestor-1", "gostint-role", "1h").await.unwrap();

    assert_eq!(wrapped.expose_secret(), "s.wrapped-1");
    let request = fake.requests()[0].to_lowercase();
    assert!(request.starts_with("put /v1/auth/approle/role/gostint-role/secret-id http/1.1\r\n"), "{request}");
    assert!(request.contains("x-vault-namespace: team-a\r\n"));
    assert!(request.contains("x-vault-wrap-ttl: 1h\r\n"));
    assert!(request.contains("x-vault-token: s.requestor-1\r\n"));
}

#[tokio::test]
async fn create_token_sends_num_uses_and_its_debug_hides_the_token() {
    let body = r#"{"auth":{"client_token":"s.new-child-token","accessor":"acc-9","policies":["default"]}}"#;
    let fake = Fake::start(Behaviour::answer(200, body)).await;

    let created =
        fake.client().create_token("s.requestor-1", &["default"], "60m", Some(2), Some("cubby")).await.unwrap();

    assert_eq!(created.token.expose_secret(), "s.new-child-token");
    assert_eq!(created.accessor, "acc-9");
    assert!(!format!("{created:?}").contains("new-child-token"));
    let request = &fake.requests()[0];
    assert!(request.contains(r#""num_uses":2"#) && !request.contains("use_limit"), "{request}");
    assert!(request.contains(r#""display_name":"cubby""#) && request.contains(r#""ttl":"60m""#));
}

#[tokio::test]
async fn paths_that_climb_out_of_v1_are_refused_without_a_request() {
    let fake = Fake::start(Behaviour::answer(200, "{}")).await;
    let client = fake.client();

    for path in ["../sys/raw", "cubbyhole/../../sys", "", "secret//x"] {
        let err = client.read_secret("s.token-abc", path).await.unwrap_err();
        assert_eq!(err.kind, VaultErrorKind::Invalid, "{path}");
    }
    let err = client.transit_decrypt("s.token-abc", "../x", "vault:v1:x").await.unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Invalid);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn the_client_debug_shows_the_address_only() {
    let client = VaultClient::new(&VaultConfig::new("http://127.0.0.1:8200")).unwrap();
    assert_eq!(format!("{client:?}"), "VaultClient { addr: \"http://127.0.0.1:8200/\", .. }");
}
