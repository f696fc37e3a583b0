//! Leased secrets: an AppRole login that keeps its lifetime, a dynamic-secret read
//! (e.g. the database engine's `<mount>/creds/<role>`) and `sys/leases/renew`. The
//! PostgreSQL store uses them for Vault-issued database credentials (docs/design.md §6.1);
//! token renewal is [`VaultClient::renew_self`], revocation [`VaultClient::revoke_token`].

use std::time::Duration;

use gostint_core::VaultError;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Map, Value};

use crate::client::{Call, VaultClient};
use crate::job::{expect_body, invalid};

/// A token from [`VaultClient::approle_login_lease`]. `Debug` never shows the token.
pub struct LoginToken {
    /// `auth.client_token`.
    pub token: SecretString,
    /// `auth.lease_duration`; zero for a token that does not expire.
    pub ttl: Duration,
    /// `auth.renewable`.
    pub renewable: bool,
}

impl std::fmt::Debug for LoginToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginToken").field("ttl", &self.ttl).field("renewable", &self.renewable).finish_non_exhaustive()
    }
}

/// A dynamic secret from [`VaultClient::read_leased`]. `Debug` shows neither the lease id
/// nor the data.
pub struct LeasedSecret {
    /// `lease_id`; empty when Vault gave none (the secret cannot be renewed).
    pub lease_id: SecretString,
    /// `lease_duration`; zero for no expiry.
    pub ttl: Duration,
    /// `renewable` (false when there is no lease id).
    pub renewable: bool,
    /// `data`.
    pub data: Map<String, Value>,
}

impl std::fmt::Debug for LeasedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedSecret")
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// `PUT auth/approle/login`: the token with its TTL and whether it can be renewed.
    ///
    /// # Errors
    /// `Denied` for a wrong role_id or secret_id; `Invalid` for an answer without
    /// `auth.client_token`. Never retried (a repeat would mint a second token).
    pub async fn approle_login_lease(&self, role_id: &str, secret_id: &str) -> Result<LoginToken, VaultError> {
        let secrets = [role_id, secret_id];
        let call = Call::new(Method::PUT, "auth/approle/login")
            .body(json!({ "role_id": role_id, "secret_id": secret_id }))
            .also_redact(&secrets);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        let auth = body.get("auth").and_then(Value::as_object).ok_or_else(|| invalid(&label, "no `auth` object"))?;
        let token = auth
            .get("client_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid(&label, "no `auth.client_token`"))?;
        Ok(LoginToken {
            token: SecretString::from(token),
            ttl: Duration::from_secs(auth.get("lease_duration").and_then(Value::as_u64).unwrap_or(0)),
            renewable: auth.get("renewable").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// `GET <path>` with `token` for a dynamic secret, e.g. `database/creds/<role>`.
    ///
    /// # Errors
    /// `Denied` on 4xx (a 404 included); `Invalid` when the answer has no `data` object.
    /// Never retried: each read mints new credentials.
    pub async fn read_leased(&self, token: &str, path: &str) -> Result<LeasedSecret, VaultError> {
        let call = Call::new(Method::GET, path).token(token);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        let data = body.get("data").and_then(Value::as_object).ok_or_else(|| invalid(&label, "no `data` object"))?;
        let lease_id = body.get("lease_id").and_then(Value::as_str).unwrap_or_default();
        Ok(LeasedSecret {
            ttl: Duration::from_secs(body.get("lease_duration").and_then(Value::as_u64).unwrap_or(0)),
            renewable: !lease_id.is_empty() && body.get("renewable").and_then(Value::as_bool).unwrap_or(false),
            lease_id: SecretString::from(lease_id),
            data: data.clone(),
        })
    }

    /// `PUT sys/leases/renew` with `token`, asking for `increment`; returns the lease's new
    /// TTL (`lease_duration`), which Vault caps at the lease's max TTL.
    ///
    /// # Errors
    /// `Denied` for an unknown, expired or non-renewable lease; `Invalid` for an answer
    /// without `lease_duration`. Never retried.
    pub async fn renew_lease(&self, token: &str, lease_id: &str, increment: Duration) -> Result<Duration, VaultError> {
        let secrets = [lease_id];
        let call = Call::new(Method::PUT, "sys/leases/renew")
            .token(token)
            .body(json!({ "lease_id": lease_id, "increment": increment.as_secs() }))
            .also_redact(&secrets);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        body.get("lease_duration")
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .ok_or_else(|| invalid(&label, "no `lease_duration`"))
    }
}
