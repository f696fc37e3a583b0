//! [`JobVault`] for [`VaultClient`]: the calls gostint's server makes (docs/design.md §2.3, §2.5, §4).

use async_trait::async_trait;
use gostint_core::{JobVault, SecretData, Timestamp, TokenInfo, VaultError, VaultErrorKind, WrapInfo};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::client::{is_segment, Call, Reply, VaultClient};

type Object = Map<String, Value>;

#[async_trait]
impl JobVault for VaultClient {
    async fn lookup_self(&self, token: &str) -> Result<TokenInfo, VaultError> {
        let call = Call::new(Method::GET, "auth/token/lookup-self").token(token).read();
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        let info = token_info(&body, &label)?;
        if info.entity_id.is_empty() && info.accessor.is_empty() {
            // Without either the caller cannot be told apart from any other such token
            // (batch tokens have no accessor): refuse rather than lump tenants together.
            return Err(invalid(&label, "the token has neither an entity nor an accessor"));
        }
        Ok(info)
    }

    async fn read_cubbyhole(&self, token: &str, path: &str) -> Result<Option<Object>, VaultError> {
        let call = Call::new(Method::GET, path).token(token).read().not_found_ok();
        let label = call.label();
        let Reply::Body(body) = self.send(call).await? else {
            return Ok(None);
        };
        match body.get("data") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(data)) => Ok(Some(data.clone())),
            Some(_) => Err(invalid(&label, "`data` is not an object")),
        }
    }

    async fn unwrap(&self, wrap_token: &str) -> Result<Object, VaultError> {
        // Authenticated by the wrapping token itself, never any other (docs/defects.md item 42);
        // sent once: a wrapping token is single use.
        let call = Call::new(Method::PUT, "sys/wrapping/unwrap").token(wrap_token);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        match body.get("data") {
            // A wrapped answer without data (e.g. a wrapped login): the caller finds no
            // `secret_id` in it and says so.
            None | Some(Value::Null) => Ok(Object::new()),
            Some(Value::Object(data)) => Ok(data.clone()),
            Some(_) => Err(invalid(&label, "`data` is not an object")),
        }
    }

    async fn approle_login(&self, role_id: &str, secret_id: &str) -> Result<Option<String>, VaultError> {
        let secrets = [role_id, secret_id];
        let call = Call::new(Method::PUT, "auth/approle/login")
            .body(json!({ "role_id": role_id, "secret_id": secret_id }))
            .also_redact(&secrets);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        match body.get("auth") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(auth)) => match auth.get("client_token") {
                Some(Value::String(token)) if !token.is_empty() => Ok(Some(token.clone())),
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(_)) => Ok(None),
                Some(_) => Err(invalid(&label, "`auth.client_token` is not a string")),
            },
            Some(_) => Err(invalid(&label, "`auth` is not an object")),
        }
    }

    async fn transit_decrypt(&self, token: &str, key: &str, ciphertext: &str) -> Result<String, VaultError> {
        let path = transit_path("decrypt", key)?;
        let call = Call::new(Method::PUT, &path).token(token).body(json!({ "ciphertext": ciphertext }));
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        string_at(&body, "data", "plaintext", &label)
    }

    async fn read_secret(&self, token: &str, path: &str) -> Result<Option<SecretData>, VaultError> {
        let call = Call::new(Method::GET, path).token(token).read().not_found_ok();
        let label = call.label();
        match self.send(call).await? {
            Reply::NotFound => Ok(None),
            // 204: Vault has nothing to say about this path.
            Reply::Body(Value::Null) => Ok(None),
            Reply::Body(body) => secret_data(&body, &label).map(Some),
        }
    }

    async fn revoke_self(&self, token: &str) -> Result<(), VaultError> {
        self.send(Call::new(Method::PUT, "auth/token/revoke-self").token(token)).await?;
        Ok(())
    }

    async fn capabilities_self(
        &self,
        token: &str,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, VaultError> {
        let call = Call::new(Method::POST, "sys/capabilities-self").token(token).body(json!({ "paths": paths }));
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        // Each path is a top-level key (and under `data` on newer servers).
        let data = body.get("data").filter(|d| d.is_object()).unwrap_or(&body);
        let mut caps = std::collections::HashMap::new();
        for p in paths {
            let list = match data.get(p).or_else(|| body.get(p)) {
                Some(Value::Array(a)) => a.iter().filter_map(|c| c.as_str().map(String::from)).collect(),
                None => Vec::new(),
                Some(_) => return Err(invalid(&label, "a path's capabilities are not a list")),
            };
            caps.insert(p.clone(), list);
        }
        Ok(caps)
    }

    async fn wrapping_lookup(&self, wrap_token: &str) -> Result<WrapInfo, VaultError> {
        // No Vault token: lookup is unauthenticated and spends nothing of the wrapping token.
        let secrets = [wrap_token];
        let call =
            Call::new(Method::POST, "sys/wrapping/lookup").body(json!({ "token": wrap_token })).also_redact(&secrets);
        let label = call.label();
        let body = expect_body(self.send(call).await?, &label)?;
        let data = body.get("data");
        let Some(Value::String(path)) = data.and_then(|d| d.get("creation_path")) else {
            return Err(invalid(&label, "no string `data.creation_path`"));
        };
        // `creation_time` (RFC 3339) + `creation_ttl` (seconds): when the token lapses. Not
        // every Vault says both; unknown is `ZERO`, never a refusal.
        let created =
            data.and_then(|d| d.get("creation_time")).and_then(Value::as_str).and_then(Timestamp::parse_rfc3339);
        let ttl = data.and_then(|d| d.get("creation_ttl")).and_then(Value::as_i64);
        let expires = match (created, ttl) {
            (Some(c), Some(t)) if t > 0 => c.plus_seconds(t),
            _ => Timestamp::ZERO,
        };
        Ok(WrapInfo { creation_path: path.clone(), expires })
    }
}

