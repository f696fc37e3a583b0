//! `gostint`: the server binary.

use clap::{Parser, Subcommand};

/// gostint: runs automation jobs in Docker containers, with Vault/OpenBao for
/// authentication, secret injection and end-to-end encryption of job payloads.
///
/// Configuration comes from GOSTINT_* and VAULT_* environment variables (see README.md).
#[derive(Parser)]
#[command(name = "gostint", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the v1 API on GOSTINT_PORT (3232) and run jobs (the default).
    Serve,
}

fn init_tracing(debug: bool) {
    // GOSTINT_DEBUG raises gostint's own crates only (SPEC.md §11); RUST_LOG overrides.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(gostint_server::log_filter(debug)));
    tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).init();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = match gostint_config::Settings::from_env() {
                Ok(s) => s,
                Err(e) => {
                    // Every bad setting at once, one per line, each naming its variable.
                    for one in e.all() {
                        eprintln!("gostint: configuration error: {one}");
                    }
                    return std::process::ExitCode::from(2);
                }
            };
            init_tracing(settings.debug);
            match gostint_server::run(settings).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "gostint failed");
                    eprintln!("gostint: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
