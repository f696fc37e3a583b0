//! The requestor's Vault side (docs/design.md §7 steps 2–7) on `gostint-vault`'s [`VaultClient`],
//! with the bookkeeping that lets [`Session::close`] revoke every token the client made.

use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{anyhow, bail, Context};
use gostint_core::JobVault;
use gostint_vault::{CreatedToken, VaultClient, VaultConfig};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::args::{value_or_file, Common};
use crate::output::Diag;

/// Where the encrypted job waits for gostint (docs/design.md §3.1 mode B).
pub const CUBBY_PATH: &str = "cubbyhole/job";
/// Uses of the cubbyhole token: our write, gostint's read. A third reader (an interceptor
/// first, or gostint after one) fails, and gostint raises its interception alert.
pub const CUBBY_USES: u32 = 2;
/// The cubbyhole is read when gostint accepts the POST, moments after it is written.
pub const CUBBY_TTL: &str = "15m";

/// How the requestor proves who it is.
pub enum Credentials {
    /// A Vault token (`--vault-token` / `VAULT_TOKEN`).
    Token(SecretString),
    /// An AppRole login (`--vault-roleid` + `--vault-secretid`); the token it yields is
    /// the client's own and revoked at exit.
    AppRole {
        /// role_id.
        role_id: SecretString,
        /// secret_id.
        secret_id: SecretString,
    },
}

impl Credentials {
    /// From the command line: AppRole credentials when both are given (they win over a
    /// token, so a `VAULT_TOKEN` in the environment does not get in the way), else the token.
    ///
    /// # Errors
    /// Only one of role id and secret id, no credentials at all, unreadable `@file`s.
    pub fn from_args(common: &Common) -> anyhow::Result<Self> {
        match (&common.vault_token, &common.vault_roleid, &common.vault_secretid) {
            (_, Some(role), Some(secret)) => Ok(Credentials::AppRole {
                role_id: value_or_file("vault-roleid", role)?.into(),
                secret_id: value_or_file("vault-secretid", secret)?.into(),
            }),
            (_, Some(_), None) | (_, None, Some(_)) => {
                bail!("--vault-roleid and --vault-secretid go together")
            }
            (Some(token), None, None) => {
                let token = value_or_file("vault-token", token)?;
                if token.trim().is_empty() {
                    bail!("--vault-token (or VAULT_TOKEN) is empty");
                }
                Ok(Credentials::Token(token.trim().to_string().into()))
            }
            (None, None, None) => {
                bail!("no Vault credentials: give --vault-token (or VAULT_TOKEN), or --vault-roleid with --vault-secretid")
            }
        }
    }
}

/// The Vault client for the requestor, from `--vault-url` and the `VAULT_*` settings.
///
/// # Errors
/// A malformed address or namespace, an unreadable CA file.
pub fn vault_client(common: &Common, diag: &Diag) -> anyhow::Result<VaultClient> {
    let mut config = VaultConfig::new(common.vault_url.clone());
    config.ca_cert = common.vault_ca_cert.clone().filter(|p| !p.as_os_str().is_empty());
    let path = |p: &Option<std::path::PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    config.ca_path = path(&common.vault_ca_path);
    config.client_cert = path(&common.vault_client_cert);
    config.client_key = path(&common.vault_client_key);
    config.tls_server_name = common.vault_tls_server_name.clone().filter(|n| !n.trim().is_empty());
    config.skip_verify = common.vault_skip_verify;
    config.namespace = common.vault_namespace.clone().filter(|n| !n.is_empty());
    if config.skip_verify {
        diag.warn("TLS verification of Vault is OFF (--vault-skip-verify / VAULT_SKIP_VERIFY)");
    }
    VaultClient::new(&config).context("--vault-url / VAULT_*: cannot set up the Vault client")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The AppRole login token.
    Login,
    /// The `default` token gostint sees.
    Api,
    /// The 2-use token holding the ciphertext: normally spent by gostint.
    Cubby,
    /// The wrapping token of gostint's secret id: handed to gostint by a successful POST,
    /// else revoked at [`Session::close`].
    Wrap,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Login => "AppRole login token",
            Kind::Api => "API token",
            Kind::Cubby => "cubbyhole token",
            Kind::Wrap => "wrapping token of the secret id",
        }
    }
}

struct Made {
    kind: Kind,
    token: SecretString,
    accessor: String,
}

