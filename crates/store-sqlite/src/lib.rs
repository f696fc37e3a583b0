//! gostint's [`JobStore`] on SQLite: the default store, for one node per database file
//! (docs/design.md §5.6; several nodes need PostgreSQL).
//!
//! Start at [`SqliteJobStore::open`]. The schema lives in `migrations/` (run at open); the
//! one-active-job-per-queue rule is a partial unique index there, so no code path can break
//! it. SQLite has one writer, so every write goes through a pool of exactly one connection
//! (callers queue on the pool instead of meeting `SQLITE_BUSY`), and reads use a small
//! read-only pool that WAL lets run beside it. A `flock` on `<db>.lock` (see `lock.rs`)
//! keeps a second process off the file. The behaviour is pinned by `gostint-store-contract`.
//!
//! This crate must not know the API, the worker or Docker; it only speaks the core types.
#![warn(missing_docs)]

mod lock;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gostint_core::{
    DeleteOutcome, JobDefinition, JobEvent, JobId, JobRecord, JobStatus, JobStore, KillOutcome, NewJob, NodeId,
    Outcome, Owner, StoreError, StoreEvent, TenantLoad, Timestamp, Visibility,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;

use crate::lock::ProcessLock;

/// Every column a [`JobRecord`] is read from, `seq` first.
macro_rules! columns {
    () => {
        "seq, id, qname, owner, status, node_uuid, submitted, started, ended, output, stderr, return_code, \
         tty, container_id, container_image, kill_requested, definition, wrap_secret_id, payload, tenant, wrap_expires"
    };
}

/// [`columns`] for a list page: only the last `LIST_OUTPUT_TAIL` (4096) characters of
/// `output` and `stderr` (issue 16, item 9).
macro_rules! list_columns {
    () => {
        "seq, id, qname, owner, status, node_uuid, submitted, started, ended, substr(output, -4096) AS output, substr(stderr, -4096) AS stderr, return_code, \
         tty, container_id, container_image, kill_requested, definition, wrap_secret_id, payload, tenant, wrap_expires"
    };
}

/// The assignments that blank what a finished job must not keep (docs/defects.md item 37).
macro_rules! blank_secrets {
    () => {
        "payload = NULL, wrap_secret_id = '', \
         definition = json_set(definition, '$.content', '', '$.env_vars', json('[]'))"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How long a statement waits on a lock held by SQLite itself (checkpoints, the readers'
/// snapshots) before failing; our own writes never contend, they queue on the writer pool.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent readers (API `GET`s, lists, health counts).
const READERS: u32 = 4;

/// Why a SQLite store could not be opened (boxed into [`StoreError::Backend`]; callers may
/// downcast to it).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL or path cannot name a database file.
    #[error("{0:?} is not a SQLite database path (expected sqlite://<path>, sqlite:<path> or a file path)")]
    BadLocation(String),
    /// Another process holds the database.
    #[error(
        "SQLite database {db} is in use by another gostint process ({holder}; lock file {lock}): \
         one process per SQLite file, use PostgreSQL to run several nodes"
    )]
    Locked {
        /// The database file.
        db: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Who holds it, as far as the lock file says.
        holder: String,
    },
    /// A file or directory could not be created or opened.
    #[error("cannot use {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused to open the database or to migrate it.
    #[error("cannot open SQLite database {path}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    // Disk full (SQLITE_FULL, extended codes too) or no connection in time: the store refuses
    // now and may take writes again later (503, and the worker stops claiming meanwhile).
    let full = matches!(&e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c.parse::<i32>().is_ok_and(|n| n & 0xff == 13)));
    if full || matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
        return StoreError::Unavailable(Box::new(e));
    }
    StoreError::Backend(Box::new(e))
}

/// A transaction on the one writer connection, begun and ended with plain `BEGIN` / `COMMIT`
/// / `ROLLBACK` statements rather than sqlx's `Transaction`, which keeps its own count of the
/// depth. After `SQLITE_FULL` SQLite may already have rolled the transaction back; sqlx's
/// `ROLLBACK` then failed, its count stayed at 1, and every later transaction became a
/// `SAVEPOINT` whose failed `RELEASE` and `ROLLBACK TO` left SQLite's transaction open for
/// good: the writes after it answered ok and never reached the file (accepted jobs lost,
/// claims stuck until a restart; found by the reliability suite's `disk-full` scenario, see
/// RELIABILITY.md). Here a transaction that is not committed or rolled back cleanly (an
/// error, a failed `ROLLBACK`, a future dropped half-way) closes its connection: SQLite rolls
/// back whatever is open and the pool opens a fresh one.
struct WriterTx {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    open: bool,
}

