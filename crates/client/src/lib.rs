//! `gostint-client`: the requestor's CLI for gostint (docs/design.md §7).
//!
//! By default it runs the secure flow: a short-lived `default` API token (the only token
//! gostint ever sees), a response-wrapped secret id for gostint's AppRole, the job JSON
//! base64-encoded and transit-encrypted, parked at `cubbyhole/job` of a token limited to 2
//! uses, then the POST of the wrapper only; it polls to the end, prints the job's output and
//! stderr byte for byte, exits with the job's return code, and revokes every token it made on
//! every exit path (signals included). `--plain` posts the job itself with the wrapped secret
//! id. `status`, `list`, `kill` and `delete` cover everyday work.
//!
//! Choices where docs/design.md is silent:
//! - **Subcommand token**: `status`/`list`/`kill`/`delete` act with the requestor's own token
//!   (after an AppRole login: that login's token, revoked at exit), not with a child. gostint's
//!   tenant is the token's entity, else `accessor:<accessor>`; an AppRole login has an entity,
//!   shared by the child API token `run` used, so jobs `run` submitted are visible; a child
//!   of an entity-less token would be a different tenant (and a root token's `default` child
//!   would lose the admin view), so a child would help no one. An entity-less non-admin token
//!   only sees jobs submitted with that very token.
//! - **Exit codes** ([`exit`]): 2 usage/Vault/HTTP, 120 `notauthorised`, 121 `unknown`,
//!   130/143 interrupted; job return codes pass through.
//! - **Original spellings** ([`args::normalise`]): a single dash before a known long flag
//!   becomes two; booleans take a value only after `=` (as Go's `flag` does).
//!
//! Start at [`main_with`]. [`args`] is the command line, [`job`] the job definition and
//! content packing, [`session`] the Vault side (on `gostint-vault`), [`api`] gostint's HTTP
//! API, [`flow`] the commands, [`output`] what is written where. This crate must not depend
//! on the server's crates (api, store, worker): it speaks to gostint only over HTTP.
#![warn(missing_docs)]

pub mod api;
pub mod args;
pub mod colour;
pub mod exit;
pub mod flow;
pub mod job;
pub mod more;
pub mod output;
pub mod pin;
pub mod renew;
pub mod session;
pub mod stream;

use clap::Parser;

/// Parses `argv` (the original spellings accepted) and runs the command; returns the
/// process exit code. Errors are printed on stderr as `gostint-client: error: …`.
pub async fn main_with(argv: Vec<String>) -> u8 {
    // reqwest and gostint-vault use rustls; the workspace builds it with ring only, but
    // name the provider so a second one showing up in the tree cannot make TLS panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match args::Cli::try_parse_from(args::normalise(argv)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::ERROR } else { exit::SUCCESS };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        args::Command::Run(a) => {
            colour::set(a.common.color);
            init_tracing(a.common.debug);
            flow::run(*a).await
        }
        args::Command::Status(a) => {
            colour::set(a.common.color);
            init_tracing(a.common.debug);
            flow::status(a).await
        }
        args::Command::List(a) => {
            colour::set(a.common.color);
            init_tracing(a.common.debug);
            flow::list(a).await
        }
        args::Command::Kill(a) => {
            colour::set(a.common.color);
            init_tracing(a.common.debug);
            flow::act(a, true).await
        }
        args::Command::Delete(a) => {
            colour::set(a.common.color);
            init_tracing(a.common.debug);
            flow::act(a, false).await
        }
        args::Command::Logs(a) => {
            colour::set(a.common.color);
            init_tracing(a.common.debug);
            crate::more::logs(a).await
        }
        args::Command::Wait(a) => {
            colour::set(a.common.color);
            init_tracing(a.common.debug);
            crate::more::wait(a).await
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::write_stderr(format!("gostint-client: error: {e:#}\n").as_bytes());
            exit::ERROR
        }
    }
}

/// With `--debug`, `gostint-vault`'s own debug events (each Vault call and its HTTP status;
/// never a token) go to stderr too; `RUST_LOG` overrides the filter.
fn init_tracing(debug: bool) {
    if !debug {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("gostint_vault=debug"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
