//! Vault-issued credentials against the dev OpenBao (`VAULT_ADDR`,
//! `GOSTINT_DEV_VAULT_ROOT_TOKEN` from `.dev/env`) and the test PostgreSQL: a database
//! secrets engine and AppRole of each test's own with lifetimes of seconds, so the store has
//! to renew and then rotate its credentials several times while it keeps working.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gostint_core::{JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Outcome, Owner, StoreEvent, Timestamp};
use gostint_store_contract::cross::Listening;
use gostint_store_postgres::vault::{connect_with_vault_creds, VaultDbSettings};
use gostint_vault::VaultConfig;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::{ConnectOptions, Connection};

use crate::{test_url, TestDb};

/// The dev OpenBao as root, or `None` (after saying so) without one.
struct Bao {
    addr: String,
    token: String,
    http: reqwest::Client,
}

impl Bao {
    fn from_env() -> Option<Self> {
        match (std::env::var("VAULT_ADDR"), std::env::var("GOSTINT_DEV_VAULT_ROOT_TOKEN")) {
            (Ok(addr), Ok(token)) if !addr.is_empty() && !token.is_empty() => {
                Some(Self { addr, token, http: reqwest::Client::new() })
            }
            _ => {
                let required = std::env::var("GOSTINT_TEST_REQUIRE").unwrap_or_default();
                assert!(
                    !required.split([',', ' ']).any(|s| matches!(s.trim(), "vault" | "openbao")),
                    "GOSTINT_TEST_REQUIRE names vault but VAULT_ADDR/GOSTINT_DEV_VAULT_ROOT_TOKEN are unset"
                );
                eprintln!("skipped: no vault");
                None
            }
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req =
            self.http.request(method.clone(), format!("{}/v1/{path}", self.addr)).header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

fn job(i: i64) -> NewJob {
    NewJob {
        id: JobId::new(1_700_000_000),
        qname: format!("q{}", i % 3),
        owner: Owner::new("entity-vault"),
        submitted: Timestamp::from_millis(i),
        definition: JobDefinition::default(),
        wrap_secret_id: "w".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

/// Lifetimes for one scenario.
struct Ttls {
    token: &'static str,
    token_max: &'static str,
    lease: &'static str,
    lease_max: &'static str,
}

/// The credentials' Vault calls go through the server's one Vault client, so
/// `VAULT_CLIENT_TIMEOUT` (here 1 s) bounds them: a Vault that accepts the connection and
/// never answers fails the connect within the timeout, with a message that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_vault_fails_the_connect_within_the_client_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds every connection, never answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut vault = VaultConfig::new(format!("http://{addr}"));
    vault.timeout = Duration::from_secs(1);
    let settings = VaultDbSettings::new(vault, "role", SecretString::from("secret-id-value"));
    let started = Instant::now();
    let error = connect_with_vault_creds("postgres://127.0.0.1:1/none", settings, 1)
        .await
        .map(|_| ())
        .expect_err("a silent vault cannot give credentials");
    let took = started.elapsed();
    let text = format!("{error:?} {error}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {text}");
    assert!(took >= Duration::from_millis(900), "took {took:?}: {text}");
    let source = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
    assert!(source.contains("no answer from vault within 1s"), "{source}");
    assert!(!text.contains("secret-id-value"), "{text}");
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_working_across_rotations_forced_by_the_leases_max_ttl() {
    // The token outlives each lease; the lease's 12 s max TTL forces each rotation.
    let ttls = Ttls { token: "8s", token_max: "60s", lease: "5s", lease_max: "12s" };
    rotation_scenario(ttls, Duration::from_secs(25), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_working_across_rotations_forced_by_the_tokens_max_ttl() {
    // The lease could live a minute, but it dies with the token that read it: the token's
    // 8 s max TTL forces each rotation.
    let ttls = Ttls { token: "4s", token_max: "8s", lease: "5s", lease_max: "60s" };
    rotation_scenario(ttls, Duration::from_secs(16), 2).await;
}

/// Runs a store on Vault credentials with these lifetimes for `run_for`, using it all the
/// time; it must never fail and must rotate at least `min_rotations` times.
async fn rotation_scenario(ttls: Ttls, run_for: Duration, min_rotations: u64) {
    crate::init_logs();
    let Some(db) = TestDb::create().await else { return };
    let Some(bao) = Bao::from_env() else { return };
    let server = reqwest::Url::parse(&test_url().unwrap()).unwrap();
    let (host, port) = (server.host_str().unwrap().to_string(), server.port().unwrap_or(5432));
    let (admin_user, admin_password) = (server.username().to_string(), server.password().unwrap_or("").to_string());
    let id = &db.name["gostint_test_".len()..];
    let owner = format!("gostint_owner_{id}");
    let mount = format!("database-{id}");
    let approle = format!("gostint-db-{id}");

    // The database belongs to an owner role; Vault's users act as it.
    let mut admin = db.admin.connect().await.unwrap();
    sqlx::query(&format!("CREATE ROLE {owner} NOLOGIN")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {} OWNER TO {owner}", db.name)).execute(&mut admin).await.unwrap();

    bao.call(Method::POST, &format!("sys/mounts/{mount}"), Some(json!({"type": "database"}))).await;
    bao.call(
        Method::POST,
        &format!("{mount}/config/pg"),
        Some(json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@{host}:{port}/{}?sslmode=disable", db.name),
            "username": admin_user,
            "password": admin_password,
            "allowed_roles": ["gostint-dbauth-role"],
        })),
    )
    .await;
    bao.call(
        Method::POST,
        &format!("{mount}/roles/gostint-dbauth-role"),
        Some(json!({
            "db_name": "pg",
            "creation_statements": [
                format!("CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}' IN ROLE {owner};"),
                format!("ALTER ROLE \"{{{{name}}}}\" SET role = '{owner}';"),
            ],
            "revocation_statements": [
                format!("REASSIGN OWNED BY \"{{{{name}}}}\" TO {owner}; DROP OWNED BY \"{{{{name}}}}\"; DROP ROLE IF EXISTS \"{{{{name}}}}\";"),
            ],
            "default_ttl": ttls.lease,
            "max_ttl": ttls.lease_max,
        })),
    )
    .await;
    let policy = format!("path \"{mount}/creds/gostint-dbauth-role\" {{ capabilities = [\"read\"] }}");
    bao.call(Method::PUT, &format!("sys/policies/acl/{approle}"), Some(json!({ "policy": policy }))).await;
    let auths = bao.call(Method::GET, "sys/auth", None).await;
    if auths.get("approle/").is_none() && auths.get("data").and_then(|d| d.get("approle/")).is_none() {
        bao.call(Method::POST, "sys/auth/approle", Some(json!({"type": "approle"}))).await;
    }
    bao.call(
        Method::POST,
        &format!("auth/approle/role/{approle}"),
        Some(json!({"token_policies": [approle], "token_ttl": ttls.token, "token_max_ttl": ttls.token_max})),
    )
    .await;
    let role_id = bao.call(Method::GET, &format!("auth/approle/role/{approle}/role-id"), None).await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = bao.call(Method::POST, &format!("auth/approle/role/{approle}/secret-id"), None).await["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut settings = VaultDbSettings::new(VaultConfig::new(&bao.addr), role_id, SecretString::from(secret_id));
    settings.mount = mount.clone();
    let url = format!("postgres://{host}:{port}/{}", db.name);
    let store = Arc::new(connect_with_vault_creds(&url, settings, 3).await.expect("connect with vault credentials"));
    // Another node on plain credentials, to check the listener follows the rotations.
    let other = db.store().await;
    let mut heard = Listening::start(store.clone(), Duration::from_millis(500)).await;

    let node = NodeId::new("vault-node");
    let started = Instant::now();
    let mut rounds = 0_i64;
    while started.elapsed() < run_for {
        let j = job(rounds);
        let id = j.id;
        store.enqueue(j).await.unwrap_or_else(|e| panic!("enqueue at {:?}: {e:?}", started.elapsed()));
        let got = store
            .claim(&node, 10, Timestamp::now())
            .await
            .unwrap_or_else(|e| panic!("claim at {:?}: {e:?}", started.elapsed()));
        assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
        let outcome = Outcome::message(JobStatus::Success, "");
        assert!(store
            .finish(&id, &node, outcome, Timestamp::now())
            .await
            .unwrap_or_else(|e| panic!("finish at {:?}: {e:?}", started.elapsed())));
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rotations = store.pool_generation();
    eprintln!("{rounds} enqueue/claim/finish rounds over {:?}, {rotations} credential rotations", started.elapsed());
    assert!(rotations >= min_rotations, "expected at least {min_rotations} rotations in {run_for:?}, got {rotations}");

    // The listener moved to the newest credentials and still hears the other node.
    tokio::time::sleep(Duration::from_millis(300)).await;
    heard.drain();
    other.enqueue(job(1_000_000)).await.unwrap();
    heard.expect(StoreEvent::Claimable, "enqueue on another node after rotations").await;

    // The old users are gone (revoked with their tokens); at most the current one and one
    // still in its grace period remain.
    let users: Vec<String> =
        sqlx::query_scalar(&format!("SELECT r.rolname FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles o ON o.oid = m.roleid WHERE o.rolname = '{owner}'"))
            .fetch_all(&mut admin)
            .await
            .unwrap();
    eprintln!("vault users left: {users:?}");
    assert!(users.len() <= 2, "{users:?}");

    drop(heard);
    store.close().await;
    drop(store);
    other.close().await;
    bao.call(Method::DELETE, &format!("sys/mounts/{mount}"), None).await;
    bao.call(Method::DELETE, &format!("auth/approle/role/{approle}"), None).await;
    bao.call(Method::DELETE, &format!("sys/policies/acl/{approle}"), None).await;
    drop(db);
    sqlx::query(&format!("DROP ROLE IF EXISTS {owner}")).execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
}
