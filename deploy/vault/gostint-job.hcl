# gostint-job-TENANT: the policy of tenant TENANT's job AppRole (docs/design.md §10). A job's token
# (gostint logs in with the tenant's role_id and the job's secret-id) may read only the
# tenant's own secrets and decrypt only payloads encrypted with the tenant's transit key.
# scripts/vault-add-tenant replaces TENANT with the tenant's name.
path "kv/data/TENANT/*" {
  capabilities = ["read"]
}
path "kv/metadata/TENANT/*" {
  capabilities = ["read"]
}
path "transit/decrypt/TENANT" {
  capabilities = ["update"]
}
# A job may end its own token early.
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
