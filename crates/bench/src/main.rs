//! `gostint-bench`: gostint against its physical limits, each figure beside a baseline
//! measured in the same run and printed as a ratio (issue 6). Run it with `scripts/bench`,
//! which starts the services and builds in release mode; BENCHMARKS.md has the results.
//!
//! - 1: per-job overhead vs `docker run --rm`, with the job path's calls timed one by one;
//! - 2: parallel throughput vs concurrent `docker run --rm`;
//! - 3: dispatch delay (queue freed or job posted → claimed → container created);
//! - 4: submission throughput vs OpenBao's own `lookup-self` rate;
//! - 5: queue scale: enqueue rate, claim latency from 100 to 100,000 queued, server RSS;
//! - 6: 4 and 5 on PostgreSQL;
//! - 7: `gostint-client run` vs `docker run --rm` (`live.rs`);
//! - 8: live output's delivery delay, job line → SSE client (`live.rs`);
//! - 9: memory given back after a burst, by allocator (`alloc.rs`).
//!
//! Everything runs on loopback. CPU time per process group is read from `/proc` around each
//! phase, so load from other work on the machine shows in the output.

mod alloc;
mod cpu;
mod events;
mod jobs;
mod live;
mod perf;
mod pin;
mod report;
mod scale;
mod sqlite_diag;
mod stamps;
mod submit;
mod target;

use anyhow::Context;
use clap::Parser;
use gostint_test_support::Services;

#[derive(Parser)]
#[command(about = "gostint benchmark suite (see BENCHMARKS.md)")]
struct Args {
    /// Fewer runs and a smaller queue-scale test: a smoke check, not figures to quote.
    #[arg(long)]
    quick: bool,
    /// Only these figures (1-9), e.g. `--only 1 --only 4` or `--only 1,4`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// Queued jobs for figures 5 and 6 (default 100000; --quick 10000).
    #[arg(long)]
    scale: Option<usize>,
    /// Sequential runs for figure 1 (default 30; --quick 8).
    #[arg(long)]
    runs: Option<usize>,
    /// Record `perf` profiles of the gostint binary during figure 4/6's POST phases.
    #[arg(long)]
    perf: bool,
}

