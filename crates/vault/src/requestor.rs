//! The requestor's calls (docs/design.md §7 steps 2–7): what `gostint-client` and the tests do
//! before a job reaches gostint. gostint's server never makes these.

use gostint_core::{TokenInfo, VaultError};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Map, Value};

use crate::client::{is_segment, Call, Reply, VaultClient};
use crate::job::{expect_body, invalid, string_at, token_info, transit_path};

/// A token made by [`VaultClient::create_token`]. `Debug` shows the accessor only.
#[derive(Debug)]
pub struct CreatedToken {
    /// The token itself (`auth.client_token`).
    pub token: SecretString,
    /// Its accessor (`auth.accessor`): names the token without granting its powers.
    pub accessor: String,
}

impl VaultClient {
    /// `PUT auth/token/create` with `token`: a child token with these `policies` and `ttl`
    /// (e.g. `"24h"`), limited to `num_uses` calls when given (Vault's field is `num_uses`,
    /// not the `use_limit` the original client sent), named `display_name` when given.
    ///
    /// # Errors
    /// [`VaultErrorKind::Denied`](gostint_core::VaultErrorKind::Denied) if `token` may not
    /// create such a token. Never retried: a repeat would mint a second token.
    pub async fn create_token(
        &self,
        token: &str,
        policies: &[&str],
        ttl: &str,
        num_uses: Option<u32>,
        display_name: Option<&str>,
    ) -> Result<CreatedToken, VaultError> {
        let mut body = json!({ "policies": policies, "ttl": ttl });
        if let Some(n) = num_uses {
            body["num_uses"] = json!(n);
        }
        if let Some(name) = display_name {
            body["display_name"] = json!(name);
        }
        let call = Call::new(Method::PUT, "auth/token/create").token(token).body(body);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        let client_token = string_at(&body, "auth", "client_token", &label)?;
        let accessor = string_at(&body, "auth", "accessor", &label)?;
        Ok(CreatedToken { token: SecretString::from(client_token), accessor })
    }

    /// `PUT auth/approle/role/<approle>/secret-id` with `X-Vault-Wrap-TTL: <wrap_ttl>`:
    /// a fresh secret-id for gostint's job AppRole, wrapped, so only the wrapping token
    /// (`wrap_info.token`, the job's `wrap_secret_id`) leaves Vault.
    ///
    /// # Errors
    /// `Invalid` for an AppRole name that is not one path segment or an answer without
    /// `wrap_info.token`; `Denied` if `token` may not mint secret-ids. Never retried.
    pub async fn wrapped_secret_id(
        &self,
        token: &str,
        approle: &str,
        wrap_ttl: &str,
    ) -> Result<SecretString, VaultError> {
        let (body, label) = self.wrapped_secret_id_answer(token, approle, wrap_ttl).await?;
        string_at(&body, "wrap_info", "token", &label).map(SecretString::from)
    }

    /// The answer of `PUT auth/approle/role/<approle>/secret-id` made wrapped, and its label.
    async fn wrapped_secret_id_answer(
        &self,
        token: &str,
        approle: &str,
        wrap_ttl: &str,
    ) -> Result<(serde_json::Value, String), VaultError> {
        if !is_segment(approle) {
            return Err(invalid("auth/approle/role", &format!("invalid AppRole name {approle:?}")));
        }
        let path = format!("auth/approle/role/{approle}/secret-id");
        let call = Call::new(Method::PUT, &path).token(token).wrap_ttl(wrap_ttl);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        Ok((body, label))
    }

    /// `PUT transit/encrypt/<key>` with `{"plaintext": plaintext_b64}`; returns
    /// `data.ciphertext` (`vault:v1:…`).
    ///
    /// # Errors
    /// `Denied` if `token` may not use the key (or the plaintext is not base64).
    pub async fn transit_encrypt(&self, token: &str, key: &str, plaintext_b64: &str) -> Result<String, VaultError> {
        let path = transit_path("encrypt", key)?;
        let call = Call::new(Method::PUT, &path).token(token).body(json!({ "plaintext": plaintext_b64 }));
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        string_at(&body, "data", "ciphertext", &label)
    }

