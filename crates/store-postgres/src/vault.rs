//! Vault-issued database credentials (docs/design.md §6.1 `GOSTINT_RUN_ROLEID`/`GOSTINT_RUN_SECRETID`,
//! `GOSTINT_DB_CREDS_ROLE`; §9 item 19: the original never renewed them).
//!
//! [`connect_with_vault_creds`] logs in with AppRole, reads `GET /v1/<mount>/creds/<role>`,
//! splices the username and password into the PostgreSQL URL and opens the store. A task of
//! the store's own then keeps the credentials alive: it renews the token
//! (`auth/token/renew-self`) and the lease (`PUT /v1/sys/leases/renew`) at half their
//! remaining life, and once either can no longer be extended by a full period (its max TTL
//! is near) it logs in again, reads new credentials, builds a new pool and swaps it in
//! (sqlx pools cannot change credentials), moves the store's listeners to it, and after a
//! grace period closes the old pool and revokes the old token (and so its lease). Failures
//! are logged and retried with backoff until the old credentials run out; nothing panics.
//! The task ends when the store is closed or dropped (and then revokes its token).
//!
//! The Vault role must create users whose tables belong to one owner role, or the second
//! user could not read what the first created and Vault could not drop the first. For
//! example, with `gostint_owner` owning the database:
//!
//! ```text
//! creation_statements:
//!   CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE gostint_owner;
//!   ALTER ROLE "{{name}}" SET role = 'gostint_owner';
//! revocation_statements:
//!   REASSIGN OWNED BY "{{name}}" TO gostint_owner; DROP OWNED BY "{{name}}"; DROP ROLE IF EXISTS "{{name}}";
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use gostint_core::{StoreError, VaultError};
use gostint_vault::{VaultBuildError, VaultClient, VaultConfig};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use tokio::time::Instant;

use crate::{connect_options, migrate, open_pool, Backend, PgJobStore, Shared};

/// The database role read when none is configured (`GOSTINT_DB_CREDS_ROLE`).
pub const DEFAULT_CREDS_ROLE: &str = "gostint-dbauth-role";

/// Where the database secrets engine is mounted unless configured otherwise.
pub const DEFAULT_MOUNT: &str = "database";

/// Shortest pause between two rotation attempts after a failure.
const MIN_RETRY: Duration = Duration::from_secs(1);

/// Longest the old pool is kept after a swap, for calls that had already picked it up.
const OLD_POOL_GRACE: Duration = Duration::from_secs(5);

/// How to get database credentials from Vault/OpenBao.
#[derive(Clone)]
pub struct VaultDbSettings {
    /// How to reach Vault: `VAULT_ADDR`, `VAULT_NAMESPACE`, `VAULT_CLIENT_TIMEOUT` and the
    /// TLS settings, exactly as for every other Vault call of the server (one client,
    /// [`gostint_vault::VaultClient`]).
    pub vault: VaultConfig,
    /// `GOSTINT_RUN_ROLEID`.
    pub role_id: String,
    /// `GOSTINT_RUN_SECRETID`.
    pub secret_id: SecretString,
    /// `GOSTINT_DB_CREDS_ROLE` ([`DEFAULT_CREDS_ROLE`]).
    pub creds_role: String,
    /// The database secrets engine's mount ([`DEFAULT_MOUNT`]).
    pub mount: String,
}

impl VaultDbSettings {
    /// Settings for `vault` and an AppRole, with the default role and mount.
    pub fn new(vault: VaultConfig, role_id: impl Into<String>, secret_id: SecretString) -> Self {
        Self {
            vault,
            role_id: role_id.into(),
            secret_id,
            creds_role: DEFAULT_CREDS_ROLE.to_string(),
            mount: DEFAULT_MOUNT.to_string(),
        }
    }
}

impl fmt::Debug for VaultDbSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultDbSettings")
            .field("addr", &self.vault.addr)
            .field("role_id", &self.role_id)
            .field("creds_role", &self.creds_role)
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

