# gostint-requestor-TENANT: what a requestor of tenant TENANT needs for gostint-client's
# secure flow (docs/design.md §1, §10): response-wrapped secret-ids of the tenant's AppRole only,
# encryption with the tenant's transit key only, short-lived child tokens (the API token
# and the 2-use cubbyhole token), and its own cubbyhole. It can neither mint another
# tenant's secret-id nor encrypt for another tenant's key.
# scripts/vault-add-tenant replaces TENANT with the tenant's name.
path "auth/approle/role/TENANT/secret-id" {
  capabilities = ["update"]
}
path "transit/encrypt/TENANT" {
  capabilities = ["update"]
}
path "auth/token/create" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
path "cubbyhole/*" {
  capabilities = ["create", "update", "read"]
}
# The tenant's own secrets (to put what its jobs will read).
path "kv/data/TENANT/*" {
  capabilities = ["create", "update", "read"]
}
