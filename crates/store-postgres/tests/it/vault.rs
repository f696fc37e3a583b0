//! Vault-issued credentials: not written yet.