impl WriterTx {
    async fn begin(writer: &SqlitePool, immediate: bool) -> Result<Self, sqlx::Error> {
        let mut conn = writer.acquire().await?;
        let begin = if immediate { "BEGIN IMMEDIATE" } else { "BEGIN" };
        if let Err(e) = sqlx::query(begin).execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(e);
        }
        Ok(Self { conn, open: true })
    }

    async fn commit(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.open = false;
        Ok(())
    }

    /// Ends the transaction without its changes (the connection is closed if that fails).
    async fn rollback(mut self) {
        if sqlx::query("ROLLBACK").execute(&mut *self.conn).await.is_ok() {
            self.open = false;
        }
    }
}

impl std::ops::Deref for WriterTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for WriterTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Drop for WriterTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

/// Turns `sqlite://<path>`, `sqlite:<path>` or a bare path into a file path. A `?query`
/// after a URL is dropped (the store sets its own options); in-memory databases are refused
/// because the process lock needs a file.
pub fn database_path(location: &str) -> Result<PathBuf, OpenError> {
    let bad = || OpenError::BadLocation(location.to_string());
    let path = match location.strip_prefix("sqlite://").or_else(|| location.strip_prefix("sqlite:")) {
        Some(rest) => rest.split_once('?').map_or(rest, |(path, _query)| path),
        None if location.contains("://") => return Err(bad()),
        None => location,
    };
    if path.is_empty() || path.starts_with(":memory:") || path.contains("mode=memory") {
        return Err(bad());
    }
    Ok(PathBuf::from(path))
}

/// The SQLite [`JobStore`]. Cheap to share behind an `Arc`; the database lock is held until
/// it is dropped.
#[derive(Debug)]
pub struct SqliteJobStore {
    /// Exactly one connection: SQLite has one writer, so writers queue here, in order.
    writer: SqlitePool,
    /// Read-only connections; WAL lets them read while the writer writes.
    readers: SqlitePool,
    /// Enqueues, committed in groups by [`group_commit`].
    inserts: tokio::sync::mpsc::Sender<PendingInsert>,
    path: PathBuf,
    _lock: ProcessLock,
    /// `GOSTINT_TENANT_MAX_RUNNING` (`0` = no cap), read by each claim.
    tenant_max_running: AtomicUsize,
    /// `GOSTINT_TENANT_MAX_QUEUED` (`0` = no cap), read by each insert group.
    tenant_max_queued: Arc<AtomicU64>,
    /// The sinks handed to [`JobStore::listen`]: the in-process signal for the changes no
    /// worker or handler announces itself (a deleted queued job, whose followers must end).
    sinks: Sinks,
}

/// The sinks [`JobStore::listen`] was given (a closure has no `Debug`: only their count shows).
#[derive(Default)]
struct Sinks(Mutex<Vec<gostint_core::EventSink>>);

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "Sinks({n})")
    }
}

