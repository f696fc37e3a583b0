//! `gostint-client`: the requestor's CLI. By default it runs the seed's secure flow: a
//! short-lived `default` API token, a response-wrapped secret id for gostint's AppRole, the
//! job JSON transit-encrypted and parked in a 2-use cubbyhole token, the POST of the wrapper
//! only, polling to the end, and the revocation of every token it made.
//!
//! Start at [`main_with`]; [`args`] holds the command line, [`job`] the job definition,
//! [`flow`] the Vault and HTTP calls.
#![warn(missing_docs)]

pub mod args;
pub mod flow;
pub mod job;

use clap::Parser;

/// Parses `argv` (original spellings accepted) and runs; returns the process exit code.
pub async fn main_with(argv: Vec<String>) -> u8 {
    let cli = match args::Cli::try_parse_from(args::normalise(argv)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { flow::EXIT_ERROR } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        args::Command::Run(a) => flow::run(*a).await,
        args::Command::Status(a) => flow::status(a).await,
        args::Command::List(a) => flow::list(a).await,
        args::Command::Kill(a) => flow::act(a, true).await,
        args::Command::Delete(a) => flow::act(a, false).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gostint-client: {e:#}");
            flow::EXIT_ERROR
        }
    }
}