fn machine() -> String {
    let cpus = pin::online_count();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let docker = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let driver = std::process::Command::new("docker")
        .args(["info", "--format", "{{.Driver}}, cgroup v{{.CgroupVersion}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cpus} cores, {mem:.1} GiB, Docker engine {docker}, {driver}; load average {}", load.join(" "))
}

/// A fresh, empty database next to `base` (the test PostgreSQL), dropped by [`drop_pg`].
fn fresh_pg_database(base: &str) -> anyhow::Result<(String, String)> {
    let name = format!("gostint_bench_{}", uuid::Uuid::new_v4().simple());
    let out = std::process::Command::new("psql")
        .arg(base)
        .args(["-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .context("psql")?;
    anyhow::ensure!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
    let (prefix, _) = base.rsplit_once('/').context("database URL without a path")?;
    Ok((format!("{prefix}/{name}"), name))
}

fn drop_pg(base: &str, names: &[String]) {
    for name in names {
        let _ = std::process::Command::new("psql")
            .arg(base)
            .args(["-qc", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
            .output();
    }
}

async fn postgres(
    svc: &Services,
    base: &str,
    args: &Args,
    subs: usize,
    scale: usize,
    rows: &mut Vec<report::Row>,
) -> anyhow::Result<()> {
    let mut made = Vec::new();
    let mut fresh = || -> anyhow::Result<String> {
        let (url, name) = fresh_pg_database(base)?;
        made.push(name);
        Ok(url)
    };
    let dbs = (fresh()?, fresh()?, fresh()?);
    let scale_db = fresh()?;
    let r = async {
        submit::fig4(svc, "PostgreSQL", 6, Some(dbs), subs, 32, args.perf, rows).await?;
        scale::fig5(svc, "PostgreSQL", 6, &scale_db, scale, rows).await
    }
    .await;
    drop_pg(base, &made);
    r
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    stamps::install();
    // Every CPU for OpenBao and this process, whatever an interrupted run left behind.
    for pid in pin::bao_pid().into_iter().chain([std::process::id()]) {
        if let Err(e) = pin::unpin(pid) {
            println!("warning: {e}");
        }
    }
    let want = |n: u8| args.only.is_empty() || args.only.contains(&n);
    let svc = gostint_test_support::services().context("services missing: run scripts/services up")?;
    let (runs, par, repeats, pairs, subs) = if args.quick { (8, 20, 1, 8, 1000) } else { (30, 50, 2, 30, 5000) };
    let runs = args.runs.unwrap_or(runs);
    let scale = args.scale.unwrap_or(if args.quick { 10_000 } else { 100_000 });
    let started = std::time::Instant::now();
    println!("gostint-bench {} run on {}", if args.quick { "quick" } else { "full" }, machine());
    println!(
        "{} build; job image {} already in the engine (not pulled)",
        if cfg!(debug_assertions) { "DEBUG" } else { "release" },
        svc.image
    );
    let mut rows = Vec::new();
    if want(1) || want(2) || want(3) {
        let b = target::InProcess::start(&svc, None).await?;
        let ev = events::Events::start().await?;
        // Warm-up: image layers in the page cache, connections and TLS sessions open.
        for w in b.wraps(2).await {
            let id = b.t.post(&target::trivial(&svc, "warm", &w)).await?;
            b.t.wait(&id, std::time::Duration::from_millis(10)).await?;
        }
        if want(1) {
            jobs::fig1(&b, &ev, runs, &mut rows).await?;
            jobs::call_costs(&b, if args.quick { 4 } else { 10 }).await?;
        }
        if want(2) {
            jobs::fig2(&b, &ev, par, repeats, &mut rows).await?;
        }
        if want(3) {
            jobs::fig3(&b, &ev, pairs, &mut rows).await?;
        }
        b.server.shutdown().await;
    }
    if want(4) {
        submit::fig4(&svc, "SQLite", 4, None, subs, 32, args.perf, &mut rows).await?;
    }
    if want(4) || want(5) {
        let n = if args.quick { 5_000 } else { 20_000 };
        println!("== 5b. the SQLite store's INSERT, {n} jobs, 16 concurrent callers, three ways (same schema, same statement)");
        for (name, rate, cpu) in sqlite_diag::enqueue_variants(n, 16).await? {
            println!("   {name:<40} {rate:>7.0} jobs/s, {cpu:.3} ms CPU per insert");
            rows.push(report::Row::info(
                format!("5b. SQLite INSERT, 16 concurrent: {name}"),
                format!("{rate:.0}/s, {cpu:.3} ms CPU each"),
                "-",
            ));
        }
    }
    if want(5) {
        let dir = tempfile::tempdir()?;
        scale::fig5(&svc, "SQLite", 5, &format!("sqlite://{}/scale.db", dir.path().display()), scale, &mut rows)
            .await?;
    }
    if want(6) {
        match svc.database_url.clone() {
            None => println!("== 6. skipped: no GOSTINT_TEST_DATABASE_URL (scripts/services up starts PostgreSQL)"),
            Some(base) => postgres(&svc, &base, &args, subs, scale, &mut rows).await?,
        }
    }
    if want(7) || want(8) {
        let b = target::InProcess::start(&svc, None).await?;
        if want(7) {
            live::fig7(&b, if args.quick { 6 } else { 20 }, &mut rows).await?;
        }
        if want(8) {
            live::fig8(&b, if args.quick { 2 } else { 4 }, 20, &mut rows).await?;
        }
        b.server.shutdown().await;
    }
    if want(9) {
        alloc::fig9(&svc, args.quick, &mut rows).await?;
    }
    report::print_rows(&rows);
    println!(
        "\ntotal bench time {:.0} s; load average now {}",
        started.elapsed().as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    Ok(())
}