impl SqliteJobStore {
    /// Opens (creating the file and its directory if needed) and migrates the database at
    /// `location` (`sqlite://<path>`, `sqlite:<path>` or a bare path), in WAL mode.
    ///
    /// # Errors
    /// [`StoreError::Backend`] around an [`OpenError`]: a bad location, a database held by
    /// another process ([`OpenError::Locked`]), or a file SQLite cannot open or migrate.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        Self::open_path(&database_path(location)?).await
    }

    /// Opens `gostint.db` in `dir` (tests, tools).
    ///
    /// # Errors
    /// As [`SqliteJobStore::open`].
    pub async fn open_in(dir: &Path) -> Result<Self, StoreError> {
        Self::open_path(&dir.join("gostint.db")).await
    }

    async fn open_path(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Io { path: dir.to_path_buf(), source })?;
        }
        // Before touching the database: a second process must not even migrate it.
        let lock = ProcessLock::acquire(path)?;
        let db_err =
            |source: Box<dyn std::error::Error + Send + Sync>| OpenError::Database { path: path.to_path_buf(), source };

        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses no integrity, only the last commits on power loss.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // No ping before each use: the connections are in-process, a ping is one more
        // round trip to sqlx's connection thread per statement and can find nothing.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            // A claim burst may queue many callers behind the one writer.
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await
            .map_err(|e| db_err(Box::new(e)))?;
        MIGRATOR.run(&writer).await.map_err(|e| db_err(Box::new(e)))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| db_err(Box::new(e)))?;
        let (inserts, queue) = tokio::sync::mpsc::channel(INSERT_QUEUE);
        let tenant_max_queued = Arc::new(AtomicU64::new(0));
        tokio::spawn(group_commit(writer.clone(), queue, tenant_max_queued.clone()));
        tracing::debug!(path = %path.display(), "SQLite job store open");
        Ok(Self {
            writer,
            readers,
            inserts,
            path: path.to_path_buf(),
            _lock: lock,
            tenant_max_running: AtomicUsize::new(0),
            tenant_max_queued,
            sinks: Sinks::default(),
        })
    }

    /// Hands `event` to every sink given to [`JobStore::listen`].
    fn announce(&self, event: &StoreEvent) {
        let sinks = self.sinks.0.lock().map(|s| s.clone()).unwrap_or_default();
        for sink in sinks {
            sink(event.clone());
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connections (the lock goes when the store is dropped).
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    /// What the stale-node sweep does (docs/design.md §5.6): turns **every** `running`/`stopping` job
    /// of `node` into `unknown` with `ended` = `now` and the node-lost output, blanking its
    /// secrets like any end; returns how many.
    async fn mark_lost(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        let output = node.lost_message();
        let done = sqlx::query(concat!(
            "UPDATE jobs SET status = 'unknown', ended = ?2, output = ?3, ",
            blank_secrets!(),
            " WHERE node_uuid = ?1 AND status IN ('running', 'stopping')"
        ))
        .bind(node.as_str())
        .bind(now.millis())
        .bind(&output)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    /// The query plan SQLite picks for a claim, one line per step (for tests and tuning).
    ///
    /// # Errors
    /// A database failure.
    pub async fn explain_claim(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {CLAIM}"))
            .bind("node")
            .bind(0_i64)
            .bind(1_i64)
            .bind(0_i64)
            .fetch_all(&self.writer)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| r.try_get::<String, _>("detail").map_err(backend)).collect()
    }
}

// ---------------------------------------------------------------- SQL

/// The fair pick shared by both claim statements (docs/design.md §5.2, §10), from `heads(seq, tenant,
/// submitted)`: the free queue heads, one per (tenant, qname). `ranked` numbers each tenant's
/// heads oldest first; `tstat` has each such tenant's active jobs and when it last had a job
/// started. Slots then go round-robin over tenants: every tenant's first head before any
/// second head, and among tenants the one served least recently first (the oldest head
/// breaks ties). `?4` > 0 caps a tenant's active jobs (`GOSTINT_TENANT_MAX_RUNNING`): a head
/// is skipped if starting it (and the tenant's earlier-ranked heads) would pass the cap.
/// With one writer the counts cannot change under the statement.
macro_rules! fair_pick {
    () => {
        "ranked(seq, tenant, submitted, rk) AS (
           SELECT h.seq, h.tenant, h.submitted,
                  ROW_NUMBER() OVER (PARTITION BY h.tenant ORDER BY h.submitted, h.seq) FROM heads h
         ),
         tstat(tenant, active, last_started) AS (
           SELECT t.tenant,
                  (SELECT COUNT(*) FROM jobs a WHERE a.tenant = t.tenant AND a.status IN ('running', 'stopping')),
                  (SELECT COALESCE(MAX(s.started), 0) FROM jobs s WHERE s.tenant = t.tenant)
           FROM (SELECT DISTINCT tenant FROM ranked) t
         ),
         picked(seq) AS (
           SELECT r.seq FROM ranked r JOIN tstat t ON t.tenant = r.tenant
           WHERE ?4 = 0 OR r.rk + t.active <= ?4
           ORDER BY r.rk, t.last_started, r.submitted, r.seq LIMIT ?3
         )
         UPDATE jobs SET status = 'running', node_uuid = ?1,
           -- Never before the queue's previous job ended (see the PostgreSQL store).
           started = MAX(?2, (SELECT COALESCE(MAX(p.ended), 0) FROM jobs p
                              WHERE p.tenant = jobs.tenant AND p.qname = jobs.qname))
         WHERE seq IN (SELECT seq FROM picked)
         RETURNING "
    };
}

/// The claim, in one statement (docs/design.md §5.2, §10).
///
/// `queues` walks the distinct (tenant, qname) keys that have a queued job by skipping
/// through the `jobs_claim` index (`status, tenant, qname, …`): one seek per queue, however
/// many rows each queue holds or how many queues have only ended jobs. `heads` keeps the
/// queues with no active job (a seek in the partial unique index) and takes each one's head,
/// its oldest queued row by (`submitted`, `seq`) (one more seek). [`fair_pick`] chooses
/// which heads become `running`. The partial unique index makes a second active job in a
/// queue impossible even if this were wrong: the whole statement would fail instead.
const CLAIM: &str = concat!(
    "WITH RECURSIVE
       queues(tenant, qname) AS (
         SELECT * FROM (SELECT tenant, qname FROM jobs WHERE status = 'queued' ORDER BY tenant, qname LIMIT 1)
         UNION ALL
         SELECT (SELECT j.tenant FROM jobs j WHERE j.status = 'queued' AND (j.tenant, j.qname) > (queues.tenant, queues.qname)
                 ORDER BY j.tenant, j.qname LIMIT 1),
                (SELECT j.qname FROM jobs j WHERE j.status = 'queued' AND (j.tenant, j.qname) > (queues.tenant, queues.qname)
                 ORDER BY j.tenant, j.qname LIMIT 1)
         FROM queues WHERE queues.qname IS NOT NULL
       ),
       heads0(seq) AS (
         SELECT (SELECT h.seq FROM jobs h WHERE h.status = 'queued' AND h.tenant = queues.tenant
                 AND h.qname = queues.qname ORDER BY h.submitted, h.seq LIMIT 1)
         FROM queues
         WHERE queues.qname IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.tenant = queues.tenant
                           AND a.qname = queues.qname AND a.status IN ('running', 'stopping'))
       ),
       heads(seq, tenant, submitted) AS (
         SELECT j.seq, j.tenant, j.submitted FROM heads0 JOIN jobs j ON j.seq = heads0.seq
       ),
     ",
    fair_pick!(),
    columns!()
);

