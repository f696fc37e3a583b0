//! `gostint-reliability`: runs the reliability scenarios against the real gostint binary
//! (`GOSTINT_BIN`, default `target/debug/gostint`), OpenBao, Docker and PostgreSQL, prints one
//! line per scenario and a table, and exits 1 if any failed.

use clap::Parser;
use gostint_reliability::{figures, scenarios, Ctx};

/// The reliability suite of issue 16 (RELIABILITY.md).
#[derive(Parser)]
#[command(name = "gostint-reliability", version)]
struct Args {
    /// Only these scenarios (comma list; see --list).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only the quick set (the one CI runs).
    #[arg(long)]
    quick: bool,
    /// List the scenarios and what each promises, then exit.
    #[arg(long)]
    list: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.list {
        for s in scenarios::all() {
            let tags = [(s.quick, "quick"), (s.root, "root")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, t)| *t)
                .collect::<Vec<_>>()
                .join(",");
            println!("{:<16} [{tags}] {}", s.name, s.promise);
        }
        return std::process::ExitCode::SUCCESS;
    }
    let only = (!args.only.is_empty()).then(|| args.only.join(","));
    let list = match scenarios::select(only.as_deref(), args.quick) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gostint-reliability: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let ctx = match Ctx::new().await {
        Ok(Some(c)) => c,
        Ok(None) => {
            eprintln!("gostint-reliability: the services are missing (scripts/services up)");
            return std::process::ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("gostint-reliability: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    println!("gostint-reliability: {} scenario(s), binary {}", list.len(), ctx.bin.display());
    let figs = scenarios::run_all(&ctx, &list).await;
    println!("\n{}", figures::table(&figs));
    if figs.iter().all(|f| f.passed()) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
