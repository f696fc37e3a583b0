//! gostint-vault's tests: `live` against the dev OpenBao server (skipped without one, unless
//! `GOSTINT_TEST_REQUIRE` names `vault`), `fake` and `tls` against in-process fake servers
//! (always run).

mod bao_tls;
mod fake;
mod live;
mod support;
mod tls;