/// How many of the oldest queued jobs the fast path of a claim looks at. (`INDEXED BY`
/// below: without statistics SQLite would sort every queued row instead, O(n).)
const FAST_WINDOW: i64 = 256;

/// The claim's fast path, used when at most [`FAST_WINDOW`] jobs are queued: walking them
/// oldest first (`jobs_queued_order`) and keeping those that head a free queue finds every
/// free head without walking the queues. (With more queued, a tenant's heads could lie
/// beyond the window and a fair pick must see them: [`CLAIM`] runs instead.)
const CLAIM_FAST: &str = concat!(
    "WITH cand(seq, tenant, qname, submitted) AS (
       SELECT seq, tenant, qname, submitted FROM jobs INDEXED BY jobs_queued_order
       WHERE status = 'queued' ORDER BY submitted, seq LIMIT ?5
     ),
     heads(seq, tenant, submitted) AS (
       SELECT c.seq, c.tenant, c.submitted FROM cand c
       WHERE NOT EXISTS (SELECT 1 FROM jobs e WHERE e.status = 'queued' AND e.tenant = c.tenant AND e.qname = c.qname
                         AND (e.submitted < c.submitted OR (e.submitted = c.submitted AND e.seq < c.seq)))
         AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.tenant = c.tenant AND a.qname = c.qname
                         AND a.status IN ('running', 'stopping'))
     ),
     ",
    fair_pick!(),
    columns!()
);

/// Whether the fast path's window saw every queued job.
const QUEUED_BEYOND_WINDOW: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_queued_order WHERE status = 'queued' LIMIT ?1)";

const SELECT_BY_ID: &str = concat!("SELECT ", columns!(), " FROM jobs WHERE id = ?1");

/// `IN (…)` of the statuses from which `event` is allowed, from the one state machine.
fn statuses_allowing(event: JobEvent) -> Vec<JobStatus> {
    JobStatus::ALL.into_iter().filter(|st| st.transition(event).is_ok()).collect()
}

fn sql_list(statuses: &[JobStatus]) -> String {
    // Our own status words (no quotes in them), not caller input.
    statuses.iter().map(|st| format!("'{}'", st.as_str())).collect::<Vec<_>>().join(", ")
}

fn owner_of<'a>(who: &Visibility<'a>) -> Option<&'a str> {
    match who {
        Visibility::All => None,
        Visibility::Owner(owner) => Some(owner.as_str()),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row as stored.
#[derive(sqlx::FromRow)]
struct JobRow {
    seq: i64,
    id: String,
    qname: String,
    owner: String,
    status: String,
    node_uuid: String,
    submitted: i64,
    started: i64,
    ended: i64,
    output: String,
    stderr: String,
    return_code: i64,
    tty: bool,
    container_id: String,
    container_image: String,
    kill_requested: bool,
    definition: String,
    wrap_secret_id: String,
    payload: Option<String>,
    tenant: String,
    wrap_expires: i64,
}

impl JobRow {
    fn into_record(self) -> Result<JobRecord, StoreError> {
        let corrupt =
            |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("job seq {}: {what}: {e}", self.seq));
        let id = JobId::from_str(&self.id).map_err(|e| corrupt("id", &e))?;
        let status = JobStatus::from_str(&self.status).map_err(|e| corrupt("status", &e))?;
        let definition: JobDefinition =
            serde_json::from_str(&self.definition).map_err(|e| corrupt("definition", &e))?;
        Ok(JobRecord {
            id,
            status,
            node_uuid: self.node_uuid,
            qname: self.qname,
            owner: Owner::new(self.owner),
            container_image: self.container_image,
            submitted: Timestamp::from_millis(self.submitted),
            started: Timestamp::from_millis(self.started),
            ended: Timestamp::from_millis(self.ended),
            output: self.output,
            stderr: self.stderr,
            return_code: self.return_code,
            tty: self.tty,
            container_id: self.container_id,
            kill_requested: self.kill_requested,
            definition,
            wrap_secret_id: self.wrap_secret_id,
            payload: self.payload,
            tenant: self.tenant,
            wrap_expires: Timestamp::from_millis(self.wrap_expires),
        })
    }
}

fn records(rows: Vec<JobRow>) -> Result<Vec<JobRecord>, StoreError> {
    rows.into_iter().map(JobRow::into_record).collect()
}

// ---------------------------------------------------------------- the port

/// Enqueues waiting for the writer at once (at most this many) commit in one transaction.
const MAX_GROUP: usize = 64;
/// Enqueues that may wait for the group-commit task before callers wait to hand theirs over.
const INSERT_QUEUE: usize = 1024;

