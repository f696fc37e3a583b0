//! The scenarios and their runner. A scenario is a plain function returning its
//! [`Figures`]; add one with a line in [`all`] (or in `pg::scenarios` / `vault::scenarios`).

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::ctx::Ctx;
use crate::figures::Figures;

pub mod docker;
pub mod http;
pub mod load;
pub mod pg;
pub mod sqlite;
pub mod vault;

/// A scenario's body.
pub type RunFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, anyhow::Result<Figures>>;

/// One scenario of the suite.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Its name (`--only`).
    pub name: &'static str,
    /// In the quick set (CI, `tests/quick.rs`).
    pub quick: bool,
    /// Needs root (tmpfs mounts); skipped with a line otherwise.
    pub root: bool,
    /// What it promises, one sentence (`--list`).
    pub promise: &'static str,
    /// The body.
    pub run: RunFn,
}

/// Every scenario, in run order.
pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(sqlite::scenarios());
    v.extend(docker::scenarios());
    v.extend(load::scenarios());
    v.extend(http::scenarios());
    v.extend(pg::scenarios());
    v.extend(vault::scenarios());
    v
}

/// The scenarios named in `only` (comma list), or the quick set, or all.
pub fn select(only: Option<&str>, quick: bool) -> anyhow::Result<Vec<Scenario>> {
    let every = all();
    if let Some(names) = only {
        let mut out = Vec::new();
        for n in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let s = every.iter().find(|s| s.name == n).ok_or_else(|| {
                let known: Vec<&str> = every.iter().map(|s| s.name).collect();
                anyhow::anyhow!("no scenario named {n:?} (known: {})", known.join(", "))
            })?;
            out.push(*s);
        }
        return Ok(out);
    }
    Ok(every.into_iter().filter(|s| !quick || s.quick).collect())
}

/// The longest a scenario may take before it counts as failed (its node is killed).
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(20 * 60);

/// Runs one scenario and prints its line.
pub async fn run_one(ctx: &Ctx, s: &Scenario) -> Figures {
    println!("--- {}: {}", s.name, s.promise);
    if s.root && !ctx.root {
        let f = Figures::new(s.name).skip("needs root (tmpfs mount); run as root");
        println!("{}", f.line());
        return f;
    }
    let t0 = Instant::now();
    let mut f = match tokio::time::timeout(SCENARIO_LIMIT, (s.run)(ctx)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            let mut f = Figures::new(s.name);
            f.failures.push(format!("error: {e:#}"));
            f
        }
        Err(_) => {
            let mut f = Figures::new(s.name);
            f.failures.push(format!("did not finish within {SCENARIO_LIMIT:?}"));
            f
        }
    };
    f.took_s = t0.elapsed().as_secs_f64();
    println!("{}", f.line());
    f
}

/// Runs these scenarios one after the other.
pub async fn run_all(ctx: &Ctx, list: &[Scenario]) -> Vec<Figures> {
    let mut out = Vec::new();
    for s in list {
        out.push(run_one(ctx, s).await);
    }
    out
}