pub(crate) fn transit_path(op: &str, key: &str) -> Result<String, VaultError> {
    if !is_segment(key) {
        return Err(VaultError::new(VaultErrorKind::Invalid, format!("invalid transit key name {key:?}")));
    }
    Ok(format!("transit/{op}/{key}"))
}

pub(crate) fn invalid(label: &str, what: &str) -> VaultError {
    VaultError::new(VaultErrorKind::Invalid, format!("{label}: unexpected answer from vault: {what}"))
}

/// The body of a call that must answer something (not 404, not empty).
pub(crate) fn expect_body(reply: Reply, label: &str) -> Result<Value, VaultError> {
    match reply {
        Reply::Body(Value::Null) => Err(invalid(label, "empty answer")),
        Reply::Body(body) => Ok(body),
        Reply::NotFound => Err(VaultError::new(VaultErrorKind::Denied, format!("{label}: 404 Not Found"))),
    }
}

/// `body[outer][field]` as a string.
pub(crate) fn string_at(body: &Value, outer: &str, field: &str, label: &str) -> Result<String, VaultError> {
    body.get(outer)
        .and_then(|o| o.get(field))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid(label, &format!("no string `{outer}.{field}`")))
}

/// A token lookup's `data` (lookup-self and lookup-accessor answer alike).
pub(crate) fn token_info(body: &Value, label: &str) -> Result<TokenInfo, VaultError> {
    let data = body.get("data").and_then(Value::as_object).ok_or_else(|| invalid(label, "no `data` object"))?;
    let text = |key: &str| -> Result<String, VaultError> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid(label, &format!("`data.{key}` is not a string"))),
        }
    };
    let mut policies: Vec<String> = Vec::new();
    for key in ["policies", "identity_policies"] {
        match data.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let policy =
                        item.as_str().ok_or_else(|| invalid(label, &format!("`data.{key}` holds a non-string")))?;
                    if !policies.iter().any(|p| p == policy) {
                        policies.push(policy.to_owned());
                    }
                }
            }
            Some(_) => return Err(invalid(label, &format!("`data.{key}` is not an array"))),
        }
    }
    Ok(TokenInfo { entity_id: text("entity_id")?, accessor: text("accessor")?, policies })
}

/// A secret read's data, KV v2 unwrapped (docs/design.md §3.6: `data.data` an object and
/// `data.metadata` present → v2), with Vault's warnings.
fn secret_data(body: &Value, label: &str) -> Result<SecretData, VaultError> {
    let warnings = match body.get("warnings") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|w| match w {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(_) => return Err(invalid(label, "`warnings` is not an array")),
    };
    let data = match body.get("data") {
        None | Some(Value::Null) => Object::new(),
        Some(Value::Object(data)) => match (data.get("data"), data.contains_key("metadata")) {
            (Some(Value::Object(inner)), true) => inner.clone(),
            _ => data.clone(),
        },
        Some(_) => return Err(invalid(label, "`data` is not an object")),
    };
    Ok(SecretData { data, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_v2_answers_are_unwrapped_and_v1_kept_flat() {
        let v2 = json!({"data": {"data": {"k": "v"}, "metadata": {"version": 1}}, "warnings": null});
        assert_eq!(secret_data(&v2, "x").unwrap().data, json!({"k": "v"}).as_object().unwrap().clone());
        let v1_with_data_key = json!({"data": {"data": {"k": "v"}, "other": 1}, "warnings": ["w"]});
        let read = secret_data(&v1_with_data_key, "x").unwrap();
        assert_eq!(read.data.len(), 2);
        assert_eq!(read.warnings, vec!["w".to_owned()]);
        let v2_not_object = json!({"data": {"data": "scalar", "metadata": {}}});
        assert_eq!(secret_data(&v2_not_object, "x").unwrap().data.len(), 2);
        assert!(secret_data(&json!({"data": null}), "x").unwrap().data.is_empty());
        assert_eq!(secret_data(&json!({"data": [1]}), "x").unwrap_err().kind, VaultErrorKind::Invalid);
    }

    #[test]
    fn token_info_unites_policies_and_tolerates_missing_entity() {
        let body = json!({"data": {"accessor": "acc", "policies": ["default", "a"], "identity_policies": ["a", "b"]}});
        let info = token_info(&body, "x").unwrap();
        assert_eq!(info.policies, vec!["default", "a", "b"]);
        assert_eq!(info.entity_id, "");
        assert_eq!(info.owner().as_str(), "accessor:acc");
        let bad = json!({"data": {"accessor": "acc", "policies": "root"}});
        assert_eq!(token_info(&bad, "x").unwrap_err().kind, VaultErrorKind::Invalid);
    }

    #[test]
    fn transit_keys_are_one_segment() {
        assert_eq!(transit_path("decrypt", "gostint-role").unwrap(), "transit/decrypt/gostint-role");
        assert!(transit_path("decrypt", "../x").is_err());
        assert!(transit_path("decrypt", "").is_err());
    }
}
