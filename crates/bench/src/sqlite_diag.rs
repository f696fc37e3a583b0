//! Diagnostic for figures 4 and 5: what the SQLite store's enqueue costs, and what two
//! changes to it would give, measured in the same run on the store's own schema
//! (`crates/store-sqlite/migrations`) and its own INSERT statement:
//!
//! - as the store does it: a one-connection writer pool, sqlx's default ping on every acquire;
//! - the same without the ping (`test_before_acquire(false)`): one worker-thread round trip
//!   per statement instead of two;
//! - group commit: one writer task takes whatever inserts are waiting (up to 64) and runs
//!   them in one transaction.

use std::time::{Duration, Instant};

use futures::StreamExt;
use gostint_core::{JobId, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::cpu;

const INSERT: &str = "INSERT INTO jobs (id, qname, owner, status, submitted, tty, container_image, definition,
                               wrap_secret_id, payload)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9)";

const DEFINITION: &str = r#"{"qname":"q","container_image":"gostint-test/busybox:latest","image_pull_policy":"","content":"","entrypoint":[],"run":["true"],"working_directory":"","env_vars":[],"secret_refs":[],"secret_file_type":"","cont_on_warnings":false,"tty":false}"#;

fn query(i: usize) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'static>> {
    let now = Timestamp::now();
    sqlx::query(INSERT)
        .bind(JobId::new(now.unix_seconds()).to_hex())
        .bind(format!("q-{}", i % 100))
        .bind("bench")
        .bind(now.millis())
        .bind(false)
        .bind("gostint-test/busybox:latest")
        .bind(DEFINITION)
        .bind("never-used")
        .bind(Option::<String>::None)
}

async fn pool(dir: &std::path::Path, name: &str, ping: bool) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(dir.join(name))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(ping)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(options)
        .await?;
    sqlx::migrate!("../store-sqlite/migrations").run(&pool).await?;
    Ok(pool)
}

type Reply = oneshot::Sender<Result<(), String>>;

async fn group_writer(pool: SqlitePool, mut rx: mpsc::Receiver<(usize, Reply)>) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut err = None;
        for (i, _) in &batch {
            if let Err(e) = query(*i).execute(&mut *tx).await {
                err = Some(e.to_string());
                break;
            }
        }
        let res = match err {
            None => tx.commit().await.map_err(|e| e.to_string()),
            Some(e) => Err(e),
        };
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(res.clone());
        }
    }
    Ok(())
}

/// Runs the three variants, `n` inserts each with `conc` concurrent callers; prints rate and
/// CPU per insert (this process: the sqlx worker thread included).
pub(crate) async fn enqueue_variants(n: usize, conc: usize) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let dir = tempfile::tempdir()?;
    let mut out = Vec::new();
    for (name, ping) in [("as the store: ping on acquire", true), ("no ping on acquire", false)] {
        let p = pool(dir.path(), &format!("{ping}.db"), ping).await?;
        let snap = cpu::snap();
        let t = Instant::now();
        futures::stream::iter(0..n)
            .map(|i| {
                let p = p.clone();
                async move { query(i).execute(&p).await.map(|_| ()) }
            })
            .buffer_unordered(conc)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let rate = n as f64 / t.elapsed().as_secs_f64();
        let u = snap.since(None);
        out.push((name.to_string(), rate, u.get("gostint-bench") * 1000.0 / n as f64));
        p.close().await;
    }
    {
        let p = pool(dir.path(), "group.db", false).await?;
        let (tx, rx) = mpsc::channel(1024);
        let writer = tokio::spawn(group_writer(p.clone(), rx));
        let snap = cpu::snap();
        let t = Instant::now();
        futures::stream::iter(0..n)
            .map(|i| {
                let tx = tx.clone();
                async move {
                    let (reply, done) = oneshot::channel();
                    tx.send((i, reply)).await.map_err(|_| anyhow::anyhow!("writer gone"))?;
                    done.await?.map_err(anyhow::Error::msg)
                }
            })
            .buffer_unordered(conc)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let rate = n as f64 / t.elapsed().as_secs_f64();
        let u = snap.since(None);
        out.push(("group commit (≤ 64 per transaction)".into(), rate, u.get("gostint-bench") * 1000.0 / n as f64));
        drop(tx);
        writer.await??;
        p.close().await;
    }
    Ok(out)
}
