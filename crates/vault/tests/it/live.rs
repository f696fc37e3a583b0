//! Against the dev OpenBao server of `scripts/services up` (`.dev/env`): the requestor's
//! preparation and the server's per-job sequence, end to end.

use base64::Engine as _;
use gostint_core::{JobVault, VaultErrorKind};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::support::{live, Live};

/// A requestor token as a `gostint-client` user would hold one.
async fn requestor(vault: &Live) -> String {
    let created =
        vault.client.create_token(&vault.root, &["gostint-requestor"], "10m", None, Some("vault-it")).await.unwrap();
    created.token.expose_secret().to_owned()
}

/// A fresh wrapped secret-id for the job AppRole, minted by a requestor.
async fn wrapped_secret_id(vault: &Live, requestor: &str) -> String {
    let wrapped = vault.client.wrapped_secret_id(requestor, &vault.role_name, "5m").await.unwrap();
    wrapped.expose_secret().to_owned()
}

/// Unwrap + AppRole login, as a node does at the start of a job: the job token.
async fn job_token(vault: &Live, wrap: &str) -> String {
    let unwrapped = vault.client.unwrap(wrap).await.unwrap();
    let secret_id = unwrapped["secret_id"].as_str().expect("wrapped answer holds a secret_id");
    vault.client.approle_login(&vault.role_id, secret_id).await.unwrap().expect("login answers auth")
}

#[tokio::test]
async fn lookup_self_of_a_child_token_reports_policies_accessor_and_owner() {
    let Some(vault) = live() else { return };
    let child = vault
        .client
        .create_token(&vault.root, &["default", "gostint-admin"], "5m", None, Some("gostint_ui"))
        .await
        .unwrap();

    let info = vault.client.lookup_self(child.token.expose_secret()).await.unwrap();

    assert_eq!(info.accessor, child.accessor);
    assert!(info.policies.iter().any(|p| p == "default"), "{:?}", info.policies);
    assert!(info.policies.iter().any(|p| p == "gostint-admin"), "{:?}", info.policies);
    assert!(info.is_admin("gostint-admin"));
    // A token the root made directly has no entity: the tenant is its accessor.
    assert_eq!(info.entity_id, "");
    assert_eq!(info.owner().as_str(), format!("accessor:{}", child.accessor));
    vault.client.revoke_token(child.token.expose_secret()).await.unwrap();
}

#[tokio::test]
async fn an_unknown_token_is_denied_without_the_token_in_the_message() {
    let Some(vault) = live() else { return };
    let bogus = format!("s.{}", uuid::Uuid::new_v4().simple());

    let err = vault.client.lookup_self(&bogus).await.unwrap_err();

    assert_eq!(err.kind, VaultErrorKind::Denied);
    assert_eq!(err.message, "GET /v1/auth/token/lookup-self: 403 Forbidden: permission denied");
}

