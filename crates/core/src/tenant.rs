//! Tenants (docs/design.md §10): a tenant is a job AppRole. Its name is the AppRole's name and the
//! transit key of its payloads; its role_id is what a node logs in with. The set comes from
//! `GOSTINT_APPROLES` / `GOSTINT_APPROLES_FILE` (re-read on SIGHUP) or, when those are unset,
//! is the one tenant `GOSTINT_ROLENAME:GOSTINT_ROLEID` of a single-tenant deployment.

use std::sync::{Arc, RwLock};

/// One tenant: a job AppRole gostint accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The AppRole's name, also its transit key and its queue namespace.
    pub name: String,
    /// The AppRole's role_id (not a secret on its own, but kept out of logs anyway).
    pub role_id: String,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A `GOSTINT_APPROLES` entry that cannot be used; the message names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg} (entry {entry:?})")]
pub struct TenantError {
    /// The entry as written (role_id included: it is not secret on its own).
    pub entry: String,
    /// What is wrong.
    pub msg: String,
}

/// Longest tenant name (a transit key and an AppRole name, a metric label).
pub const MAX_TENANT_NAME: usize = 64;

/// Whether `name` can be both an AppRole name and a transit key name, and a metric label:
/// 1 to 64 of `a-z 0-9 - _`, starting with a letter or digit. Upper case is refused because
/// Vault folds AppRole names to lower case while transit key names are case-sensitive.
///
/// # Errors
/// What is wrong with it, for a person to fix.
pub fn validate_tenant_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty tenant name".into());
    }
    if name.len() > MAX_TENANT_NAME {
        return Err(format!("tenant name longer than {MAX_TENANT_NAME} characters"));
    }
    if !name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return Err("a tenant name must start with a lower-case letter or a digit".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
        return Err(format!(
            "tenant name has {c:?}: only lower-case letters, digits, '-' and '_' can name both an AppRole and a transit key"
        ));
    }
    Ok(())
}

/// The accepted tenants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenants {
    list: Vec<Tenant>,
    /// Single-tenant set-up without `GOSTINT_ROLENAME`: the one tenant has no name, so the
    /// creation-path check accepts a secret-id of any AppRole (the login with the one
    /// role_id still refuses another role's secret-id), and payloads cannot be decrypted.
    unnamed: bool,
}

impl Tenants {
    /// The single-tenant set-up: `GOSTINT_ROLENAME:GOSTINT_ROLEID` (name may be unset).
    pub fn single(name: Option<String>, role_id: String) -> Self {
        let unnamed = name.is_none();
        Self { list: vec![Tenant { name: name.unwrap_or_default(), role_id }], unnamed }
    }

    /// Parses `name:role_id` entries separated by commas and/or new lines; `#` starts a
    /// comment to the end of the line; blank entries are skipped.
    ///
    /// # Errors
    /// The first malformed entry, a name that cannot be an AppRole and a transit key, a
    /// name given twice, or no entry at all.
    pub fn parse(text: &str) -> Result<Self, TenantError> {
        let mut list: Vec<Tenant> = Vec::new();
        for line in text.lines() {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            for entry in line.split(',') {
                let entry = entry.trim();
                if entry.is_empty() {
                    continue;
                }
                let bad = |msg: String| TenantError { entry: entry.to_string(), msg };
                let Some((name, role_id)) = entry.split_once(':') else {
                    return Err(bad("expected name:role_id".into()));
                };
                let (name, role_id) = (name.trim(), role_id.trim());
                validate_tenant_name(name).map_err(bad)?;
                if role_id.is_empty() || role_id.contains(char::is_whitespace) || role_id.contains(':') {
                    return Err(bad("missing or malformed role_id after the ':'".into()));
                }
                if list.iter().any(|t| t.name == name) {
                    return Err(bad(format!("tenant {name} is given twice")));
                }
                list.push(Tenant { name: name.to_string(), role_id: role_id.to_string() });
            }
        }
        if list.is_empty() {
            return Err(TenantError { entry: text.trim().to_string(), msg: "no name:role_id entry".into() });
        }
        Ok(Self { list, unnamed: false })
    }

