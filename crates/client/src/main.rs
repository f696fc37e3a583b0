//! `gostint-client`: see the library's documentation and `gostint-client --help`.
//!
//! Two packaging commands are handled here, before the client proper:
//! `gostint-client completions <bash|zsh|fish|elvish|powershell>` prints a completion
//! script, `gostint-client man <dir>` writes the man pages.

use clap::CommandFactory;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("completions") => {
            let shell = argv.get(2).and_then(|s| s.parse::<clap_complete::Shell>().ok());
            let Some(shell) = shell else {
                eprintln!("usage: gostint-client completions <bash|zsh|fish|elvish|powershell>");
                return std::process::ExitCode::from(2);
            };
            let mut cmd = gostint_client::args::Cli::command();
            clap_complete::generate(shell, &mut cmd, "gostint-client", &mut std::io::stdout());
            std::process::ExitCode::SUCCESS
        }
        Some("man") => {
            let Some(dir) = argv.get(2) else {
                eprintln!("usage: gostint-client man <directory>");
                return std::process::ExitCode::from(2);
            };
            let written = std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(gostint_client::args::Cli::command(), dir));
            match written {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gostint-client: writing man pages into {dir}: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        _ => std::process::ExitCode::from(gostint_client::main_with(argv).await),
    }
}