    /// `PUT <path>` with `token` and a JSON `body`, e.g. `cubbyhole/job`
    /// `{"payload": "<ciphertext>"}`. Returns the answer's `data`, if any (most writes
    /// answer 204).
    ///
    /// # Errors
    /// `Denied` on any 4xx (including a use-limited token already spent). Never retried.
    pub async fn write(&self, token: &str, path: &str, body: &Value) -> Result<Option<Map<String, Value>>, VaultError> {
        let call = Call::new(Method::PUT, path).token(token).body(body.clone());
        let label = call.label();
        match self.send(call).await? {
            Reply::Body(answer) => match answer.get("data") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(data)) => Ok(Some(data.clone())),
                Some(_) => Err(invalid(&label, "`data` is not an object")),
            },
            Reply::NotFound => Ok(None),
        }
    }

    /// Revokes `token_to_revoke` (and its children) with its own authority:
    /// `PUT auth/token/revoke-self`.
    ///
    /// # Errors
    /// `Denied` if the token is already invalid or spent.
    pub async fn revoke_token(&self, token_to_revoke: &str) -> Result<(), VaultError> {
        self.send(Call::new(Method::PUT, "auth/token/revoke-self").token(token_to_revoke)).await?;
        Ok(())
    }

    /// `PUT auth/token/revoke-accessor` with `token`: revokes the token that `accessor`
    /// names without holding it (or spending one of its uses).
    ///
    /// # Errors
    /// `Denied` if `token` may not revoke it, or the accessor is unknown.
    pub async fn revoke_accessor(&self, token: &str, accessor: &str) -> Result<(), VaultError> {
        let call =
            Call::new(Method::PUT, "auth/token/revoke-accessor").token(token).body(json!({ "accessor": accessor }));
        self.send(call).await?;
        Ok(())
    }

    /// `PUT auth/token/lookup-accessor` with `admin_token`: what Vault knows of the token
    /// `accessor` names, without spending one of its uses.
    ///
    /// # Errors
    /// `Denied` when the token is revoked or expired (Vault answers 400 `invalid accessor`)
    /// or `admin_token` may not look it up.
    pub async fn lookup_accessor(&self, admin_token: &str, accessor: &str) -> Result<TokenInfo, VaultError> {
        let call = Call::new(Method::PUT, "auth/token/lookup-accessor")
            .token(admin_token)
            .body(json!({ "accessor": accessor }))
            .read();
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        token_info(&body, &label)
    }

    /// As [`wrapped_secret_id`](Self::wrapped_secret_id), also giving the wrapping token's
    /// accessor (`wrap_info.accessor`), so a client can name it in its logs and revoke it.
    ///
    /// # Errors
    /// As [`wrapped_secret_id`](Self::wrapped_secret_id).
    pub async fn wrapped_secret_id_made(
        &self,
        token: &str,
        approle: &str,
        wrap_ttl: &str,
    ) -> Result<CreatedToken, VaultError> {
        let (body, label) = self.wrapped_secret_id_answer(token, approle, wrap_ttl).await?;
        let wrap = string_at(&body, "wrap_info", "token", &label)?;
        let accessor = string_at(&body, "wrap_info", "accessor", &label)?;
        Ok(CreatedToken { token: SecretString::from(wrap), accessor })
    }

    /// `PUT auth/token/renew-self` with `token` (optionally asking for `increment`, e.g.
    /// `"1h"`); returns the token's new TTL in seconds (`auth.lease_duration`).
    ///
    /// # Errors
    /// `Denied` if the token is not renewable, expired or revoked. Never retried.
    pub async fn renew_self(&self, token: &str, increment: Option<&str>) -> Result<u64, VaultError> {
        let body = match increment {
            Some(i) => json!({ "increment": i }),
            None => json!({}),
        };
        let call = Call::new(Method::PUT, "auth/token/renew-self").token(token).body(body);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        body.get("auth")
            .and_then(|a| a.get("lease_duration"))
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid(&label, "no `auth.lease_duration`"))
    }
}