#[tokio::test]
async fn the_full_job_sequence_runs_and_ends_with_the_job_token_revoked() {
    let Some(vault) = live() else { return };
    let client = &vault.client;
    // Requestor side (docs/design.md §7 steps 2–5).
    let requestor = requestor(&vault).await;
    let requestor_info = client.lookup_self(&requestor).await.unwrap();
    assert!(requestor_info.policies.iter().any(|p| p == "gostint-requestor"));
    let wrap = wrapped_secret_id(&vault, &requestor).await;
    let job = json!({"qname": "vault-it", "container_image": "busybox", "run": ["echo", "hi"]});
    let plaintext = base64::engine::general_purpose::STANDARD.encode(job.to_string());
    let ciphertext = client.transit_encrypt(&requestor, &vault.role_name, &plaintext).await.unwrap();
    assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");

    // Node side (docs/design.md §4 steps 1–4, 6).
    let unwrapped = client.unwrap(&wrap).await.unwrap();
    let secret_id = unwrapped["secret_id"].as_str().unwrap().to_owned();
    let job_token = client.approle_login(&vault.role_id, &secret_id).await.unwrap().unwrap();
    let job_info = client.lookup_self(&job_token).await.unwrap();
    assert!(job_info.policies.iter().any(|p| p == "gostint-role-policy"), "{:?}", job_info.policies);
    assert!(!job_info.entity_id.is_empty(), "an AppRole login has an entity");
    assert_eq!(job_info.owner().as_str(), job_info.entity_id);

    let decrypted = client.transit_decrypt(&job_token, &vault.role_name, &ciphertext).await.unwrap();
    assert_eq!(decrypted, plaintext);

    let v1 = client.read_secret(&job_token, "secret/my-secret").await.unwrap().expect("KV v1 secret");
    assert_eq!(v1.data["my-value"], json!("s3cr3t-v1"));
    assert!(v1.warnings.is_empty());
    let v2 = client.read_secret(&job_token, "kv/data/my-secret").await.unwrap().expect("KV v2 secret");
    assert_eq!(v2.data["my-value"], json!("s3cr3t-v2"));
    assert!(!v2.data.contains_key("metadata"), "KV v2 unwrapped to data.data: {:?}", v2.data);

    client.revoke_self(&job_token).await.unwrap();

    let err = client.lookup_self(&job_token).await.unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Denied);
    let err = client.read_secret(&job_token, "secret/my-secret").await.unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Denied);
    // The secret-id was single use too.
    let err = client.approle_login(&vault.role_id, &secret_id).await.unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Denied);
    assert!(!err.message.contains(&secret_id));
    client.revoke_token(&requestor).await.unwrap();
}

#[tokio::test]
async fn a_wrapping_token_unwraps_once_and_a_second_unwrap_is_denied() {
    let Some(vault) = live() else { return };
    let requestor = requestor(&vault).await;
    let wrap = wrapped_secret_id(&vault, &requestor).await;

    let first = vault.client.unwrap(&wrap).await.unwrap();
    let second = vault.client.unwrap(&wrap).await.unwrap_err();

    assert!(first["secret_id"].is_string());
    assert_eq!(second.kind, VaultErrorKind::Denied);
    assert_eq!(
        second.message,
        "PUT /v1/sys/wrapping/unwrap: 400 Bad Request: wrapping token is not valid or does not exist"
    );
    vault.client.revoke_token(&requestor).await.unwrap();
}

#[tokio::test]
async fn secrets_that_do_not_exist_are_none_and_unreadable_ones_denied() {
    let Some(vault) = live() else { return };
    let requestor = requestor(&vault).await;
    let job = job_token(&vault, &wrapped_secret_id(&vault, &requestor).await).await;
    let missing = uuid::Uuid::new_v4().simple().to_string();

    let v1 = vault.client.read_secret(&job, &format!("secret/no-such-{missing}")).await.unwrap();
    let v2 = vault.client.read_secret(&job, &format!("kv/data/no-such-{missing}")).await.unwrap();
    let denied = vault.client.read_secret(&requestor, "secret/my-secret").await.unwrap_err();

    assert!(v1.is_none() && v2.is_none());
    assert_eq!(denied.kind, VaultErrorKind::Denied);
    assert_eq!(denied.message, "GET /v1/secret/my-secret: 403 Forbidden: permission denied");
    vault.client.revoke_self(&job).await.unwrap();
    vault.client.revoke_token(&requestor).await.unwrap();
}

#[tokio::test]
async fn a_numeric_secret_value_comes_through_as_a_json_number() {
    let Some(vault) = live() else { return };
    let requestor = requestor(&vault).await;
    let job = job_token(&vault, &wrapped_secret_id(&vault, &requestor).await).await;

    let secret = vault.client.read_secret(&job, "secret/my-secret").await.unwrap().unwrap();

    assert_eq!(secret.data["other"], Value::from(42));
    vault.client.revoke_self(&job).await.unwrap();
    vault.client.revoke_token(&requestor).await.unwrap();
}

