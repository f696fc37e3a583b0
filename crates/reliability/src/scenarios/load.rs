//! Load: many jobs over many queues at once (FIFO per queue, nothing lost, memory), and many
//! concurrent readers of job views and list pages (reads/s, latency).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::Scenario;
use crate::ctx::Ctx;
use crate::figures::Figures;
use crate::load::{queues, sh_job, submit};
use crate::rig::Rig;

/// The load scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "load",
            quick: true,
            root: false,
            promise: "200 jobs over 16 queues posted 16 at a time: every one `success`, none lost, stuck or run twice, FIFO within each queue",
            run: load_quick,
        },
        Scenario {
            name: "load-2000",
            quick: false,
            root: false,
            promise: "2,000 jobs over 32 queues posted 32 at a time: as `load`",
            run: load_long,
        },
        Scenario {
            name: "readers",
            quick: true,
            root: false,
            promise: "8 clients reading job views and list pages for 5 s: every read 200; reads/s and p50/p99 latency",
            run: readers_quick,
        },
        Scenario {
            name: "readers-32",
            quick: false,
            root: false,
            promise: "32 clients reading for 30 s (the issue's outside test: 1,317 reads/s, p99 80 ms): every read 200",
            run: readers_long,
        },
    ]
}

fn load_quick(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(load(ctx, "load", 200, 16))
}

fn load_long(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(load(ctx, "load-2000", 2000, 32))
}

async fn load(ctx: &Ctx, name: &str, n: usize, conc: usize) -> anyhow::Result<Figures> {
    let mut f = Figures::new(name);
    let rig = Rig::sqlite(ctx, &[]).await?;
    let qs = queues(name, conc);
    let image = ctx.svc.image.clone();
    let t0 = Instant::now();
    let sub = submit(&rig.api, n, &qs, conc, move |q, i| sh_job(&image, q, &format!("echo job {i}"))).await;
    f.note("posts_per_s", format!("{:.1}", sub.accepted.len() as f64 / sub.took.as_secs_f64()));
    f.check(sub.refused.is_empty(), format!("{} submissions refused: {:?}", sub.refused.len(), sub.refused.first()));
    let a = rig.finish(&mut f, &sub.accepted, Duration::from_secs(60 + n as u64)).await;
    let all_s = t0.elapsed().as_secs_f64();
    f.note("jobs_per_s", format!("{:.1}", a.statuses.get("success").copied().unwrap_or(0) as f64 / all_s));
    let ok = a.statuses.get("success").copied().unwrap_or(0);
    f.check(
        ok as usize == sub.accepted.len(),
        format!("{ok} of {} ended success: {:?}", sub.accepted.len(), a.statuses),
    );
    let wrong = sub
        .accepted
        .iter()
        .filter_map(|acc| a.job(&acc.id))
        .filter(|j| j["status"] == "success" && !j["output"].as_str().unwrap_or_default().starts_with("job "))
        .count();
    f.check(wrong == 0, format!("{wrong} jobs ended success without their output"));
    Ok(f)
}

fn readers_quick(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(readers(ctx, "readers", 8, 5))
}

fn readers_long(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(readers(ctx, "readers-32", 32, 30))
}

/// 20 ended jobs, then `clients` loops alternating a job view and a list page for `secs`.
async fn readers(ctx: &Ctx, name: &str, clients: usize, secs: u64) -> anyhow::Result<Figures> {
    let mut f = Figures::new(name);
    let rig = Rig::sqlite(ctx, &[]).await?;
    let qs = queues(name, 4);
    let image = ctx.svc.image.clone();
    let sub = submit(&rig.api, 20, &qs, 4, move |q, i| sh_job(&image, q, &format!("seq 1 {}", 200 * (i + 1)))).await;
    f.check(sub.refused.is_empty(), format!("submissions refused: {:?}", sub.refused.first()));
    for acc in &sub.accepted {
        rig.api.wait_final(&acc.id, Duration::from_secs(120)).await?;
    }
    let ids: Arc<Vec<String>> = Arc::new(sub.accepted.iter().map(|a| a.id.clone()).collect());
    let lat: Arc<Mutex<Vec<f64>>> = Arc::default();
    let bad: Arc<Mutex<Vec<String>>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(secs);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (api, ids, lat, bad) = (rig.api.clone(), ids.clone(), lat.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = c;
            let mut mine = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let r = if k % 2 == 0 {
                    api.get(&ids[k % ids.len()]).await
                } else {
                    api.list(((k / 2) % 2 * 10) as u64).await
                };
                mine.push(t.elapsed().as_secs_f64() * 1000.0);
                match r {
                    Ok((200, _)) => {}
                    Ok((code, v)) => bad.lock().map(|mut b| b.push(format!("{code}: {v}"))).unwrap_or(()),
                    Err(e) => bad.lock().map(|mut b| b.push(format!("{e:#}"))).unwrap_or(()),
                }
                k += 1;
            }
            if let Ok(mut l) = lat.lock() {
                l.extend(mine);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let took = t0.elapsed().as_secs_f64();
    let mut l = std::mem::take(&mut *lat.lock().unwrap_or_else(|e| e.into_inner()));
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| l.get(((l.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    f.note("reads", l.len());
    f.note("reads_per_s", format!("{:.0}", l.len() as f64 / took));
    f.note("p50_ms", format!("{:.1}", pct(0.5)));
    f.note("p99_ms", format!("{:.1}", pct(0.99)));
    let bad = bad.lock().map(|b| b.clone()).unwrap_or_default();
    f.check(bad.is_empty(), format!("{} reads not 200: {:?}", bad.len(), bad.first()));
    rig.finish(&mut f, &sub.accepted, Duration::from_secs(30)).await;
    Ok(f)
}