/// A job's row as `enqueue` writes it.
struct InsertRow {
    id: String,
    qname: String,
    owner: String,
    submitted: i64,
    tty: bool,
    image: String,
    definition: String,
    wrap_secret_id: String,
    payload: Option<String>,
    tenant: String,
    wrap_expires: i64,
}

/// Why an insert group was not committed.
#[derive(Debug)]
enum InsertError {
    Sql(sqlx::Error),
    /// A row's tenant is at `GOSTINT_TENANT_MAX_QUEUED` (nothing of the group was written).
    Quota {
        tenant: String,
        queued: u64,
        limit: u64,
    },
}

impl From<sqlx::Error> for InsertError {
    fn from(e: sqlx::Error) -> Self {
        InsertError::Sql(e)
    }
}

impl From<InsertError> for StoreError {
    fn from(e: InsertError) -> Self {
        match e {
            InsertError::Sql(e) => backend(e),
            InsertError::Quota { tenant, queued, limit } => StoreError::QueueQuota { tenant, queued, limit },
        }
    }
}

type PendingInsert = gostint_core::group_commit::Pending<InsertRow, InsertError>;

fn insert(r: &InsertRow) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    sqlx::query(
        "INSERT INTO jobs (id, qname, owner, status, submitted, tty, container_image, definition,
                           wrap_secret_id, payload, tenant, wrap_expires)
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind(&r.id)
    .bind(&r.qname)
    .bind(&r.owner)
    .bind(r.submitted)
    .bind(r.tty)
    .bind(&r.image)
    .bind(&r.definition)
    .bind(&r.wrap_secret_id)
    .bind(&r.payload)
    .bind(&r.tenant)
    .bind(r.wrap_expires)
}

/// The group's rows in one transaction. With a queue cap (`max_queued` > 0) each tenant's
/// queued jobs are counted (up to the cap) inside that transaction, on the one writer, so
/// no other insert can come between the count and the insert: a row past the cap fails the
/// group, which [`gostint_core::group_commit`] then retries row by row (each caller gets its
/// own answer).
async fn insert_group(writer: &SqlitePool, rows: &[&InsertRow], max_queued: u64) -> Result<(), InsertError> {
    let mut tx = WriterTx::begin(writer, false).await?;
    if max_queued > 0 {
        let mut queued: HashMap<&str, u64> = HashMap::new();
        for row in rows {
            let n = match queued.get(row.tenant.as_str()) {
                Some(n) => *n,
                None => {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND tenant = ?1 LIMIT ?2)",
                    )
                    .bind(&row.tenant)
                    .bind(i64::try_from(max_queued).unwrap_or(i64::MAX))
                    .fetch_one(&mut *tx)
                    .await?;
                    u64::try_from(n).unwrap_or(0)
                }
            };
            if n >= max_queued {
                tx.rollback().await;
                return Err(InsertError::Quota { tenant: row.tenant.clone(), queued: n, limit: max_queued });
            }
            queued.insert(row.tenant.as_str(), n + 1);
        }
    }
    for row in rows {
        insert(row).execute(&mut *tx).await?;
    }
    Ok(tx.commit().await?)
}