/// A Vault failure while getting or keeping database credentials. Messages never hold a
/// token, secret id, lease id or password.
#[derive(Debug, thiserror::Error)]
pub enum VaultCredsError {
    /// The Vault client could not be built (address, CA file, client certificate, TLS).
    #[error("cannot build the vault client")]
    Client(#[source] VaultBuildError),
    /// A mount or role name that cannot be part of a Vault path.
    #[error("invalid vault database secrets path {0:?}")]
    InvalidPath(String),
    /// Vault could not be reached, refused, or answered something unusable.
    #[error("vault {call} failed: {error}")]
    Vault {
        /// Which call.
        call: &'static str,
        /// Why (method, API path and Vault's errors; no secrets).
        error: VaultError,
    },
    /// Vault's answer lacks a field.
    #[error("vault {call}: the answer has no {what}")]
    Missing {
        /// Which call.
        call: &'static str,
        /// The field.
        what: &'static str,
    },
}

impl From<VaultCredsError> for StoreError {
    fn from(e: VaultCredsError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Connects a [`PgJobStore`] to `url` (a `postgres://` URL; any user and password in it are
/// replaced) with credentials read from Vault, migrates, and starts the task that renews
/// and rotates them (see the module docs).
///
/// # Errors
/// [`StoreError::Backend`] around a [`VaultCredsError`] (login or read refused, Vault
/// unreachable) or a [`crate::ConnectError`].
pub async fn connect_with_vault_creds(
    url: &str,
    settings: VaultDbSettings,
    max_connections: u32,
) -> Result<PgJobStore, StoreError> {
    let base = connect_options(url)?;
    let vault = Vault::new(&settings)?;
    let token = vault.login().await?;
    let creds = vault.read_creds(&token).await?;
    let options = creds.apply(base.clone());
    migrate(&options).await?;
    let pool = open_pool(&options, max_connections).await?;
    tracing::info!(user = %creds.username, lease_ttl = ?creds.lease.period, "PostgreSQL job store open with vault credentials");
    let store = PgJobStore::from_backend(Backend { pool, options });
    let keeper = Keeper { vault, base, max_connections, shared: store.shared().clone(), token, lease: creds.lease };
    // The store's own task: it ends when the store is closed or dropped (`closed`).
    tokio::spawn(keeper.run());
    Ok(store)
}

// ---------------------------------------------------------------- Vault calls

/// A token or a lease and how long it lives.
#[derive(Clone)]
struct Lived {
    /// Token or lease id.
    id: SecretString,
    /// The period asked for at each renewal (the first TTL).
    period: Duration,
    expires: Instant,
    renewable: bool,
}

impl Lived {
    fn new(id: SecretString, ttl: Duration, renewable: bool) -> Self {
        // A TTL of 0 means "does not expire" (e.g. a root token).
        let ttl = if ttl.is_zero() { Duration::from_secs(100 * 365 * 24 * 3600) } else { ttl };
        Self { id, period: ttl, expires: Instant::now() + ttl, renewable }
    }

    fn left(&self) -> Duration {
        self.expires.saturating_duration_since(Instant::now())
    }
}

struct Creds {
    username: String,
    password: SecretString,
    lease: Lived,
}

impl Creds {
    fn apply(&self, base: PgConnectOptions) -> PgConnectOptions {
        base.username(&self.username).password(self.password.expose_secret())
    }
}

/// The few calls the keeper makes, on the server's one Vault client.
#[derive(Clone)]
struct Vault {
    client: VaultClient,
    settings: VaultDbSettings,
    /// `<mount>/creds/<role>`.
    creds_path: String,
}

impl Vault {
    fn new(settings: &VaultDbSettings) -> Result<Self, VaultCredsError> {
        let client = VaultClient::new(&settings.vault).map_err(VaultCredsError::Client)?;
        let mount = settings.mount.trim_matches('/');
        let role = settings.creds_role.as_str();
        if mount.is_empty() || role.is_empty() || role.contains('/') {
            return Err(VaultCredsError::InvalidPath(format!("{mount}/creds/{role}")));
        }
        Ok(Self { client, settings: settings.clone(), creds_path: format!("{mount}/creds/{role}") })
    }

    /// `PUT auth/approle/login`.
    async fn login(&self) -> Result<Lived, VaultCredsError> {
        const CALL: &str = "AppRole login";
        let login = self
            .client
            .approle_login_lease(&self.settings.role_id, self.settings.secret_id.expose_secret())
            .await
            .map_err(|error| VaultCredsError::Vault { call: CALL, error })?;
        Ok(Lived::new(login.token, login.ttl, login.renewable))
    }

    /// `GET <mount>/creds/<role>`.
    async fn read_creds(&self, token: &Lived) -> Result<Creds, VaultCredsError> {
        const CALL: &str = "database credentials read";
        let secret = self
            .client
            .read_leased(token.id.expose_secret(), &self.creds_path)
            .await
            .map_err(|error| VaultCredsError::Vault { call: CALL, error })?;
        let field = |name: &'static str| {
            secret.data.get(name).and_then(Value::as_str).ok_or(VaultCredsError::Missing { call: CALL, what: name })
        };
        let username = field("username")?.to_string();
        let password = SecretString::from(field("password")?);
        Ok(Creds { username, password, lease: Lived::new(secret.lease_id, secret.ttl, secret.renewable) })
    }

    /// `PUT auth/token/renew-self`; returns whether the full period was granted.
    async fn renew_token(&self, token: &mut Lived) -> Result<bool, VaultCredsError> {
        let increment = format!("{}s", token.period.as_secs());
        let ttl = self
            .client
            .renew_self(token.id.expose_secret(), Some(&increment))
            .await
            .map_err(|error| VaultCredsError::Vault { call: "token renewal", error })?;
        let ttl = Duration::from_secs(ttl);
        token.expires = Instant::now() + ttl;
        Ok(ttl >= token.period)
    }

    /// `PUT sys/leases/renew`; returns whether the full period was granted.
    async fn renew_lease(&self, token: &Lived, lease: &mut Lived) -> Result<bool, VaultCredsError> {
        let ttl = self
            .client
            .renew_lease(token.id.expose_secret(), lease.id.expose_secret(), lease.period)
            .await
            .map_err(|error| VaultCredsError::Vault { call: "lease renewal", error })?;
        lease.expires = Instant::now() + ttl;
        Ok(ttl >= lease.period)
    }

    /// `PUT auth/token/revoke-self` (its leases go with it).
    async fn revoke(&self, token: &Lived) -> Result<(), VaultCredsError> {
        self.client
            .revoke_token(token.id.expose_secret())
            .await
            .map_err(|error| VaultCredsError::Vault { call: "token revocation", error })
    }
}

// ---------------------------------------------------------------- the keeper task

/// Keeps the store's credentials alive and rotates them.
struct Keeper {
    vault: Vault,
    base: PgConnectOptions,
    max_connections: u32,
    shared: Arc<Shared>,
    token: Lived,
    lease: Lived,
}

impl Keeper {
    /// When the current credentials stop working: the lease ends, or the token (and with
    /// it the lease).
    fn expires(&self) -> Instant {
        self.lease.expires.min(self.token.expires)
    }

    async fn run(mut self) {
        let closed = self.shared.closed.clone();
        let mut must_rotate = false;
        loop {
            let left = self.expires().saturating_duration_since(Instant::now());
            // Half the remaining life: time for a retry or a rotation before the end.
            let wait = if must_rotate { Duration::ZERO } else { left / 2 };
            tokio::select! {
                () = closed.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            if !must_rotate {
                must_rotate = !self.renew().await;
                if !must_rotate {
                    continue;
                }
            }
            match self.rotate().await {
                Ok(()) => must_rotate = false,
                Err(error) => {
                    let left = self.expires().saturating_duration_since(Instant::now());
                    let retry = (left / 4).max(MIN_RETRY);
                    tracing::error!(error = %error, credentials_left = ?left, retry_in = ?retry,
                        "cannot rotate the vault database credentials");
                    tokio::select! {
                        () = closed.cancelled() => break,
                        () = tokio::time::sleep(retry) => {}
                    }
                }
            }
        }
        // Closed: the credentials are no longer needed.
        if let Err(error) = self.vault.revoke(&self.token).await {
            tracing::debug!(error = %error, "vault token not revoked at close");
        }
    }

    /// Renews token and lease; false when either cannot be extended by its full period
    /// (or cannot be renewed at all), i.e. time to rotate.
    async fn renew(&mut self) -> bool {
        let token_ok = if self.token.renewable {
            match self.vault.renew_token(&mut self.token).await {
                Ok(full) => full,
                Err(error) => {
                    tracing::warn!(error = %error, "vault token renewal failed");
                    false
                }
            }
        } else {
            self.token.left() > self.token.period / 2
        };
        let lease_ok = if self.lease.renewable {
            match self.vault.renew_lease(&self.token, &mut self.lease).await {
                Ok(full) => full,
                Err(error) => {
                    tracing::warn!(error = %error, "vault database lease renewal failed");
                    false
                }
            }
        } else {
            self.lease.left() > self.lease.period / 2
        };
        tracing::debug!(token_left = ?self.token.left(), lease_left = ?self.lease.left(), token_ok, lease_ok,
            "vault database credentials renewed");
        token_ok && lease_ok
    }

    /// New token, new credentials, new pool; the old pool closes after a grace period and
    /// the old token is revoked after it.
    async fn rotate(&mut self) -> Result<(), StoreError> {
        let token = self.vault.login().await?;
        let creds = match self.vault.read_creds(&token).await {
            Ok(creds) => creds,
            Err(e) => {
                let _ = self.vault.revoke(&token).await;
                return Err(e.into());
            }
        };
        let options = creds.apply(self.base.clone());
        let pool = match open_pool(&options, self.max_connections).await {
            Ok(pool) => pool,
            Err(e) => {
                let _ = self.vault.revoke(&token).await;
                return Err(e.into());
            }
        };
        let old = self.shared.swap(Backend { pool, options });
        tracing::info!(user = %creds.username, lease_ttl = ?creds.lease.period, "vault database credentials rotated");
        let old_token = std::mem::replace(&mut self.token, token);
        self.lease = creds.lease;
        let grace = (old_token.left().min(self.lease.left()) / 2).min(OLD_POOL_GRACE);
        let vault = self.vault.clone();
        // Calls that picked up the old pool just before the swap finish on it first.
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            old.pool.close().await;
            if let Err(error) = vault.revoke(&old_token).await {
                tracing::debug!(error = %error, "old vault token not revoked");
            }
        });
        Ok(())
    }
}

impl PgJobStore {
    /// How many times the connection pool has been replaced (credential rotations).
    pub fn pool_generation(&self) -> u64 {
        *self.shared().generation.borrow()
    }
}
