//! `gostint-client` end to end: the client binary against the real `gostint` binary (HTTPS
//! with a generated self-signed pair, trusted through `-ca-cert`), the real OpenBao and the
//! real Docker engine. Without them (no `scripts/services up`) the tests print `skipped: …`
//! and pass, unless `GOSTINT_TEST_REQUIRE` names the missing service. `--help` needs nothing.

mod client2;
mod help;
mod live;
mod run;
mod subcommands;
mod support;
