//! Claim-and-finish throughput of empty jobs on SQLite and PostgreSQL, and the delay from a
//! queue freeing on one node to its next job being claimed on another through
//! LISTEN/NOTIFY (SPEC §5.2: milliseconds, not the original's 1 s poll).
//!
//! ```text
//! . .dev/env   # GOSTINT_TEST_DATABASE_URL; without it only SQLite is measured
//! cargo run --release -p gostint-store-postgres --example claim_bench [-- JOBS QUEUES]
//! ```
//!
//! PostgreSQL runs in a fresh database `gostint_bench_<uuid>`, dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use gostint_core::{
    EventSink, JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Outcome, Owner, StoreEvent, Timestamp,
};
use gostint_store_postgres::{connect_options, PgJobStore};
use gostint_store_sqlite::SqliteJobStore;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, Notify};

/// Claim loops per node.
const LOOPS: usize = 8;
/// Jobs one claim may take.
const CLAIM_MAX: usize = 8;
/// Hand-overs measured for the wake-up delay.
const HANDOVERS: usize = 500;

fn job(qname: String, submitted: i64) -> NewJob {
    NewJob {
        id: JobId::new(1_700_000_000),
        qname: qname.clone(),
        owner: Owner::new("entity-bench"),
        submitted: Timestamp::from_millis(submitted),
        definition: JobDefinition { qname, container_image: "busybox".into(), ..Default::default() },
        wrap_secret_id: "w".into(),
        payload: None,
    }
}

async fn fill(store: &Arc<dyn JobStore>, jobs: usize, queues: usize) -> anyhow::Result<()> {
    for i in 0..jobs {
        store.enqueue(job(format!("q{:04}", i % queues), i as i64)).await?;
    }
    Ok(())
}

/// Claims and finishes until `jobs` are done with [`LOOPS`] loops per store; returns jobs/s.
async fn drain(stores: &[Arc<dyn JobStore>], jobs: usize) -> anyhow::Result<f64> {
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        for l in 0..LOOPS {
            let (store, done) = (store.clone(), done.clone());
            let node = NodeId::new(format!("bench-node-{n}"));
            tasks.push(tokio::spawn(async move {
                let mut idle = 0u32;
                while done.load(std::sync::atomic::Ordering::Relaxed) < jobs {
                    let got = store.claim(&node, CLAIM_MAX, Timestamp::now()).await?;
                    if got.is_empty() {
                        // Everything claimable is taken by the other loops: back off a little.
                        idle += 1;
                        tokio::time::sleep(Duration::from_micros(200 * u64::from(idle.min(10)))).await;
                        continue;
                    }
                    idle = 0;
                    let finishes = got.iter().map(|j| {
                        store.finish(&j.id, &node, Outcome::message(JobStatus::Success, ""), Timestamp::now())
                    });
                    for ok in futures::future::try_join_all(finishes).await? {
                        anyhow::ensure!(ok, "finish refused (loop {l})");
                    }
                    done.fetch_add(got.len(), std::sync::atomic::Ordering::Relaxed);
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
    }
    for t in tasks {
        t.await??;
    }
    Ok(jobs as f64 / started.elapsed().as_secs_f64())
}

/// The delay from a finish on `writer` to the next job of that queue being claimed by a
/// node woken only by `listener`'s LISTEN (no polling); returns the sorted delays.
async fn handover(listener: Arc<dyn JobStore>, writer: Arc<dyn JobStore>) -> anyhow::Result<Vec<Duration>> {
    for i in 0..=HANDOVERS {
        writer.enqueue(job("handover".into(), i as i64)).await?;
    }
    let wake = Arc::new(Notify::new());
    let sink: EventSink = {
        let wake = wake.clone();
        Arc::new(move |event| {
            if event == StoreEvent::Claimable {
                wake.notify_one();
            }
        })
    };
    let listening = tokio::spawn({
        let listener = listener.clone();
        async move { listener.listen(sink).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Node A claims only when its listener says so.
    let node_a = NodeId::new("bench-node-a");
    let (claimed_tx, mut claimed) = mpsc::unbounded_channel();
    let claimer = tokio::spawn({
        let (wake, node_a) = (wake.clone(), node_a.clone());
        async move {
            loop {
                wake.notified().await;
                let got = listener.claim(&node_a, 1, Timestamp::now()).await?;
                let at = Instant::now();
                for j in got {
                    if claimed_tx.send((j.id, at)).is_err() {
                        return Ok::<_, anyhow::Error>(());
                    }
                }
            }
        }
    });

    let mut delays = Vec::with_capacity(HANDOVERS);
    let (mut current, _) = tokio::time::timeout(Duration::from_secs(5), claimed.recv())
        .await
        .context("first claim")?
        .context("claimer ended")?;
    for _ in 0..HANDOVERS {
        // Let the claimer go idle, then free the queue from the other node's handle.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let freed = Instant::now();
        let outcome = Outcome::message(JobStatus::Success, "");
        anyhow::ensure!(writer.finish(&current, &node_a, outcome, Timestamp::now()).await?, "finish refused");
        let (next, at) = tokio::time::timeout(Duration::from_secs(2), claimed.recv())
            .await
            .context("no claim within 2 s of a finish: the wake-up was lost")?
            .context("claimer ended")?;
        delays.push(at - freed);
        current = next;
    }
    claimer.abort();
    listening.abort();
    delays.sort();
    Ok(delays)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let jobs = args.first().copied().unwrap_or(5_000);
    let queues = args.get(1).copied().unwrap_or(200);
    println!("claim-and-finish of {jobs} empty jobs over {queues} queues, {LOOPS} claim loops per node, claim max {CLAIM_MAX}");

    // SQLite: one node per file.
    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open_in(dir.path()).await?);
    fill(&sqlite, jobs, queues).await?;
    let rate = drain(std::slice::from_ref(&sqlite), jobs).await?;
    println!("SQLite      1 node : {rate:>8.0} jobs/s");

    let Ok(url) = std::env::var("GOSTINT_TEST_DATABASE_URL") else {
        println!("PostgreSQL: skipped (GOSTINT_TEST_DATABASE_URL unset; source .dev/env)");
        return Ok(());
    };
    let admin = connect_options(&url)?;
    let name = format!("gostint_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let result = postgres(admin.clone().database(&name), jobs, queues).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
    conn.close().await?;
    result
}

async fn postgres(options: sqlx::postgres::PgConnectOptions, jobs: usize, queues: usize) -> anyhow::Result<()> {
    let mut nodes: Vec<Arc<dyn JobStore>> = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(PgJobStore::connect_with(options.clone(), 10).await?));
    }
    fill(&nodes[0], jobs, queues).await?;
    let rate = drain(&nodes[..1], jobs).await?;
    println!("PostgreSQL  1 node : {rate:>8.0} jobs/s");
    fill(&nodes[0], jobs, queues).await?;
    let rate = drain(&nodes, jobs).await?;
    println!("PostgreSQL  3 nodes: {rate:>8.0} jobs/s");

    let delays = handover(nodes[1].clone(), nodes[2].clone()).await?;
    println!(
        "PostgreSQL  finish on node B → next job of the queue claimed on node A via LISTEN/NOTIFY ({} hand-overs): \
         median {:?}, p99 {:?}, max {:?}",
        delays.len(),
        pct(&delays, 0.5),
        pct(&delays, 0.99),
        delays.last().copied().unwrap_or_default()
    );
    Ok(())
}
