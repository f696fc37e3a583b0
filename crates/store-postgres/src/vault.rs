//! Vault-issued database credentials (SPEC.md §6.1): not written yet.