#[tokio::test]
async fn a_two_use_cubby_token_writes_once_reads_once_then_is_spent() {
    let Some(vault) = live() else { return };
    let client = &vault.client;
    let requestor = requestor(&vault).await;
    let cubby = client.create_token(&requestor, &["default"], "60m", Some(2), Some("gostint_cubby")).await.unwrap();
    let token = cubby.token.expose_secret();

    client.write(token, "cubbyhole/job", &json!({"payload": "vault:v1:abc"})).await.unwrap();
    let read = client.read_cubbyhole(token, "cubbyhole/job").await.unwrap().expect("payload stored");
    let third = client.read_cubbyhole(token, "cubbyhole/job").await.unwrap_err();

    assert_eq!(read["payload"], json!("vault:v1:abc"));
    assert_eq!(third.kind, VaultErrorKind::Denied);
    // Spending its last use revoked it (OpenBao revokes after answering: allow it a moment).
    let mut gone = client.lookup_accessor(&vault.root, &cubby.accessor).await;
    for _ in 0..50 {
        if gone.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        gone = client.lookup_accessor(&vault.root, &cubby.accessor).await;
    }
    assert_eq!(gone.expect_err("the spent token is still alive after 5 s").kind, VaultErrorKind::Denied);
    client.revoke_token(&requestor).await.unwrap();
}

#[tokio::test]
async fn an_empty_cubbyhole_path_reads_as_none() {
    let Some(vault) = live() else { return };
    let child = vault.client.create_token(&vault.root, &["default"], "5m", None, None).await.unwrap();
    let token = child.token.expose_secret();

    assert!(vault.client.read_cubbyhole(token, "cubbyhole/job").await.unwrap().is_none());
    vault.client.revoke_token(token).await.unwrap();
}

#[tokio::test]
async fn revoked_tokens_are_gone_whether_revoked_by_themselves_or_by_accessor() {
    let Some(vault) = live() else { return };
    let client = &vault.client;
    let requestor = requestor(&vault).await;
    let api = client.create_token(&requestor, &["default"], "24h", None, None).await.unwrap();
    let other = client.create_token(&requestor, &["default"], "24h", None, None).await.unwrap();
    let before = client.lookup_accessor(&vault.root, &api.accessor).await.unwrap();
    assert_eq!(before.accessor, api.accessor);

    client.revoke_token(api.token.expose_secret()).await.unwrap();
    client.revoke_accessor(&requestor, &other.accessor).await.unwrap();

    for accessor in [&api.accessor, &other.accessor] {
        let err = client.lookup_accessor(&vault.root, accessor).await.unwrap_err();
        assert_eq!(err.kind, VaultErrorKind::Denied);
        assert!(err.message.contains("invalid accessor"), "{}", err.message);
    }
    let err = client.lookup_self(other.token.expose_secret()).await.unwrap_err();
    assert_eq!(err.kind, VaultErrorKind::Denied);
    client.revoke_token(&requestor).await.unwrap();
}

#[tokio::test]
async fn a_requestor_may_not_decrypt_and_a_job_may_not_encrypt() {
    let Some(vault) = live() else { return };
    let requestor = requestor(&vault).await;
    let job = job_token(&vault, &wrapped_secret_id(&vault, &requestor).await).await;
    let ciphertext = vault.client.transit_encrypt(&requestor, &vault.role_name, "aGk=").await.unwrap();

    let decrypt = vault.client.transit_decrypt(&requestor, &vault.role_name, &ciphertext).await.unwrap_err();
    let encrypt = vault.client.transit_encrypt(&job, &vault.role_name, "aGk=").await.unwrap_err();

    assert_eq!(decrypt.kind, VaultErrorKind::Denied);
    assert_eq!(encrypt.kind, VaultErrorKind::Denied);
    vault.client.revoke_self(&job).await.unwrap();
    vault.client.revoke_token(&requestor).await.unwrap();
}