/// Group commit ([`gostint_core::group_commit`]): whatever enqueues are waiting when the
/// writer comes free go in one transaction, so a burst of POSTs costs one commit (and one
/// trip to SQLite's thread per row) instead of a transaction each. Ends when the store is
/// dropped.
async fn group_commit(
    writer: SqlitePool,
    queue: tokio::sync::mpsc::Receiver<PendingInsert>,
    max_queued: Arc<AtomicU64>,
) {
    gostint_core::group_commit::run(queue, MAX_GROUP, async move |rows: &[&InsertRow]| {
        insert_group(&writer, rows, max_queued.load(Ordering::Relaxed)).await
    })
    .await;
    tracing::debug!("SQLite enqueue task ended");
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn enqueue(&self, job: NewJob) -> Result<(), StoreError> {
        let definition = serde_json::to_string(&job.definition).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let row = InsertRow {
            id: job.id.to_hex(),
            qname: job.qname,
            owner: job.owner.as_str().to_string(),
            submitted: job.submitted.millis(),
            tty: job.definition.tty,
            image: job.definition.container_image,
            definition,
            wrap_secret_id: job.wrap_secret_id,
            payload: job.payload,
            tenant: job.tenant,
            wrap_expires: job.wrap_expires.millis(),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || {
            tracing::error!("the SQLite enqueue task has stopped");
            StoreError::Backend("the SQLite enqueue task has stopped".into())
        };
        self.inserts.send((row, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(StoreError::from)
    }

    /// One `UPDATE … RETURNING` on the writer (see `CLAIM`).
    ///
    /// Not cancel-safe: once the statement has been sent, dropping the future does not undo
    /// it, so jobs may become `running` on this node with nobody told. Don't race it in a
    /// `select!` against anything but shutdown.
    async fn claim(&self, node: &NodeId, max: usize, now: Timestamp) -> Result<Vec<JobRecord>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        // One connection for the whole claim (it is the only writer): nothing interleaves.
        let mut conn = self.writer.acquire().await.map_err(backend)?;
        let tenant_cap = i64::try_from(self.tenant_max_running.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        let claimed = async {
            // The fast path only when its window holds every queued job: the fair pick
            // must see every tenant's heads.
            let queued: i64 =
                sqlx::query_scalar(QUEUED_BEYOND_WINDOW).bind(FAST_WINDOW + 1).fetch_one(&mut *conn).await?;
            let statement = if queued <= FAST_WINDOW { CLAIM_FAST } else { CLAIM };
            let query = sqlx::query_as::<_, JobRow>(statement)
                .bind(node.as_str())
                .bind(now.millis())
                .bind(limit(max))
                .bind(tenant_cap);
            let query = if queued <= FAST_WINDOW { query.bind(FAST_WINDOW) } else { query };
            query.fetch_all(&mut *conn).await
        }
        .await;
        drop(conn);
        let mut rows = match claimed {
            Ok(rows) => rows,
            // docs/design.md §5.2: a unique violation means the queue is busy. With one writer it
            // cannot happen; if it ever does, the statement changed nothing.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tracing::warn!(error = %e, "claim met an active job; nothing claimed");
                return Ok(Vec::new());
            }
            Err(e) => return Err(backend(e)),
        };
        // RETURNING has no order; hand the jobs out oldest first.
        rows.sort_by_key(|r| (r.submitted, r.seq));
        records(rows)
    }

    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query_as::<_, JobRow>(SELECT_BY_ID)
            .bind(id.to_hex())
            .fetch_optional(&self.readers)
            .await
            .map_err(backend)?;
        row.map(JobRow::into_record).transpose()
    }

    async fn set_container(&self, id: &JobId, image: &str, container_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET container_image = ?2, container_id = ?3 WHERE id = ?1")
            .bind(id.to_hex())
            .bind(image)
            .bind(container_id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn clear_wrap_secret_id(&self, id: &JobId) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET wrap_secret_id = '' WHERE id = ?1")
            .bind(id.to_hex())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn finish(&self, id: &JobId, node: &NodeId, outcome: Outcome, ended: Timestamp) -> Result<bool, StoreError> {
        // Only the moves the state machine allows: running → success/failed/notauthorised,
        // stopping → failed, unknown → the real outcome.
        let from = statuses_allowing(JobEvent::Finish(outcome.status));
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE jobs SET status = ?3, output = ?4, stderr = ?5, return_code = ?6, ended = MAX(?7, started), {}
             WHERE id = ?1 AND node_uuid = ?2 AND status IN ({})",
            blank_secrets!(),
            sql_list(&from)
        );
        let done = sqlx::query(&sql)
            .bind(id.to_hex())
            .bind(node.as_str())
            .bind(outcome.status.as_str())
            .bind(&outcome.output)
            .bind(&outcome.stderr)
            .bind(outcome.return_code)
            .bind(ended.millis())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn request_kill(
        &self,
        id: &JobId,
        who: Visibility<'_>,
        now: Timestamp,
    ) -> Result<Option<KillOutcome>, StoreError> {
        let hex = id.to_hex();
        let mut tx = WriterTx::begin(&self.writer, true).await.map_err(backend)?;
        let found = sqlx::query("SELECT status, container_id FROM jobs WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)")
            .bind(&hex)
            .bind(owner_of(&who))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = found else {
            tx.rollback().await;
            return Ok(None);
        };
        let status: String = row.try_get("status").map_err(backend)?;
        let previous = JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(format!("job {hex}: {e}")))?;
        let container_id: String = row.try_get("container_id").map_err(backend)?;
        if previous.transition(JobEvent::Kill) == Ok(JobStatus::Failed) {
            // queued → failed at once (docs/design.md §2.9), conditional on it still being queued.
            sqlx::query(concat!(
                "UPDATE jobs SET status = 'failed', ended = ?2, output = 'job killed', kill_requested = 1, ",
                blank_secrets!(),
                " WHERE id = ?1 AND status = 'queued'"
            ))
            .bind(&hex)
            .bind(now.millis())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        } else {
            sqlx::query("UPDATE jobs SET kill_requested = 1 WHERE id = ?1")
                .bind(&hex)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Some(KillOutcome { previous, container_id }))
    }

    async fn mark_stopping(&self, id: &JobId) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE jobs SET status = 'stopping' WHERE id = ?1 AND status = 'running'")
            .bind(id.to_hex())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn kills_pending(&self, node: &NodeId) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query_as::<_, JobRow>(concat!(
            "SELECT ",
            columns!(),
            " FROM jobs WHERE node_uuid = ?1 AND status = 'running' AND kill_requested = 1 ORDER BY seq"
        ))
        .bind(node.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        records(rows)
    }

    async fn delete(&self, id: &JobId, who: Visibility<'_>) -> Result<DeleteOutcome, StoreError> {
        let hex = id.to_hex();
        let owner = owner_of(&who);
        let mut tx = WriterTx::begin(&self.writer, true).await.map_err(backend)?;
        // One conditional statement does the deleting (docs/design.md §2.8); the read only explains a refusal.
        let done = sqlx::query(
            "DELETE FROM jobs WHERE id = ?1 AND (?2 IS NULL OR owner = ?2) AND status NOT IN ('running', 'stopping')",
        )
        .bind(&hex)
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let outcome = if done.rows_affected() == 1 {
            DeleteOutcome::Deleted
        } else {
            let visible = sqlx::query("SELECT 1 FROM jobs WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)")
                .bind(&hex)
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            if visible.is_some() {
                DeleteOutcome::Active
            } else {
                DeleteOutcome::NotFound
            }
        };
        tx.commit().await.map_err(backend)?;
        if outcome == DeleteOutcome::Deleted {
            // Streams and long-polls following the job (perhaps still queued) must end now.
            self.announce(&StoreEvent::JobChanged(*id));
        }
        Ok(outcome)
    }

    async fn list(&self, who: Visibility<'_>, skip: u64, limit: u64) -> Result<(Vec<JobRecord>, u64), StoreError> {
        // Two shapes rather than `?1 IS NULL OR owner = ?1`, so each walks its own index.
        let (page_sql, count_sql) = match who {
            Visibility::All => (
                concat!("SELECT ", list_columns!(), " FROM jobs ORDER BY submitted DESC, seq DESC LIMIT ?2 OFFSET ?3"),
                "SELECT COUNT(*) FROM jobs",
            ),
            Visibility::Owner(_) => (
                concat!(
                    "SELECT ",
                    list_columns!(),
                    " FROM jobs WHERE owner = ?1 ORDER BY submitted DESC, seq DESC LIMIT ?2 OFFSET ?3"
                ),
                "SELECT COUNT(*) FROM jobs WHERE owner = ?1",
            ),
        };
        let owner = owner_of(&who);
        // One read transaction, so the page and the total agree.
        let mut tx = self.readers.begin().await.map_err(backend)?;
        let rows = sqlx::query_as::<_, JobRow>(page_sql)
            .bind(owner)
            .bind(to_i64(limit))
            .bind(to_i64(skip))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let total: i64 = sqlx::query_scalar(count_sql).bind(owner).fetch_one(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok((records(rows)?, u64::try_from(total).unwrap_or(0)))
    }

    async fn count_by_status(&self) -> Result<HashMap<JobStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .fetch_all(&self.readers)
            .await
            .map_err(backend)?;
        let mut counts: HashMap<JobStatus, u64> = JobStatus::ALL.into_iter().map(|st| (st, 0)).collect();
        for (status, n) in rows {
            let st = JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            counts.insert(st, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    async fn count_active_on(&self, node: &NodeId) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE node_uuid = ?1 AND status IN ('running', 'stopping')")
                .bind(node.as_str())
                .fetch_one(&self.readers)
                .await
                .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        // The status list repeats the `jobs_ended` partial index's, so SQLite can use it.
        let done = sqlx::query(
            "DELETE FROM jobs WHERE status IN ('success', 'failed', 'notauthorised', 'unknown') AND ended < ?1",
        )
        .bind(cutoff.millis())
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn heartbeat(&self, node: &NodeId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (node_uuid, last_seen) VALUES (?1, ?2)
             ON CONFLICT (node_uuid) DO UPDATE SET last_seen = excluded.last_seen",
        )
        .bind(node.as_str())
        .bind(now.millis())
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn deregister(&self, node: &NodeId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE node_uuid = ?1")
            .bind(node.as_str())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn mark_node_lost(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        self.mark_lost(node, now).await
    }

    async fn reap_stale_nodes(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        except: &NodeId,
    ) -> Result<Vec<NodeId>, StoreError> {
        let rows = sqlx::query("SELECT node_uuid FROM nodes WHERE last_seen < ?1 AND node_uuid <> ?2")
            .bind(cutoff.millis())
            .bind(except.as_str())
            .fetch_all(&self.writer)
            .await
            .map_err(backend)?;
        let mut reaped = Vec::new();
        for row in rows {
            let node = NodeId::new(row.try_get::<String, _>("node_uuid").map_err(backend)?);
            self.mark_lost(&node, now).await?;
            self.deregister(&node).await?;
            reaped.push(node);
        }
        Ok(reaped)
    }

    async fn orphan_owners(&self, except: &NodeId) -> Result<Vec<NodeId>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT node_uuid FROM jobs
             WHERE status IN ('running', 'stopping') AND node_uuid <> ?1
               AND node_uuid NOT IN (SELECT node_uuid FROM nodes)",
        )
        .bind(except.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| r.try_get::<String, _>("node_uuid").map(NodeId::new).map_err(backend)).collect()
    }

    async fn listen(&self, sink: gostint_core::EventSink) -> Result<(), StoreError> {
        // One process per SQLite file: no other process causes events, so this returns at
        // once. The sink is kept for the one change nobody else announces in-process: a
        // delete (its followers must hear that the job is gone).
        if let Ok(mut sinks) = self.sinks.0.lock() {
            sinks.push(sink);
        }
        Ok(())
    }

    fn set_tenant_max_running(&self, max: usize) {
        self.tenant_max_running.store(max, Ordering::Relaxed);
    }

    fn set_tenant_max_queued(&self, max: u64) {
        self.tenant_max_queued.store(max, Ordering::Relaxed);
    }

    async fn count_by_tenant(&self) -> Result<HashMap<String, TenantLoad>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT tenant, status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'stopping')
             GROUP BY tenant, status",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        let mut load: HashMap<String, TenantLoad> = HashMap::new();
        for (tenant, status, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            let t = load.entry(tenant).or_default();
            if status == "queued" {
                t.queued += n;
            } else {
                t.running += n;
            }
        }
        Ok(load)
    }

    async fn count_queued(&self, tenant: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND tenant = ?1")
            .bind(tenant)
            .fetch_one(&self.readers)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn append_output(
        &self,
        id: &JobId,
        node: &NodeId,
        stdout: &str,
        stderr: &str,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let sql = if replace {
            "UPDATE jobs SET output = ?3, stderr = ?4
             WHERE id = ?1 AND node_uuid = ?2 AND status IN ('running', 'stopping')"
        } else {
            "UPDATE jobs SET output = output || ?3, stderr = stderr || ?4
             WHERE id = ?1 AND node_uuid = ?2 AND status IN ('running', 'stopping')"
        };
        let done = sqlx::query(sql)
            .bind(id.to_hex())
            .bind(node.as_str())
            .bind(stdout)
            .bind(stderr)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn active_ids_on(&self, node: &NodeId) -> Result<Vec<JobId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE node_uuid = ?1 AND status IN ('running', 'stopping') ORDER BY seq",
        )
        .bind(node.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        ids.iter().map(|h| h.parse::<JobId>().map_err(|e| StoreError::Corrupt(format!("job id {h:?}: {e}")))).collect()
    }

    async fn record_image_pull(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pulled_images (engine, image, last_used) VALUES (?1, ?2, ?3)
             ON CONFLICT (engine, image) DO UPDATE SET last_used = MAX(last_used, excluded.last_used)",
        )
        .bind(engine)
        .bind(image)
        .bind(now.millis())
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn touch_image(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE pulled_images SET last_used = ?3 WHERE engine = ?1 AND image = ?2 AND last_used < ?3")
            .bind(engine)
            .bind(image)
            .bind(now.millis())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn images_unused_since(&self, engine: &str, cutoff: Timestamp) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT image FROM pulled_images WHERE engine = ?1 AND last_used < ?2 ORDER BY image")
            .bind(engine)
            .bind(cutoff.millis())
            .fetch_all(&self.readers)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| r.try_get::<String, _>("image").map_err(backend)).collect()
    }

    async fn forget_image(&self, engine: &str, image: &str, cutoff: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pulled_images WHERE engine = ?1 AND image = ?2 AND last_used < ?3")
            .bind(engine)
            .bind(image)
            .bind(cutoff.millis())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_files() {
        for (location, path) in [
            ("sqlite:///var/lib/gostint/gostint.db", "/var/lib/gostint/gostint.db"),
            ("sqlite://data/g.db", "data/g.db"),
            ("sqlite:data/g.db?mode=rwc", "data/g.db"),
            ("/tmp/x.db", "/tmp/x.db"),
            ("rel.db", "rel.db"),
        ] {
            assert_eq!(database_path(location).unwrap(), PathBuf::from(path), "{location}");
        }
        for bad in ["", "sqlite://", "sqlite::memory:", "sqlite://:memory:", "postgres://h/db", "mongodb://h:27017"] {
            assert!(matches!(database_path(bad), Err(OpenError::BadLocation(_))), "{bad}");
        }
    }

    #[test]
    fn purge_and_schema_status_lists_are_the_final_statuses() {
        let finals: Vec<JobStatus> = JobStatus::ALL.into_iter().filter(JobStatus::is_final).collect();
        assert_eq!(sql_list(&finals), "'success', 'failed', 'notauthorised', 'unknown'");
        let active: Vec<JobStatus> = JobStatus::ALL.into_iter().filter(JobStatus::is_active).collect();
        assert_eq!(sql_list(&active), "'running', 'stopping'");
    }

    #[test]
    fn finish_is_allowed_from_the_state_machines_statuses() {
        assert_eq!(
            statuses_allowing(JobEvent::Finish(JobStatus::Success)),
            vec![JobStatus::Running, JobStatus::Unknown]
        );
        assert_eq!(
            statuses_allowing(JobEvent::Finish(JobStatus::Failed)),
            vec![JobStatus::Running, JobStatus::Stopping, JobStatus::Unknown]
        );
        assert!(statuses_allowing(JobEvent::Finish(JobStatus::Queued)).is_empty());
    }
}
