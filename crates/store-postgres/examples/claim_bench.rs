//! Claim-and-finish throughput of empty jobs on SQLite and PostgreSQL, and the delay from a
//! queue freeing on one node to its next job being claimed on another through
//! LISTEN/NOTIFY (docs/design.md §5.2: milliseconds, not the original's 1 s poll).
//!
//! ```text
//! . .dev/env   # GOSTINT_TEST_DATABASE_URL; without it only SQLite is measured
//! cargo run --release -p gostint-store-postgres --example claim_bench [-- JOBS QUEUES BATCH]
//! ```
//!
//! PostgreSQL runs in a fresh database `gostint_bench_<uuid>`, dropped at the end.

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Jobs one claim may take unless the third argument says otherwise (the worker's
/// dispatcher takes 64).
const DEFAULT_BATCH: usize = 64;
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
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

async fn fill(store: &Arc<dyn JobStore>, jobs: usize, queues: usize) -> anyhow::Result<()> {
    for i in 0..jobs {
        store.enqueue(job(format!("q{:04}", i % queues), i as i64)).await?;
    }
    Ok(())
}

/// Claims and finishes until `jobs` are done, the way the worker's dispatcher does: per node
/// one claim loop taking up to `batch` at a time until nothing is claimable, each
/// job finished by a task of its own, which then wakes its node's loop; other nodes' finishes
/// wake it through `listen` (PostgreSQL). The 1 s fallback sweep is kept. Returns jobs/s.
async fn drain(stores: &[Arc<dyn JobStore>], jobs: usize, batch: usize) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        let (store, done, all_done) = (store.clone(), done.clone(), all_done.clone());
        let node = NodeId::new(format!("bench-node-{n}"));
        let wake = Arc::new(Notify::new());
        let listening = {
            let (store, wake) = (store.clone(), wake.clone());
            let sink: EventSink = Arc::new(move |event| {
                if event == StoreEvent::Claimable {
                    wake.notify_one();
                }
            });
            tokio::spawn(async move { store.listen(sink).await })
        };
        tasks.push(tokio::spawn(async move {
            let mut finishing = tokio::task::JoinSet::new();
            while done.load(Ordering::SeqCst) < jobs {
                loop {
                    let got = store.claim(&node, batch, Timestamp::now()).await?;
                    let full = got.len() == batch;
                    for j in got {
                        let (store, node, done, wake, all_done) =
                            (store.clone(), node.clone(), done.clone(), wake.clone(), all_done.clone());
                        finishing.spawn(async move {
                            let outcome = Outcome::message(JobStatus::Success, "");
                            let ok = store.finish(&j.id, &node, outcome, Timestamp::now()).await?;
                            anyhow::ensure!(ok, "finish refused");
                            if done.fetch_add(1, Ordering::SeqCst) + 1 >= jobs {
                                all_done.notify_waiters();
                            }
                            wake.notify_one();
                            Ok(())
                        });
                    }
                    if !full {
                        break;
                    }
                }
                while let Some(finished) = finishing.try_join_next() {
                    finished??;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = all_done.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            while let Some(finished) = finishing.join_next().await {
                finished??;
            }
            listening.abort();
            Ok::<_, anyhow::Error>(())
        }));
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
    let batch = args.get(2).copied().unwrap_or(DEFAULT_BATCH).max(1);
    println!(
        "claim-and-finish of {jobs} empty jobs over {queues} queues, one claim loop per node taking up to {batch}"
    );

    // SQLite: one node per file.
    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open_in(dir.path()).await?);
    fill(&sqlite, jobs, queues).await?;
    let rate = drain(std::slice::from_ref(&sqlite), jobs, batch).await?;
    println!("SQLite      1 node : {rate:>8.0} jobs/s");

    let Ok(url) = std::env::var("GOSTINT_TEST_DATABASE_URL") else {
        println!("PostgreSQL: skipped (GOSTINT_TEST_DATABASE_URL unset; source .dev/env)");
        return Ok(());
    };
    let admin = connect_options(&url)?;
    let name = format!("gostint_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let result = postgres(admin.clone().database(&name), jobs, queues, batch).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
    conn.close().await?;
    result
}

async fn postgres(
    options: sqlx::postgres::PgConnectOptions,
    jobs: usize,
    queues: usize,
    batch: usize,
) -> anyhow::Result<()> {
    let mut nodes: Vec<Arc<dyn JobStore>> = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(PgJobStore::connect_with(options.clone(), 10).await?));
    }
    fill(&nodes[0], jobs, queues).await?;
    let rate = drain(&nodes[..1], jobs, batch).await?;
    println!("PostgreSQL  1 node : {rate:>8.0} jobs/s");
    fill(&nodes[0], jobs, queues).await?;
    let rate = drain(&nodes, jobs, batch).await?;
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
