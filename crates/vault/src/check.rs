//! Read-only probes for `gostint check` and the readiness route: is Vault answering, and
//! does the job AppRole's role id exist. Neither needs a token nor changes anything.

use gostint_core::{VaultError, VaultErrorKind};
use reqwest::Method;
use serde_json::json;

use crate::client::{Call, VaultClient};

/// What `auth/approle/login` says about a role id sent without a secret id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleIdCheck {
    /// Vault knows the role id (it asks for the missing secret id).
    Known,
    /// Vault does not know it (`invalid role or secret ID`).
    Unknown,
}

impl VaultClient {
    /// `GET /v1/sys/health`: Ok when Vault answers initialised and unsealed (2xx).
    ///
    /// # Errors
    /// Vault unreachable, sealed, uninitialised or in standby without a 2xx answer.
    pub async fn health(&self) -> Result<(), VaultError> {
        self.send(Call::new(Method::GET, "sys/health").read()).await.map(|_| ())
    }

    /// Asks `auth/approle/login` with `role_id` and no secret id: a known role id gets
    /// `missing secret_id`, an unknown one `invalid role or secret ID`. Nothing is issued.
    ///
    /// # Errors
    /// Vault unreachable, or an answer that is neither of the two.
    pub async fn check_role_id(&self, role_id: &str) -> Result<RoleIdCheck, VaultError> {
        let secrets = [role_id];
        let call =
            Call::new(Method::PUT, "auth/approle/login").body(json!({ "role_id": role_id })).also_redact(&secrets);
        match self.send(call).await {
            Ok(_) => Err(VaultError::new(
                VaultErrorKind::Invalid,
                "auth/approle/login issued a token without a secret id: the role does not bind secret ids",
            )),
            Err(e) if e.kind == VaultErrorKind::Unavailable => Err(e),
            Err(e) if e.message.contains("missing secret_id") => Ok(RoleIdCheck::Known),
            Err(e) if e.message.contains("invalid role") => Ok(RoleIdCheck::Unknown),
            Err(e) => Err(e),
        }
    }
}
