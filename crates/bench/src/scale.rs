//! Figure 5 (and 6's second half): a store holding 100,000 queued jobs over 10,000 queues:
//! enqueue rate, claim latency as the backlog grows, and the server's RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gostint_core::{JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Outcome, Owner, Timestamp};
use gostint_test_support::Services;

use crate::report::{stats, Row, Stats};
use crate::target::Child;

fn new_job(qname: String, submitted: Timestamp) -> NewJob {
    NewJob {
        id: JobId::new(submitted.unix_seconds()),
        qname,
        owner: Owner::new("bench"),
        submitted,
        definition: JobDefinition {
            container_image: "gostint-test/busybox:latest".into(),
            run: vec!["true".into()],
            ..Default::default()
        },
        wrap_secret_id: "never-used".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

/// `samples` timed `claim(max=1)` calls, each claimed job then finished (not timed).
async fn claim_latency(store: &dyn JobStore, node: &NodeId, samples: usize) -> anyhow::Result<Stats> {
    let mut v = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let got = store.claim(node, 1, Timestamp::now()).await?;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(got.len() == 1, "claim found nothing");
        for j in got {
            store.finish(&j.id, node, Outcome::message(JobStatus::Success, ""), Timestamp::now()).await?;
        }
    }
    Ok(stats(v))
}

async fn open(dburl: &str) -> anyhow::Result<Arc<dyn JobStore>> {
    Ok(if dburl.starts_with("postgres") {
        Arc::new(gostint_store_postgres::PgJobStore::connect(dburl).await?)
    } else {
        Arc::new(gostint_store_sqlite::SqliteJobStore::open(dburl).await?)
    })
}

pub(crate) async fn fig5(
    svc: &Services,
    label: &str,
    fig: u8,
    dburl: &str,
    total: usize,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let queues = (total / 10).max(1);
    println!("== {fig}. queue scale ({label}): {total} queued jobs over {queues} queues, enqueued through the JobStore trait (16 concurrent)");
    let state = tempfile::tempdir()?;
    // Idle RSS: the release binary on an empty store.
    let c = Child::start(svc, dburl, state.path(), false, &[]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = c.rss_mib();
    c.stop().await;

    let store = open(dburl).await?;
    let node = NodeId::new(format!("bench-{}", uuid::Uuid::new_v4()));
    let base = Timestamp::now();
    let mut lat: Vec<(usize, Stats)> = Vec::new();
    let mut enq_time = Duration::ZERO;
    let mut enq_cpu = crate::cpu::Usage::default();
    let mut done = 0usize;
    let mut sizes: Vec<usize> = [100usize, 1_000, 10_000, 100_000].into_iter().filter(|&s| s < total).collect();
    sizes.push(total);
    for size in sizes {
        let t = Instant::now();
        let snap = crate::cpu::snap();
        futures::stream::iter(done..size)
            .map(|i| {
                let s = store.clone();
                let job = new_job(format!("scale-{}", i % queues), Timestamp::from_millis(base.millis() + i as i64));
                async move { s.enqueue(job).await }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        enq_time += t.elapsed();
        enq_cpu.add(&snap.since(None));
        done = size;
        let l = claim_latency(store.as_ref(), &node, 21).await?;
        println!("   {size:>7} queued: claim(1) median {:.2} ms, p90 {:.2} ms", l.median, l.p90);
        lat.push((size, l));
    }
    let enq_rate = done as f64 / enq_time.as_secs_f64();
    println!("   enqueue rate (store, 16 concurrent): {enq_rate:.0} jobs/s; {}", enq_cpu.describe(done as f64, "job"));

    // The claim's slow path: the oldest queued jobs all wait behind one busy queue (a backlog
    // in one qname), so the fast window finds no free head and every queue is visited.
    let old = Timestamp::from_millis(base.millis() - 1_000_000);
    store.enqueue(new_job("hot".into(), old)).await?;
    let running = store.claim(&node, 1, Timestamp::now()).await?;
    anyhow::ensure!(running.len() == 1 && running[0].qname == "hot", "the hot queue's head was not the oldest");
    futures::stream::iter(1..=300)
        .map(|k| {
            let s = store.clone();
            let job = new_job("hot".into(), Timestamp::from_millis(old.millis() + k));
            async move { s.enqueue(job).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let slow = claim_latency(store.as_ref(), &node, 21).await?;
    println!(
        "   {done} queued, the 300 oldest behind one busy queue: claim(1) median {:.2} ms, p90 {:.2} ms",
        slow.median, slow.p90
    );
    store.finish(&running[0].id, &node, Outcome::message(JobStatus::Success, ""), Timestamp::now()).await?;
    store.deregister(&node).await.ok();
    drop(store);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The real server over that many queued jobs: RSS once it answers, peak while it works
    // through them (dummy wrapping tokens: each ends `notauthorised` after one Vault call, no
    // container), and after. First as configured by default (no GOSTINT_MAX_RUNNING), then,
    // with the same number re-enqueued, with GOSTINT_MAX_RUNNING=64.
    let free = drain(svc, dburl, state.path(), &[]).await?;
    println!("   default (no cap): {free}");
    enqueue_all(&open(dburl).await?, total, queues, Timestamp::now()).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let capped = drain(svc, dburl, state.path(), &[("GOSTINT_MAX_RUNNING", "64".into())]).await?;
    println!("   GOSTINT_MAX_RUNNING=64: {capped}");

    let (first, last) = (lat[0], lat[lat.len() - 1]);
    let growth = last.1.median / first.1.median;
    let sizes = lat.iter().map(|(n, s)| format!("{n}: {:.2}", s.median)).collect::<Vec<_>>().join(", ");
    rows.push(Row {
        figure: format!("{fig}. claim(1) latency, {} → {} queued over {queues} queues ({label})", first.0, last.0),
        measured: format!("{sizes} ms"),
        baseline: format!("at {} queued", first.0),
        ratio: Some(growth),
        target: "≤ 2 (flat)".into(),
        pass: Some(growth <= 2.0),
    });
    rows.push(Row {
        figure: format!("{fig}. claim(1) with the 300 oldest behind one busy queue, {} queued ({label})", last.0),
        measured: format!("{:.2} ms (p90 {:.2})", slow.median, slow.p90),
        baseline: format!("at {} queued, free heads", first.0),
        ratio: Some(slow.median / first.1.median),
        target: "info".into(),
        pass: None,
    });
    rows.push(Row::info(
        format!("{fig}. enqueue rate through the store, 16 concurrent ({label})"),
        format!("{enq_rate:.0} jobs/s"),
        "-",
    ));
    rows.push(Row {
        figure: format!("{fig}. server RSS with {} queued ({label})", free.queued_at_start),
        measured: format!("{:.1} MiB", free.start_rss),
        baseline: format!("idle {idle_rss:.1} MiB"),
        ratio: Some(free.start_rss / idle_rss),
        target: "< 200 MiB".into(),
        pass: Some(free.start_rss < 200.0),
    });
    rows.push(Row {
        figure: format!("{fig}. server peak RSS working through them, default: no cap ({label})"),
        measured: format!(
            "{:.1} MiB with up to {} jobs at once, {} fds; after {:.1} MiB",
            free.peak, free.peak_running, free.peak_fds, free.after_rss
        ),
        baseline: format!("idle {idle_rss:.1} MiB"),
        ratio: Some(free.peak / idle_rss),
        target: "< 200 MiB".into(),
        pass: Some(free.peak < 200.0),
    });
    rows.push(Row {
        figure: format!("{fig}. same with GOSTINT_MAX_RUNNING=64 ({label})"),
        measured: format!(
            "{:.1} MiB with up to {} jobs at once, {} fds; after {:.1} MiB; {:.0} jobs/s (default {:.0})",
            capped.peak, capped.peak_running, capped.peak_fds, capped.after_rss, capped.rate, free.rate
        ),
        baseline: format!("idle {idle_rss:.1} MiB"),
        ratio: Some(capped.peak / idle_rss),
        target: "< 200 MiB".into(),
        pass: Some(capped.peak < 200.0),
    });
    Ok(())
}

async fn enqueue_all(store: &Arc<dyn JobStore>, total: usize, queues: usize, base: Timestamp) -> anyhow::Result<()> {
    futures::stream::iter(0..total)
        .map(|i| {
            let s = store.clone();
            let job = new_job(format!("scale-{}", i % queues), Timestamp::from_millis(base.millis() + i as i64));
            async move { s.enqueue(job).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(())
}

struct Drain {
    queued_at_start: String,
    start_rss: f64,
    peak: f64,
    after_rss: f64,
    peak_running: usize,
    peak_fds: usize,
    peak_threads: usize,
    after_fds: usize,
    secs: f64,
    rate: f64,
}

impl std::fmt::Display for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB at start with {} queued, peak {:.1} MiB while working through them (up to {} jobs at once, {} fds, {} threads), {:.1} MiB and {} fds 2 s after; all ended in {:.0} s ({:.0} jobs/s)",
            self.start_rss, self.queued_at_start, self.peak, self.peak_running, self.peak_fds, self.peak_threads, self.after_rss, self.after_fds, self.secs, self.rate
        )
    }
}

/// Starts the binary on a store full of queued jobs and lets it work through them.
async fn drain(svc: &Services, dburl: &str, state: &std::path::Path, envs: &[(&str, String)]) -> anyhow::Result<Drain> {
    let c = Child::start(svc, dburl, state, false, envs).await?;
    let start_rss = c.rss_mib();
    let queued_at_start = c.t.health("queued_jobs").await.unwrap_or_default();
    let total: f64 = queued_at_start.parse().unwrap_or(0.0);
    let mut d = Drain {
        queued_at_start,
        start_rss,
        peak: start_rss,
        after_rss: 0.0,
        peak_running: 0,
        peak_fds: 0,
        peak_threads: 0,
        after_fds: 0,
        secs: 0.0,
        rate: 0.0,
    };
    let t = Instant::now();
    let limit = Duration::from_secs(600);
    loop {
        d.peak = d.peak.max(c.rss_mib());
        d.peak_fds = d.peak_fds.max(c.fds());
        d.peak_threads = d.peak_threads.max(c.threads());
        let q: usize = c.t.health("queued_jobs").await.and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
        let r: usize = c.t.health("running_jobs").await.and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
        if r != usize::MAX {
            d.peak_running = d.peak_running.max(r);
        }
        if q == 0 && r == 0 {
            break;
        }
        if t.elapsed() > limit {
            println!("   not finished after {limit:?} ({q} still queued)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    d.secs = t.elapsed().as_secs_f64();
    d.rate = total / d.secs;
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.after_rss = c.rss_mib();
    d.after_fds = c.fds();
    c.stop().await;
    Ok(d)
}