    /// Every tenant, in configuration order.
    pub fn all(&self) -> &[Tenant] {
        &self.list
    }

    /// The tenant called `name`.
    pub fn get(&self, name: &str) -> Option<&Tenant> {
        self.list.iter().find(|t| t.name == name)
    }

    /// Whether this is the single-tenant set-up without a role name.
    pub fn is_unnamed(&self) -> bool {
        self.unnamed
    }

    /// The tenant whose AppRole minted a secret-id wrapped at `creation_path` (Vault's
    /// `sys/wrapping/lookup` answer): only `auth/approle/role/<name>/secret-id` for a
    /// configured name. A re-wrapped secret-id (`sys/wrapping/wrap`), any other path or an
    /// unconfigured role → `None`.
    pub fn by_creation_path(&self, creation_path: &str) -> Option<&Tenant> {
        let role = creation_path.strip_prefix("auth/approle/role/")?.strip_suffix("/secret-id")?;
        if role.is_empty() || role.contains('/') {
            return None;
        }
        if self.unnamed {
            return self.list.first();
        }
        // Vault folds AppRole names to lower case: `Role-A` and `role-a` are one role.
        self.list.iter().find(|t| t.name.eq_ignore_ascii_case(role))
    }
}

/// The live tenant set, shared by the API and the worker; replaced whole on SIGHUP.
#[derive(Clone, Debug)]
pub struct TenantRegistry(Arc<RwLock<Arc<Tenants>>>);

impl TenantRegistry {
    /// A registry holding `tenants`.
    pub fn new(tenants: Tenants) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(tenants))))
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<Tenants> {
        // A poisoned lock only means a panic while swapping one Arc for another.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new set in force (jobs already queued keep their tenant name; one whose
    /// tenant was removed ends `notauthorised` at run time).
    pub fn replace(&self, tenants: Tenants) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tenants);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_files() {
        let t = Tenants::parse("team-a:111, team_b:222\n# comment\nc3:333 # trailing\n\n").unwrap();
        let names: Vec<_> = t.all().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["team-a", "team_b", "c3"]);
        assert_eq!(t.get("team_b").unwrap().role_id, "222");
    }

    #[test]
    fn malformed_entries_are_named() {
        let e = Tenants::parse("a:1,broken").unwrap_err();
        assert_eq!(e.entry, "broken");
        assert!(e.to_string().contains("name:role_id"), "{e}");
        let e = Tenants::parse("Team:1").unwrap_err();
        assert!(e.to_string().contains("\"Team:1\""), "{e}");
        assert!(Tenants::parse("a/b:1").is_err());
        assert!(Tenants::parse("-a:1").is_err());
        assert!(Tenants::parse("a:").is_err());
        assert!(Tenants::parse("a:1,a:2").unwrap_err().msg.contains("twice"));
        assert!(Tenants::parse(" , # nothing").is_err());
        assert!(Tenants::parse(&format!("{}:1", "x".repeat(65))).is_err());
    }

    #[test]
    fn creation_path_names_a_configured_approle_only() {
        let t = Tenants::parse("a:1,b:2").unwrap();
        assert_eq!(t.by_creation_path("auth/approle/role/a/secret-id").unwrap().name, "a");
        assert_eq!(t.by_creation_path("auth/approle/role/B/secret-id").unwrap().name, "b");
        assert!(t.by_creation_path("sys/wrapping/wrap").is_none());
        assert!(t.by_creation_path("auth/approle/role/c/secret-id").is_none());
        assert!(t.by_creation_path("auth/approle/role/a/custom-secret-id").is_none());
        assert!(t.by_creation_path("auth/approle/role/a/x/secret-id").is_none());
        let single = Tenants::single(None, "r".into());
        assert!(single.by_creation_path("auth/approle/role/any/secret-id").is_some());
        assert!(single.by_creation_path("sys/wrapping/wrap").is_none());
    }
}
