//! `gostint`: the server binary.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

/// With the `mimalloc` feature, mimalloc is the allocator (RELIABILITY.md, item 11: how much
/// memory each allocator gives back after a burst).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// gostint: runs automation jobs in Docker containers, with Vault/OpenBao for
/// authentication, secret injection and end-to-end encryption of job payloads.
///
/// Configuration comes from GOSTINT_* and VAULT_* environment variables: `gostint config
/// show` lists them with their values; the README's configuration table explains each.
/// Documentation: https://github.com/gostint/gostint (README.md, docs/).
#[derive(Parser)]
#[command(name = "gostint", version = gostint_core::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the v1 API on GOSTINT_PORT (3232) and run jobs (the default).
    Serve,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Check that Vault, the job role id, Docker, the store and the certificate are usable:
    /// one line each; exit 0 when all are, 1 when one is not, 2 for unparseable settings.
    Check {
        /// Seconds each part may take.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Print a shell completion script for gostint to stdout.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (gostint.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Every setting, its value and where it came from (env, default, unset); passwords
    /// and tokens are shown as <redacted>. Exit 2 when the settings do not parse.
    Show,
}

/// The JSON log on stdout and, when an OTLP endpoint is set, the trace exporter (its spans
/// are a `tracing` layer beside the log). Runs inside the runtime: the exporter's batch task
/// lives on it.
fn init_tracing(settings: &gostint_config::Settings) -> anyhow::Result<Option<gostint_server::otel::OtlpExport>> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    // GOSTINT_DEBUG raises gostint's own crates only (docs/design.md §11); RUST_LOG overrides.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(gostint_server::log_filter(settings.debug)));
    let export = settings.otlp.as_ref().map(gostint_server::otel::OtlpExport::start).transpose()?;
    // Spans made for the exporter only never show in the log.
    let log = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| m.target() != gostint_server::otel::EXPORT_ONLY_TARGET));
    tracing_subscriber::registry().with(filter).with(log).with(export.as_ref().map(|e| e.layer())).init();
    Ok(export)
}

fn settings() -> Result<gostint_config::Settings, std::process::ExitCode> {
    gostint_config::Settings::from_env().map_err(|e| {
        // Every bad setting at once, one per line, each naming its variable.
        for one in e.all() {
            eprintln!("gostint: configuration error: {one}");
        }
        std::process::ExitCode::from(2)
    })
}

/// glibc's malloc as gostint runs it (RELIABILITY.md, item 11): two arenas instead of eight
/// per core, and freed memory above 128 KiB at the top of the heap given back at once. In the
/// burst of `gostint-bench --only 9` this kept 1% of the burst's memory 15 s later (glibc's
/// defaults 23%, mimalloc 25%) and halved the idle RSS.
const MALLOC_TUNABLES: &str = "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=131072";

/// glibc reads its tunables only when a process starts, so gostint re-executes itself once
/// (same pid, same arguments) with [`MALLOC_TUNABLES`] added to `GLIBC_TUNABLES`, unless that
/// already holds `glibc.malloc.` settings (the operator's own, which win; and the re-executed
/// process). Not on other C libraries, nor in a build with the `mimalloc` feature. If the
/// re-execution fails, gostint goes on with glibc's defaults and says so.
fn tune_malloc() {
    if cfg!(feature = "mimalloc") || !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains("glibc.malloc.") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let value = if current.is_empty() { MALLOC_TUNABLES.to_string() } else { format!("{current}:{MALLOC_TUNABLES}") };
    let mut args = std::env::args_os();
    let mut again = std::process::Command::new(exe);
    if let Some(zero) = args.next() {
        std::os::unix::process::CommandExt::arg0(&mut again, zero);
    }
    let err = std::os::unix::process::CommandExt::exec(again.args(args).env("GLIBC_TUNABLES", value));
    eprintln!(
        "gostint: could not re-execute itself with tuned malloc settings ({err}); going on with glibc's defaults"
    );
}

fn main() -> std::process::ExitCode {
    tune_malloc();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("gostint: could not start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = match settings() {
                Ok(s) => s,
                Err(code) => return code,
            };
            let export = match init_tracing(&settings) {
                Ok(export) => export,
                Err(e) => {
                    eprintln!("gostint: configuration error: {e:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            if let Some(o) = &settings.otlp {
                tracing::info!(endpoint = %o.endpoint, service_name = %o.service_name, "OTLP trace export on");
            }
            let code = match gostint_server::run(settings).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "gostint failed");
                    eprintln!("gostint: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
            // The last spans (the drain, "gostint stopped") go out before the process ends.
            if let Some(export) = export {
                export.shutdown().await;
            }
            code
        }
        Command::Config { command: ConfigCommand::Show } => match gostint_server::ops_cli::config_show_env() {
            Ok(text) => {
                print!("{text}");
                std::process::ExitCode::SUCCESS
            }
            Err(text) => {
                println!("{text}");
                std::process::ExitCode::from(2)
            }
        },
        Command::Check { timeout } => {
            let settings = match settings() {
                Ok(s) => s,
                Err(code) => return code,
            };
            let lines = gostint_server::ops_cli::check(&settings, std::time::Duration::from_secs(timeout.max(1))).await;
            for l in &lines {
                println!("{l}");
            }
            if lines.iter().all(|l| l.ok) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "gostint", &mut std::io::stdout());
            std::process::ExitCode::SUCCESS
        }
        Command::Man { dir } => match write_man(&dir) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gostint: writing man pages into {}: {e}", dir.display());
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn write_man(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)
}