/// One requestor's Vault session: the login, the tokens made on its behalf, and their
/// revocation. Methods take `&self` so that a signal handler can still [`close`](Self::close)
/// the session after the flow using it was dropped.
pub struct Session {
    vault: VaultClient,
    diag: Diag,
    login: Mutex<Option<SecretString>>,
    made: Mutex<Vec<Made>>,
    job_id: Mutex<Option<String>>,
    /// The wrapping token until gostint has it (a successful POST).
    wrap: Mutex<Option<Made>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one still holds good data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Session {
    /// A session on `vault`, not logged in yet.
    pub fn new(vault: VaultClient, diag: Diag) -> Self {
        Self {
            vault,
            diag,
            login: Mutex::new(None),
            made: Mutex::new(Vec::new()),
            job_id: Mutex::new(None),
            wrap: Mutex::new(None),
        }
    }

    /// The Vault client.
    pub fn vault(&self) -> &VaultClient {
        &self.vault
    }

    fn record(&self, kind: Kind, token: SecretString, accessor: String, detail: &str) {
        self.diag.debug(format!("made {} (accessor {accessor}{detail})", kind.label()));
        locked(&self.made).push(Made { kind, token, accessor });
    }

    fn login_token(&self) -> anyhow::Result<SecretString> {
        locked(&self.login).clone().ok_or_else(|| anyhow!("not logged in to Vault"))
    }

    /// Logs in (AppRole) or takes the token, and checks it with `lookup-self` (docs/design.md §7.2).
    /// Returns the requestor's token.
    ///
    /// # Errors
    /// A refused login or token, Vault unreachable.
    pub async fn login(&self, credentials: Credentials) -> anyhow::Result<SecretString> {
        let token = match credentials {
            Credentials::Token(token) => token,
            Credentials::AppRole { role_id, secret_id } => {
                let token = self
                    .vault
                    .approle_login(role_id.expose_secret(), secret_id.expose_secret())
                    .await
                    .context("Vault AppRole login (--vault-roleid/--vault-secretid)")?
                    .ok_or_else(|| anyhow!("Vault AppRole login returned no token"))?;
                let token = SecretString::from(token);
                // Recorded before the lookup: if that fails, the token is still revoked.
                *locked(&self.login) = Some(token.clone());
                let info = self.vault.lookup_self(token.expose_secret()).await;
                let accessor = info.as_ref().map(|i| i.accessor.clone()).unwrap_or_default();
                self.record(Kind::Login, token.clone(), accessor, "");
                info.context("checking the AppRole login token (lookup-self)")?;
                return Ok(token);
            }
        };
        let info =
            self.vault.lookup_self(token.expose_secret()).await.context("checking the Vault token (lookup-self)")?;
        self.diag.debug(format!(
            "requestor token checked ({}; policies {})",
            if info.entity_id.is_empty() { "no entity" } else { "has an entity" },
            info.policies.join(",")
        ));
        *locked(&self.login) = Some(token.clone());
        Ok(token)
    }

    /// A child `default` token gostint sees instead of the requestor's (docs/design.md §7.3),
    /// revoked at [`close`](Self::close).
    ///
    /// # Errors
    /// The requestor may not create tokens; Vault unreachable.
    pub async fn api_token(&self, ttl: &str) -> anyhow::Result<SecretString> {
        let login = self.login_token()?;
        let CreatedToken { token, accessor } = self
            .vault
            .create_token(login.expose_secret(), &["default"], ttl, None, Some("gostint-client"))
            .await
            .context("creating the API token (auth/token/create)")?;
        self.record(Kind::Api, token.clone(), accessor, &format!(", ttl {ttl}"));
        Ok(token)
    }

    /// A response-wrapped secret id for gostint's AppRole (docs/design.md §7.4).
    ///
    /// # Errors
    /// The requestor may not mint secret ids for `approle`; Vault unreachable.
    pub async fn wrapped_secret_id(&self, approle: &str, wrap_ttl: &str) -> anyhow::Result<SecretString> {
        let login = self.login_token()?;
        let CreatedToken { token, accessor } = self
            .vault
            .wrapped_secret_id_made(login.expose_secret(), approle, wrap_ttl)
            .await
            .with_context(|| format!("getting a wrapped secret id for AppRole {approle:?}"))?;
        self.diag.debug(format!("wrapped secret id for {approle} (wrapping accessor {accessor}, wrap ttl {wrap_ttl})"));
        *locked(&self.wrap) = Some(Made { kind: Kind::Wrap, token: token.clone(), accessor });
        Ok(token)
    }

    /// `transit/encrypt/<key>` of `plaintext_b64` (docs/design.md §7.5).
    ///
    /// # Errors
    /// The requestor may not use the key; Vault unreachable.
    pub async fn encrypt(&self, key: &str, plaintext_b64: &str) -> anyhow::Result<String> {
        let login = self.login_token()?;
        let ciphertext = self
            .vault
            .transit_encrypt(login.expose_secret(), key, plaintext_b64)
            .await
            .with_context(|| format!("encrypting the job (transit/encrypt/{key})"))?;
        self.diag.debug(format!("job encrypted with transit key {key}"));
        Ok(ciphertext)
    }

    /// A `default` token limited to [`CUBBY_USES`] uses and [`CUBBY_TTL`], holding
    /// `{"payload": ciphertext}` at [`CUBBY_PATH`] (docs/design.md §7.6–7): one use spent on the
    /// write, one left for gostint.
    ///
    /// # Errors
    /// The requestor may not create tokens; the write fails.
    pub async fn park(&self, ciphertext: &str) -> anyhow::Result<SecretString> {
        let login = self.login_token()?;
        let CreatedToken { token, accessor } = self
            .vault
            .create_token(
                login.expose_secret(),
                &["default"],
                CUBBY_TTL,
                Some(CUBBY_USES),
                Some("gostint-client-cubby"),
            )
            .await
            .context("creating the cubbyhole token (auth/token/create)")?;
        self.record(Kind::Cubby, token.clone(), accessor, &format!(", {CUBBY_USES} uses, ttl {CUBBY_TTL}"));
        self.vault
            .write(token.expose_secret(), CUBBY_PATH, &json!({ "payload": ciphertext }))
            .await
            .with_context(|| format!("parking the encrypted job at {CUBBY_PATH}"))?;
        Ok(token)
    }

    /// Notes the submitted job's id (named if the wait is interrupted). gostint accepted
    /// the job, so the wrapping token is its now: [`close`](Self::close) leaves it alone.
    pub fn note_job(&self, id: &str) {
        *locked(&self.wrap) = None;
        *locked(&self.job_id) = Some(id.to_string());
    }

    /// Renews the API token (and the AppRole login token, its parent, when this session
    /// made it) by `increment`; returns the API token's new TTL in seconds, `None` when
    /// there is no API token yet.
    ///
    /// # Errors
    /// Vault refuses the renewal (not renewable, expired, revoked).
    pub async fn renew(&self, increment: &str) -> anyhow::Result<Option<u64>> {
        let tokens: Vec<(Kind, SecretString)> = locked(&self.made)
            .iter()
            .filter(|m| matches!(m.kind, Kind::Api | Kind::Login))
            .map(|m| (m.kind, m.token.clone()))
            .collect();
        if !tokens.iter().any(|(k, _)| *k == Kind::Api) {
            return Ok(None);
        }
        let mut api_ttl = None;
        for (kind, token) in tokens {
            let ttl = self
                .vault
                .renew_self(token.expose_secret(), Some(increment))
                .await
                .with_context(|| format!("renewing the {} (auth/token/renew-self)", kind.label()))?;
            self.diag.debug(format!("renewed the {} (ttl now {ttl}s)", kind.label()));
            if kind == Kind::Api {
                api_ttl = Some(ttl);
            }
        }
        Ok(api_ttl)
    }

    /// The submitted job's id, once known.
    pub fn job_id(&self) -> Option<String> {
        locked(&self.job_id).clone()
    }

    /// Accessors of every token this session made, in order.
    pub fn accessors(&self) -> Vec<String> {
        locked(&self.made).iter().map(|m| m.accessor.clone()).collect()
    }

    /// Revokes every token this session made, newest first, each with its own authority
    /// (`revoke-self`, so no extra capability is needed). A cubbyhole token gostint spent
    /// is already gone: that failure is expected and only shown with `--debug`; any other
    /// failure is a warning. Never fails: it runs on every exit path.
    pub async fn close(&self) {
        let wrap = locked(&self.wrap).take();
        if let Some(w) = wrap {
            self.revoke_wrap(&w).await;
        }
        let made: Vec<Made> = std::mem::take(&mut *locked(&self.made));
        for m in made.iter().rev() {
            match self.vault.revoke_token(m.token.expose_secret()).await {
                Ok(()) => self.diag.debug(format!("revoked {} (accessor {})", m.kind.label(), m.accessor)),
                Err(e) if m.kind == Kind::Cubby => self.diag.debug(format!(
                    "{} (accessor {}) already spent or revoked: {}",
                    m.kind.label(),
                    m.accessor,
                    e.message
                )),
                Err(e) => self.diag.warn(&format!(
                    "could not revoke the {} (accessor {}): {}; it expires with its TTL",
                    m.kind.label(),
                    m.accessor,
                    e.message
                )),
            }
        }
        *locked(&self.login) = None;
    }

    /// The wrapping token never reached gostint (the POST failed, or the run stopped before
    /// it): revoked with its own authority, else used up by unwrapping it (the secret id
    /// inside is dropped at once), so no one can use it during the rest of its TTL.
    async fn revoke_wrap(&self, w: &Made) {
        let gone = match self.vault.revoke_token(w.token.expose_secret()).await {
            Ok(()) => Ok(()),
            Err(_) => self.vault.unwrap(w.token.expose_secret()).await.map(drop),
        };
        match gone {
            Ok(()) => self.diag.debug(format!("revoked the {} (accessor {})", w.kind.label(), w.accessor)),
            Err(e) => self.diag.warn(&format!(
                "could not revoke the {} (accessor {}): {}; it expires with its wrap TTL",
                w.kind.label(),
                w.accessor,
                e.message
            )),
        }
    }
}
