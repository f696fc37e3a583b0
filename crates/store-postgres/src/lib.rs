//! gostint's [`JobStore`] on PostgreSQL: the store for several gostint nodes sharing one
//! database (docs/design.md §1, §5.2, §5.6).
//!
//! Start at [`PgJobStore::connect`]. The schema lives in `migrations/` (run at connect, under
//! sqlx's advisory lock, so nodes starting together migrate once). The queue rules are in
//! the database, not in this code: a partial unique index allows one `running`/`stopping`
//! row per `qname`, and the claim (`CLAIM` below) moves every free queue's head to
//! `running` in one `UPDATE … RETURNING`, so a node that loses a race simply gets fewer
//! rows. Every write that may let another node claim or kill sends `pg_notify` in the same
//! statement or transaction; [`JobStore::listen`] turns those into [`StoreEvent`]s.
//!
//! Optional Vault-issued credentials (docs/design.md §6.1 `GOSTINT_RUN_ROLEID`) are in [`vault`]:
//! they swap the connection pool behind the store when the credentials rotate.
//!
//! This crate must not know the API, the worker or Docker; it only speaks the core types.
//! Its behaviour is pinned by `gostint-store-contract`, as the SQLite store's is.
#![warn(missing_docs)]

pub mod vault;

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use gostint_core::{
    DeleteOutcome, EventSink, JobDefinition, JobEvent, JobId, JobRecord, JobStatus, JobStore, KillOutcome, NewJob,
    NodeId, Outcome, Owner, StoreError, StoreEvent, TenantLoad, Timestamp, Visibility,
};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

/// The NOTIFY channel every node listens on.
pub const CHANNEL: &str = "gostint_events";
/// Payload: a job was queued or a queue freed.
const CLAIMABLE: &str = "claimable";
/// Payload: a kill was requested for an active job.
const KILL: &str = "kill";

/// Connections per node unless the caller says otherwise (API reads, claims, finishes).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// Longest pause between two attempts of the listener to reconnect.
const LISTEN_MAX_BACKOFF: Duration = Duration::from_secs(30);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Every column a [`JobRecord`] is read from, `seq` first.
macro_rules! columns {
    () => {
        "seq, id, qname, owner, status, node_uuid, submitted, started, ended, output, stderr, return_code, \
         tty, container_id, container_image, kill_requested, definition, definition_secrets, wrap_secret_id, payload, \
         tenant, wrap_expires"
    };
}

/// [`columns`] for a list page: only the last `LIST_OUTPUT_TAIL` (4096) characters of
/// `output` and `stderr` (issue 16, item 9).
macro_rules! list_columns {
    () => {
        "seq, id, qname, owner, status, node_uuid, submitted, started, ended, right(output, 4096) AS output, right(stderr, 4096) AS stderr, return_code, \
         tty, container_id, container_image, kill_requested, definition, definition_secrets, wrap_secret_id, payload, \
         tenant, wrap_expires"
    };
}

/// The assignments that blank what a finished job must not keep (docs/defects.md item 37).
macro_rules! blank_secrets {
    () => {
        "payload = NULL, wrap_secret_id = '', definition_secrets = NULL"
    };
}

/// Why a PostgreSQL store could not be opened (boxed into [`StoreError::Backend`]; callers
/// may downcast to it).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not a PostgreSQL URL sqlx understands.
    #[error("{0:?} is not a PostgreSQL URL (expected postgres://user:password@host:port/database)")]
    BadUrl(String),
    /// The database could not be reached or refused the credentials.
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    /// The schema could not be migrated.
    #[error("cannot migrate the PostgreSQL job store")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl From<ConnectError> for StoreError {
    fn from(e: ConnectError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    // No connection in time, or the server went away: unavailable (503), not broken (500).
    if matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) {
        return StoreError::Unavailable(Box::new(e));
    }
    StoreError::Backend(Box::new(e))
}

/// How long a statement waits for a pool connection (`GOSTINT_STORE_TIMEOUT`), in ms.
static ACQUIRE_TIMEOUT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(5_000);

/// Sets how long a statement waits for a pool connection before the store answers
/// [`StoreError::Unavailable`] (`GOSTINT_STORE_TIMEOUT`, default 5 s): pools opened from
/// then on use it. Process-wide, like the setting.
pub fn set_acquire_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
    ACQUIRE_TIMEOUT_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

fn acquire_timeout() -> Duration {
    Duration::from_millis(ACQUIRE_TIMEOUT_MS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Parses a `postgres://` or `postgresql://` URL into connect options, without a connection.
///
/// # Errors
/// [`ConnectError::BadUrl`] (the message never repeats the URL's password).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, ConnectError> {
    let redacted = redact_url(url);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConnectError::BadUrl(redacted));
    }
    PgConnectOptions::from_str(url).map_err(|_| ConnectError::BadUrl(redacted))
}

/// `url` with any password replaced by `***`, for messages.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The pool in use and how it was built; replaced whole when credentials rotate.
#[derive(Clone)]
pub(crate) struct Backend {
    pub(crate) pool: PgPool,
    pub(crate) options: PgConnectOptions,
}

impl std::fmt::Debug for Backend {
    // Not derived: `PgConnectOptions`' own Debug shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.options.get_database())
            .field("user", &self.options.get_username())
            .finish_non_exhaustive()
    }
}

/// Shared between the store, its listeners and a credential rotation task.
#[derive(Debug)]
pub(crate) struct Shared {
    backend: RwLock<Backend>,
    /// Bumped at every pool swap, so listeners move to the new credentials.
    generation: tokio::sync::watch::Sender<u64>,
    /// Cancelled by [`PgJobStore::close`] and on drop: listeners and rotation stop.
    pub(crate) closed: CancellationToken,
}

impl Shared {
    pub(crate) fn backend(&self) -> Backend {
        // A poisoned lock only means a panic elsewhere while swapping two values; the
        // value inside is still one whole `Backend`.
        self.backend.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new pool in place and returns the old one (the caller closes it).
    pub(crate) fn swap(&self, next: Backend) -> Backend {
        let old = {
            let mut guard = self.backend.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *guard, next)
        };
        self.generation.send_modify(|g| *g += 1);
        old
    }
}

/// The PostgreSQL [`JobStore`]. Cheap to share behind an `Arc`; several processes (nodes)
/// may use one database at once.
#[derive(Debug)]
pub struct PgJobStore {
    shared: Arc<Shared>,
    /// `GOSTINT_TENANT_MAX_RUNNING` (`0` = no cap), read by each claim.
    tenant_max_running: AtomicUsize,
    /// `GOSTINT_TENANT_MAX_QUEUED` (`0` = no cap), read by each insert group.
    tenant_max_queued: Arc<AtomicU64>,
    /// Enqueues, committed in groups by [`group_commit`].
    inserts: tokio::sync::mpsc::Sender<PendingInsert>,
}

impl Drop for PgJobStore {
    fn drop(&mut self) {
        self.shared.closed.cancel();
    }
}

impl PgJobStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`) with
    /// [`DEFAULT_MAX_CONNECTIONS`] and migrates the schema.
    ///
    /// # Errors
    /// [`StoreError::Backend`] around a [`ConnectError`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(connect_options(url)?, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with parsed options and a pool of at most `max_connections`, and migrates.
    ///
    /// # Errors
    /// [`StoreError::Backend`] around a [`ConnectError`].
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<Self, StoreError> {
        migrate(&options).await?;
        let pool = open_pool(&options, max_connections).await?;
        tracing::debug!(host = options.get_host(), database = options.get_database(), "PostgreSQL job store open");
        Ok(Self::from_backend(Backend { pool, options }))
    }

    pub(crate) fn from_backend(backend: Backend) -> Self {
        let (generation, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared { backend: RwLock::new(backend), generation, closed: CancellationToken::new() });
        let (inserts, queue) = tokio::sync::mpsc::channel(INSERT_QUEUE);
        let tenant_max_queued = Arc::new(AtomicU64::new(0));
        tokio::spawn(group_commit(shared.clone(), queue, tenant_max_queued.clone()));
        Self { shared, inserts, tenant_max_running: AtomicUsize::new(0), tenant_max_queued }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn pool(&self) -> PgPool {
        self.shared.backend().pool
    }

    /// Stops the listeners and credential rotation and closes the connections.
    pub async fn close(&self) {
        self.shared.closed.cancel();
        self.pool().close().await;
    }

    /// The query plan PostgreSQL picks for a claim (`EXPLAIN`), one line per step, for tests
    /// and tuning. Nothing is claimed.
    ///
    /// # Errors
    /// A database failure.
    pub async fn explain_claim(&self, analyze: bool) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(backend)?;
        let verb = if analyze { "EXPLAIN (ANALYZE, BUFFERS)" } else { "EXPLAIN" };
        let rows = sqlx::query(&format!("{verb} {CLAIM}"))
            .bind("explain")
            .bind(0_i64)
            .bind(i64::MAX)
            .bind(0_i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        // ANALYZE really runs the UPDATE: undo it.
        tx.rollback().await.map_err(backend)?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(backend)).collect()
    }

    /// Ends every active job of `node` as `unknown` inside `tx`; returns how many.
    async fn mark_lost_in(conn: &mut sqlx::PgConnection, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        let row = sqlx::query(MARK_LOST)
            .bind(node.as_str())
            .bind(now.millis())
            .bind(text(&node.lost_message()))
            .fetch_one(conn)
            .await
            .map_err(backend)?;
        let n: i64 = row.try_get("n").map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Longest any one statement of the store may run or wait for a lock: a session that hangs
/// holding a queue head must not stall every claim for ever.
const STATEMENT_TIMEOUT: &str = "60s";

/// Runs the migrations on a connection of their own (without the pool's statement timeout:
/// a future migration may take long), under sqlx's advisory lock.
pub(crate) async fn migrate(options: &PgConnectOptions) -> Result<(), ConnectError> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = options.connect().await.map_err(ConnectError::Connect)?;
    MIGRATOR.run(&mut conn).await.map_err(ConnectError::Migrate)?;
    conn.close().await.map_err(ConnectError::Connect)
}

pub(crate) async fn open_pool(options: &PgConnectOptions, max_connections: u32) -> Result<PgPool, ConnectError> {
    let options = options.clone().options([
        ("statement_timeout", STATEMENT_TIMEOUT),
        ("idle_in_transaction_session_timeout", STATEMENT_TIMEOUT),
    ]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout())
        .connect_with(options)
        .await
        .map_err(ConnectError::Connect)
}

// ---------------------------------------------------------------- SQL

/// The fair pick shared by both claim statements (docs/design.md §5.2, §10), from `heads(seq, tenant,
/// submitted)`: the free queue heads, one per (tenant, qname). `ranked` numbers each tenant's
/// heads oldest first; `tstat` has each such tenant's active jobs and when it last had a job
/// started. Slots go round-robin over tenants: every tenant's first head before any second
/// head, and among tenants the one served least recently first (the oldest head breaks
/// ties). `$4` > 0 caps a tenant's active jobs over all nodes (`GOSTINT_TENANT_MAX_RUNNING`;
/// the claim then runs under an advisory lock so two nodes cannot both take the last slot).
/// `picked` locks the chosen heads by primary key in (submitted, seq) order, which keeps two
/// claimers from deadlocking, with a plain `FOR UPDATE`: never `SKIP LOCKED`, which could
/// pass over a head that another node is busy with and take the job behind it, reordering
/// the queue. A head another node claimed meanwhile fails the UPDATE's re-check of
/// `status = 'queued'` on the row's latest version and is dropped: the loser gets fewer rows.
/// The partial unique index rejects the rest (a queue's job this statement's snapshot could
/// not see): a unique violation, which the caller treats as "busy".
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
         picked(pseq) AS (
           SELECT j.seq FROM jobs j
           WHERE j.seq = ANY (ARRAY(
             SELECT r.seq FROM ranked r JOIN tstat t ON t.tenant = r.tenant
             WHERE $4 = 0 OR r.rk + t.active <= $4
             ORDER BY r.rk, t.last_started, r.submitted, r.seq LIMIT $3))
           ORDER BY j.submitted, j.seq
           FOR UPDATE
         )
         UPDATE jobs SET status = 'running', node_uuid = $1,
           -- Never before the queue's previous job ended (its finish committed before this
           -- claim could see the queue free, but its `ended` was stamped on another clock,
           -- possibly a little later than this claimer's `$2`): recorded times show it serial.
           started = GREATEST($2, (SELECT COALESCE(MAX(p.ended), 0) FROM jobs p
                                   WHERE p.tenant = jobs.tenant AND p.qname = jobs.qname))
         FROM picked
         WHERE jobs.seq = picked.pseq AND jobs.status = 'queued'
         RETURNING "
    };
}

/// The claim, in one statement (docs/design.md §5.2, §10).
///
/// `queues` skips through the partial index `jobs_queued` (`tenant, qname, submitted, seq`)
/// from one queued (tenant, qname) key to the next (PostgreSQL has no skip scan of its own:
/// this is the usual recursive "loose index scan"); the first entry past a key is the next
/// queue's head, so one index seek per queue finds both. Its cost grows with the queues that
/// hold queued jobs, never with the rows or with the queues that hold only ended jobs.
/// `heads` keeps the queues with no active job (one seek in the partial unique index);
/// [`fair_pick`] chooses and claims.
const CLAIM: &str = concat!(
    "WITH RECURSIVE
       queues(tenant, qname, seq, submitted) AS (
         (SELECT tenant, qname, seq, submitted FROM jobs WHERE status = 'queued'
          ORDER BY tenant, qname, submitted, seq LIMIT 1)
         UNION ALL
         SELECT n.tenant, n.qname, n.seq, n.submitted
         FROM queues
         CROSS JOIN LATERAL (SELECT j.tenant, j.qname, j.seq, j.submitted FROM jobs j
                             WHERE j.status = 'queued' AND (j.tenant, j.qname) > (queues.tenant, queues.qname)
                             ORDER BY j.tenant, j.qname, j.submitted, j.seq LIMIT 1) n
       ),
       heads(seq, tenant, submitted) AS (
         SELECT queues.seq, queues.tenant, queues.submitted FROM queues
         WHERE NOT EXISTS (SELECT 1 FROM jobs a WHERE a.tenant = queues.tenant
                           AND a.qname = queues.qname AND a.status IN ('running', 'stopping'))
       ),
     ",
    fair_pick!(),
    columns!()
);

/// How many of the oldest queued jobs the fast path of a claim looks at.
const FAST_WINDOW: i64 = 256;

/// The claim's fast path, used when at most [`FAST_WINDOW`] jobs are queued: walking them
/// oldest first (`jobs_queued_order`) and keeping those that head a free queue finds every
/// free head in O(window) whatever the number of queues. (With more queued, a tenant's heads
/// could lie beyond the window and the fair pick must see them: [`CLAIM`] runs instead.)
const CLAIM_FAST: &str = concat!(
    "WITH cand AS (
       SELECT seq, tenant, qname, submitted FROM jobs WHERE status = 'queued' ORDER BY submitted, seq LIMIT $5
     ),
     heads(seq, tenant, submitted) AS (
       SELECT c.seq, c.tenant, c.submitted FROM cand c
       WHERE NOT EXISTS (SELECT 1 FROM jobs e WHERE e.status = 'queued' AND e.tenant = c.tenant AND e.qname = c.qname
                         AND (e.submitted, e.seq) < (c.submitted, c.seq))
         AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.tenant = c.tenant AND a.qname = c.qname
                         AND a.status IN ('running', 'stopping'))
     ),
     ",
    fair_pick!(),
    columns!()
);

/// The advisory lock key of capped claims (`GOSTINT_TENANT_MAX_RUNNING`): "gostint" in ASCII.
const TENANT_CAP_LOCK: i64 = 0x0067_6f73_7469_6e74;

/// How many queued jobs there are, counted up to a limit.
const QUEUED_UP_TO: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' LIMIT $1) q";

const SELECT_BY_ID: &str = concat!("SELECT ", columns!(), " FROM jobs WHERE id = $1");

/// Ends `$1`'s active jobs as `unknown`; one row: how many, and a notification if any.
const MARK_LOST: &str = concat!(
    "WITH lost AS (
       UPDATE jobs SET status = 'unknown', ended = $2, output = $3, ",
    blank_secrets!(),
    " WHERE node_uuid = $1 AND status IN ('running', 'stopping')
       RETURNING 1
     ),
     n AS (SELECT count(*) AS n FROM lost)
     SELECT n, CASE WHEN n > 0 THEN pg_notify('gostint_events', 'claimable')::text END AS notified FROM n"
);

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

/// PostgreSQL `text` cannot hold NUL (SQLite can): a container that prints one must not
/// make its outcome unstorable, so NUL becomes U+FFFD, as invalid UTF-8 already does.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Enqueues waiting at once (at most this many) go in one statement.
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
    secrets: String,
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

/// The first key of the per-tenant advisory locks of capped inserts ("gost" in ASCII; the
/// second key is the tenant's `hashtext`). Two-key locks never meet the one-key
/// [`TENANT_CAP_LOCK`] of capped claims.
const TENANT_QUEUED_LOCK: i32 = 0x676f_7374;

/// Every row of a group in one `INSERT … SELECT FROM UNNEST` (in the group's order), and one
/// NOTIFY for them all.
///
/// With a queue cap (`max_queued` > 0) the group is one transaction that first takes a
/// transaction-scoped advisory lock per tenant of the group (in name order, so two nodes
/// cannot deadlock), then counts each tenant's queued jobs (up to the cap; READ COMMITTED,
/// so the count sees what earlier holders committed), then inserts: no insert on any node
/// can come between a tenant's count and its insert. A row past the cap fails the group,
/// which [`gostint_core::group_commit`] then retries row by row.
async fn insert_group(pool: &PgPool, rows: &[&InsertRow], max_queued: u64) -> Result<(), InsertError> {
    if max_queued == 0 {
        insert_rows(rows).fetch_all(pool).await?;
        return Ok(());
    }
    let mut tenants: Vec<&str> = rows.iter().map(|r| r.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let limit = i64::try_from(max_queued).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    let mut queued: HashMap<&str, u64> = HashMap::new();
    for tenant in tenants {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(TENANT_QUEUED_LOCK)
            .bind(text(tenant))
            .execute(&mut *tx)
            .await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND tenant = $1 LIMIT $2) q",
        )
        .bind(text(tenant))
        .bind(limit)
        .fetch_one(&mut *tx)
        .await?;
        queued.insert(tenant, u64::try_from(n).unwrap_or(0));
    }
    for row in rows {
        let n = queued.get_mut(row.tenant.as_str()).expect("counted above");
        if *n >= max_queued {
            // Dropping the transaction rolls it back and frees the locks.
            return Err(InsertError::Quota { tenant: row.tenant.clone(), queued: *n, limit: max_queued });
        }
        *n += 1;
    }
    insert_rows(rows).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The group's `INSERT … SELECT FROM UNNEST` (and its NOTIFY).
fn insert_rows<'q>(rows: &[&InsertRow]) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    fn col<T: Clone>(rows: &[&InsertRow], f: impl Fn(&InsertRow) -> T) -> Vec<T> {
        rows.iter().map(|r| f(r)).collect()
    }
    sqlx::query(
        "WITH ins AS (
           INSERT INTO jobs (id, qname, owner, status, submitted, tty, container_image, definition,
                             definition_secrets, wrap_secret_id, payload, tenant, wrap_expires)
           SELECT id, qname, owner, 'queued', submitted, tty, container_image, definition,
                  definition_secrets, wrap_secret_id, payload, tenant, wrap_expires
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::bool[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[])
                  WITH ORDINALITY AS t(id, qname, owner, submitted, tty, container_image, definition,
                                       definition_secrets, wrap_secret_id, payload, tenant, wrap_expires, ord)
            ORDER BY ord
           RETURNING 1
         )
         SELECT pg_notify('gostint_events', 'claimable')::text FROM (SELECT 1 FROM ins LIMIT 1) AS any_row",
    )
    .bind(col(rows, |r| r.id.clone()))
    .bind(col(rows, |r| r.qname.clone()))
    .bind(col(rows, |r| r.owner.clone()))
    .bind(col(rows, |r| r.submitted))
    .bind(col(rows, |r| r.tty))
    .bind(col(rows, |r| r.image.clone()))
    .bind(col(rows, |r| r.definition.clone()))
    .bind(col(rows, |r| r.secrets.clone()))
    .bind(col(rows, |r| r.wrap_secret_id.clone()))
    .bind(col(rows, |r| r.payload.clone()))
    .bind(col(rows, |r| r.tenant.clone()))
    .bind(col(rows, |r| r.wrap_expires))
}

/// Group commit ([`gostint_core::group_commit`]): whatever enqueues are waiting when the
/// previous group is done go in one statement (one transaction, one WAL flush, one NOTIFY).
/// Uses the pool in place at each group (credential rotation swaps it); ends when the store
/// is dropped.
async fn group_commit(
    shared: Arc<Shared>,
    queue: tokio::sync::mpsc::Receiver<PendingInsert>,
    max_queued: Arc<AtomicU64>,
) {
    gostint_core::group_commit::run(queue, MAX_GROUP, async move |rows: &[&InsertRow]| {
        let pool = shared.backend().pool;
        insert_group(&pool, rows, max_queued.load(Ordering::Relaxed)).await
    })
    .await;
    tracing::debug!("PostgreSQL enqueue task ended");
}

/// The definition fields a finished job must not keep, stored apart so that blanking them
/// is one assignment.
#[derive(Serialize, Deserialize)]
struct DefinitionSecrets {
    content: String,
    env_vars: Vec<String>,
}

/// `(definition, definition_secrets)` as stored. serde_json escapes NUL as `\u0000`, so the
/// text columns can hold any definition.
fn split_definition(def: &JobDefinition) -> Result<(String, String), StoreError> {
    let to_json = |e: serde_json::Error| StoreError::Backend(Box::new(e));
    let secrets = DefinitionSecrets { content: def.content.clone(), env_vars: def.env_vars.clone() };
    let rest = JobDefinition { content: String::new(), env_vars: Vec::new(), ..def.clone() };
    Ok((serde_json::to_string(&rest).map_err(to_json)?, serde_json::to_string(&secrets).map_err(to_json)?))
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
    definition_secrets: Option<String>,
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
        let mut definition: JobDefinition =
            serde_json::from_str(&self.definition).map_err(|e| corrupt("definition", &e))?;
        if let Some(secrets) = &self.definition_secrets {
            let secrets: DefinitionSecrets =
                serde_json::from_str(secrets).map_err(|e| corrupt("definition_secrets", &e))?;
            definition.content = secrets.content;
            definition.env_vars = secrets.env_vars;
        }
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

/// Whether a failed claim statement only met another claimer (docs/design.md §5.2: busy, not an error).
fn lost_claim_race(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            // 23505 unique_violation, 40P01 deadlock_detected, 40001 serialization_failure.
            db.is_unique_violation() || matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------- the port

#[async_trait]
impl JobStore for PgJobStore {
    async fn enqueue(&self, job: NewJob) -> Result<(), StoreError> {
        let (definition, secrets) = split_definition(&job.definition)?;
        let row = InsertRow {
            id: job.id.to_hex(),
            qname: text(&job.qname).into_owned(),
            owner: text(job.owner.as_str()).into_owned(),
            submitted: job.submitted.millis(),
            tty: job.definition.tty,
            image: text(&job.definition.container_image).into_owned(),
            definition,
            secrets,
            wrap_secret_id: text(&job.wrap_secret_id).into_owned(),
            payload: job.payload.as_deref().map(|p| text(p).into_owned()),
            tenant: job.tenant.clone(),
            wrap_expires: job.wrap_expires.millis(),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || {
            tracing::error!("the PostgreSQL enqueue task has stopped");
            StoreError::Backend("the PostgreSQL enqueue task has stopped".into())
        };
        self.inserts.send((row, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(StoreError::from)
    }

    /// One `UPDATE … RETURNING` (see `CLAIM`), tried twice if it meets another claimer.
    ///
    /// Not cancel-safe: once the statement has been sent, dropping the future does not undo
    /// it, so jobs may become `running` on this node with nobody told. Don't race it in a
    /// `select!` against anything but shutdown.
    async fn claim(&self, node: &NodeId, max: usize, now: Timestamp) -> Result<Vec<JobRecord>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let pool = self.pool();
        let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let tenant_cap = self.tenant_max_running.load(Ordering::Relaxed);
        // The fast path only when its window holds every queued job: the fair pick must see
        // every tenant's heads.
        let queued: i64 =
            sqlx::query_scalar(QUEUED_UP_TO).bind(FAST_WINDOW + 1).fetch_one(&pool).await.map_err(backend)?;
        let fast = queued <= FAST_WINDOW;
        let mut rows: Vec<JobRow> = Vec::new();
        for attempt in 1..=2 {
            // Not a prepared statement: a generic plan made while the table was small (PostgreSQL
            // switches to one after five runs) stays in the connection when the backlog grows;
            // seen as 2 ms → 115 ms claims at 100,000 queued. Planned afresh each time instead.
            let query = sqlx::query_as::<_, JobRow>(if fast { CLAIM_FAST } else { CLAIM })
                .persistent(false)
                .bind(text(node.as_str()))
                .bind(now.millis())
                .bind(limit(max))
                .bind(limit(tenant_cap));
            let query = if fast { query.bind(FAST_WINDOW) } else { query };
            let claimed = if tenant_cap == 0 {
                query.fetch_all(&pool).await
            } else {
                // A tenant cap counts active jobs over every node: capped claims take one
                // transaction-scoped advisory lock so two nodes cannot both fill the last
                // slot of a tenant. The claim's snapshot is taken after the lock, so it sees
                // what the previous holder committed.
                async {
                    let mut tx = pool.begin().await?;
                    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(TENANT_CAP_LOCK).execute(&mut *tx).await?;
                    let got = query.fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(got)
                }
                .await
            };
            match claimed {
                Ok(got) => {
                    rows = got;
                    break;
                }
                Err(e) if lost_claim_race(&e) => {
                    tracing::debug!(error = %e, attempt, "claim lost a race with another node");
                }
                Err(e) => return Err(backend(e)),
            }
        }
        // RETURNING has no order; hand the jobs out oldest first.
        rows.sort_by_key(|r| (r.submitted, r.seq));
        records(rows)
    }

    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query_as::<_, JobRow>(SELECT_BY_ID)
            .bind(id.to_hex())
            .fetch_optional(&self.pool())
            .await
            .map_err(backend)?;
        row.map(JobRow::into_record).transpose()
    }

    async fn set_container(&self, id: &JobId, image: &str, container_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET container_image = $2, container_id = $3 WHERE id = $1")
            .bind(id.to_hex())
            .bind(text(image))
            .bind(text(container_id))
            .execute(&self.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn clear_wrap_secret_id(&self, id: &JobId) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET wrap_secret_id = '' WHERE id = $1")
            .bind(id.to_hex())
            .execute(&self.pool())
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
        // The notification goes out with the commit, only if a row changed.
        let sql = format!(
            "WITH done AS (
               UPDATE jobs SET status = $3, output = $4, stderr = $5, return_code = $6, ended = GREATEST($7, started), {}
               WHERE id = $1 AND node_uuid = $2 AND status IN ({})
               RETURNING 1
             )
             SELECT pg_notify('gostint_events', 'claimable')::text FROM done",
            blank_secrets!(),
            sql_list(&from)
        );
        let done = sqlx::query(&sql)
            .bind(id.to_hex())
            .bind(text(node.as_str()))
            .bind(outcome.status.as_str())
            .bind(text(&outcome.output))
            .bind(text(&outcome.stderr))
            .bind(outcome.return_code)
            .bind(ended.millis())
            .fetch_all(&self.pool())
            .await
            .map_err(backend)?;
        Ok(done.len() == 1)
    }

    async fn request_kill(
        &self,
        id: &JobId,
        who: Visibility<'_>,
        now: Timestamp,
    ) -> Result<Option<KillOutcome>, StoreError> {
        let hex = id.to_hex();
        let mut tx = self.pool().begin().await.map_err(backend)?;
        let found = sqlx::query(
            "SELECT status, container_id FROM jobs WHERE id = $1 AND ($2::text IS NULL OR owner = $2) FOR UPDATE",
        )
        .bind(&hex)
        .bind(owner_of(&who).map(text))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = found else {
            return Ok(None);
        };
        let status: String = row.try_get("status").map_err(backend)?;
        let previous = JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(format!("job {hex}: {e}")))?;
        let container_id: String = row.try_get("container_id").map_err(backend)?;
        if previous.transition(JobEvent::Kill) == Ok(JobStatus::Failed) {
            // queued → failed at once (docs/design.md §2.9); the row is locked, so it is still queued.
            // The next job of the queue may now be its head.
            sqlx::query(concat!(
                "UPDATE jobs SET status = 'failed', ended = $2, output = 'job killed', kill_requested = TRUE, ",
                blank_secrets!(),
                " WHERE id = $1 AND status = 'queued'"
            ))
            .bind(&hex)
            .bind(now.millis())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            notify(&mut tx, CLAIMABLE).await?;
        } else {
            sqlx::query("UPDATE jobs SET kill_requested = TRUE WHERE id = $1")
                .bind(&hex)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if previous.is_active() {
                // Another node may own it: its kill loop should look now, not in 5 s.
                notify(&mut tx, KILL).await?;
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(Some(KillOutcome { previous, container_id }))
    }

    async fn mark_stopping(&self, id: &JobId) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE jobs SET status = 'stopping' WHERE id = $1 AND status = 'running'")
            .bind(id.to_hex())
            .execute(&self.pool())
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn kills_pending(&self, node: &NodeId) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query_as::<_, JobRow>(concat!(
            "SELECT ",
            columns!(),
            " FROM jobs WHERE node_uuid = $1 AND status = 'running' AND kill_requested ORDER BY seq"
        ))
        .bind(text(node.as_str()))
        .fetch_all(&self.pool())
        .await
        .map_err(backend)?;
        records(rows)
    }

    async fn delete(&self, id: &JobId, who: Visibility<'_>) -> Result<DeleteOutcome, StoreError> {
        // One conditional DELETE (docs/design.md §2.8). The other parts of the statement read the
        // snapshot from before it, so `visible` explains a refusal, deleting a queued
        // job (perhaps a queue's head) wakes the claimers, and any delete wakes the job's
        // followers on every node (`job:<id>`: a stream of a queued job must end now).
        let row = sqlx::query(
            "WITH del AS (
               DELETE FROM jobs
               WHERE id = $1 AND ($2::text IS NULL OR owner = $2) AND status NOT IN ('running', 'stopping')
               RETURNING id, status
             ),
             note AS (
               SELECT pg_notify('gostint_events', 'claimable')::text FROM del WHERE del.status = 'queued'
             ),
             gone AS (
               SELECT pg_notify('gostint_events', 'job:' || del.id)::text FROM del
             )
             SELECT (SELECT count(*) FROM del) AS deleted,
                    EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND ($2::text IS NULL OR owner = $2)) AS visible,
                    (SELECT count(*) FROM note) AS notified,
                    (SELECT count(*) FROM gone) AS announced",
        )
        .bind(id.to_hex())
        .bind(owner_of(&who).map(text))
        .fetch_one(&self.pool())
        .await
        .map_err(backend)?;
        let deleted: i64 = row.try_get("deleted").map_err(backend)?;
        let visible: bool = row.try_get("visible").map_err(backend)?;
        Ok(match (deleted, visible) {
            (1.., _) => DeleteOutcome::Deleted,
            (_, true) => DeleteOutcome::Active,
            (_, false) => DeleteOutcome::NotFound,
        })
    }

    async fn list(&self, who: Visibility<'_>, skip: u64, limit: u64) -> Result<(Vec<JobRecord>, u64), StoreError> {
        // One snapshot, so the page and the total agree.
        let mut tx = self.pool().begin().await.map_err(backend)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Two shapes rather than `$1 IS NULL OR owner = $1`, so each walks its own index.
        let (rows, total) = match owner_of(&who) {
            None => {
                let rows = sqlx::query_as::<_, JobRow>(concat!(
                    "SELECT ",
                    list_columns!(),
                    " FROM jobs ORDER BY submitted DESC, seq DESC LIMIT $1 OFFSET $2"
                ))
                .bind(to_i64(limit))
                .bind(to_i64(skip))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&mut *tx).await.map_err(backend)?;
                (rows, total)
            }
            Some(owner) => {
                let owner = text(owner);
                let rows = sqlx::query_as::<_, JobRow>(concat!(
                    "SELECT ",
                    list_columns!(),
                    " FROM jobs WHERE owner = $1 ORDER BY submitted DESC, seq DESC LIMIT $2 OFFSET $3"
                ))
                .bind(&*owner)
                .bind(to_i64(limit))
                .bind(to_i64(skip))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE owner = $1")
                    .bind(&*owner)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
                (rows, total)
            }
        };
        tx.commit().await.map_err(backend)?;
        Ok((records(rows)?, u64::try_from(total).unwrap_or(0)))
    }

    async fn count_by_status(&self) -> Result<HashMap<JobStatus, u64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .fetch_all(&self.pool())
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
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE node_uuid = $1 AND status IN ('running', 'stopping')")
                .bind(text(node.as_str()))
                .fetch_one(&self.pool())
                .await
                .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn purge_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        // The status list repeats the `jobs_ended` partial index's, so PostgreSQL can use it.
        let done = sqlx::query(
            "DELETE FROM jobs WHERE status IN ('success', 'failed', 'notauthorised', 'unknown') AND ended < $1",
        )
        .bind(cutoff.millis())
        .execute(&self.pool())
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn heartbeat(&self, node: &NodeId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (node_uuid, last_seen) VALUES ($1, $2)
             ON CONFLICT (node_uuid) DO UPDATE SET last_seen = excluded.last_seen",
        )
        .bind(text(node.as_str()))
        .bind(now.millis())
        .execute(&self.pool())
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn deregister(&self, node: &NodeId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE node_uuid = $1")
            .bind(text(node.as_str()))
            .execute(&self.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn mark_node_lost(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        let mut conn = self.pool().acquire().await.map_err(backend)?;
        Self::mark_lost_in(&mut conn, node, now).await
    }

    async fn reap_stale_nodes(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        except: &NodeId,
    ) -> Result<Vec<NodeId>, StoreError> {
        // One transaction: the node rows go and all their active jobs end together. The
        // DELETE locks the rows it takes, so two nodes sweeping at once reap each stale node
        // once; a heartbeat that commits first saves its node (the re-check of `last_seen`).
        let mut tx = self.pool().begin().await.map_err(backend)?;
        let rows = sqlx::query("DELETE FROM nodes WHERE last_seen < $1 AND node_uuid <> $2 RETURNING node_uuid")
            .bind(cutoff.millis())
            .bind(text(except.as_str()))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let mut reaped = Vec::with_capacity(rows.len());
        for row in rows {
            let node = NodeId::new(row.try_get::<String, _>("node_uuid").map_err(backend)?);
            let marked = Self::mark_lost_in(&mut tx, &node, now).await?;
            tracing::info!(node = %node, jobs = marked, "stale node reaped");
            reaped.push(node);
        }
        tx.commit().await.map_err(backend)?;
        Ok(reaped)
    }

    async fn orphan_owners(&self, except: &NodeId) -> Result<Vec<NodeId>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT node_uuid FROM jobs
             WHERE status IN ('running', 'stopping') AND node_uuid <> $1
               AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node_uuid = jobs.node_uuid)
             ORDER BY node_uuid",
        )
        .bind(text(except.as_str()))
        .fetch_all(&self.pool())
        .await
        .map_err(backend)?;
        rows.iter().map(|r| r.try_get::<String, _>("node_uuid").map(NodeId::new).map_err(backend)).collect()
    }

    /// LISTENs on [`CHANNEL`] on a connection of its own and calls `sink` for every
    /// notification, until the store is closed or dropped (the caller spawns it as a task;
    /// cancelling that task is fine too). Connection failures are logged and retried with
    /// backoff, never returned. After each (re)connect it also sends one `Claimable` and one
    /// `KillRequested`, since notifications sent while it was away are lost.
    async fn listen(&self, sink: EventSink) -> Result<(), StoreError> {
        listen_loop(self.shared.clone(), sink).await;
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
        .fetch_all(&self.pool())
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
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND tenant = $1")
            .bind(text(tenant))
            .fetch_one(&self.pool())
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
            "WITH upd AS (UPDATE jobs SET output = $3, stderr = $4
                 WHERE id = $1 AND node_uuid = $2 AND status IN ('running', 'stopping') RETURNING id)
             SELECT pg_notify('gostint_events', 'job:' || id)::text FROM upd"
        } else {
            "WITH upd AS (UPDATE jobs SET output = output || $3, stderr = stderr || $4
                 WHERE id = $1 AND node_uuid = $2 AND status IN ('running', 'stopping') RETURNING id)
             SELECT pg_notify('gostint_events', 'job:' || id)::text FROM upd"
        };
        let rows = sqlx::query(sql)
            .bind(id.to_hex())
            .bind(node.as_str())
            .bind(stdout)
            .bind(stderr)
            .fetch_all(&self.pool())
            .await
            .map_err(backend)?;
        Ok(rows.len() == 1)
    }

    async fn active_ids_on(&self, node: &NodeId) -> Result<Vec<JobId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE node_uuid = $1 AND status IN ('running', 'stopping') ORDER BY seq",
        )
        .bind(text(node.as_str()))
        .fetch_all(&self.pool())
        .await
        .map_err(backend)?;
        ids.iter().map(|h| h.parse::<JobId>().map_err(|e| StoreError::Corrupt(format!("job id {h:?}: {e}")))).collect()
    }

    async fn record_image_pull(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pulled_images (engine, image, last_used) VALUES ($1, $2, $3)
             ON CONFLICT (engine, image) DO UPDATE SET last_used = GREATEST(pulled_images.last_used, excluded.last_used)",
        )
        .bind(text(engine))
        .bind(text(image))
        .bind(now.millis())
        .execute(&self.pool())
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn touch_image(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE pulled_images SET last_used = $3 WHERE engine = $1 AND image = $2 AND last_used < $3")
            .bind(text(engine))
            .bind(text(image))
            .bind(now.millis())
            .execute(&self.pool())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn images_unused_since(&self, engine: &str, cutoff: Timestamp) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT image FROM pulled_images WHERE engine = $1 AND last_used < $2 ORDER BY image")
            .bind(text(engine))
            .bind(cutoff.millis())
            .fetch_all(&self.pool())
            .await
            .map_err(backend)?;
        rows.iter().map(|r| r.try_get::<String, _>("image").map_err(backend)).collect()
    }

    async fn forget_image(&self, engine: &str, image: &str, cutoff: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pulled_images WHERE engine = $1 AND image = $2 AND last_used < $3")
            .bind(text(engine))
            .bind(text(image))
            .bind(cutoff.millis())
            .execute(&self.pool())
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

/// Sends a notification inside `tx` (delivered at commit, identical ones merged).
async fn notify(tx: &mut sqlx::PgConnection, payload: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)::text").bind(CHANNEL).bind(payload).fetch_one(tx).await.map_err(backend)?;
    Ok(())
}

async fn listen_loop(shared: Arc<Shared>, sink: EventSink) {
    let closed = shared.closed.clone();
    let mut generation = shared.generation.subscribe();
    let mut backoff = Duration::from_millis(100);
    loop {
        if closed.is_cancelled() {
            return;
        }
        generation.mark_unchanged();
        let options = shared.backend().options;
        // A connection of its own, outside the store's pool: a pool waits for every
        // connection to come back before it closes, and this one never would.
        let connected = async {
            let pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(options);
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            () = closed.cancelled() => return,
            res = connected => match res {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "store event listener cannot connect");
                    tokio::select! {
                        () = closed.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(LISTEN_MAX_BACKOFF);
                    continue;
                }
            }
        };
        tracing::debug!(channel = CHANNEL, "store event listener connected");
        backoff = Duration::from_millis(100);
        // Whatever was sent while nobody listened is lost: look once now.
        sink(StoreEvent::Claimable);
        sink(StoreEvent::KillRequested);
        loop {
            tokio::select! {
                () = closed.cancelled() => return,
                // New credentials: move to them before the old ones are revoked.
                _ = generation.changed() => {
                    tracing::debug!("store event listener moves to the new connection pool");
                    break;
                }
                got = listener.try_recv() => match got {
                    Ok(Some(note)) => match note.payload() {
                        CLAIMABLE => sink(StoreEvent::Claimable),
                        KILL => sink(StoreEvent::KillRequested),
                        other if other.starts_with("job:") => match other[4..].parse::<JobId>() {
                            Ok(id) => sink(StoreEvent::JobChanged(id)),
                            Err(_) => tracing::debug!(payload = other, "malformed job event ignored"),
                        },
                        other => tracing::debug!(payload = other, "unknown store event ignored"),
                    },
                    Ok(None) => {
                        tracing::warn!("store event listener lost its connection; reconnecting");
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "store event listener failed; reconnecting");
                        tokio::select! {
                            () = closed.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(LISTEN_MAX_BACKOFF);
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, item 7: a server that accepts connections but never answers (a stalled or
    /// restarting PostgreSQL) makes calls fail as `Unavailable` (503) after
    /// `GOSTINT_STORE_TIMEOUT`, not hang for 30–60 s and then look broken (500).
    #[tokio::test]
    async fn a_store_that_does_not_answer_is_unavailable_within_the_store_timeout() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        set_acquire_timeout(Duration::from_secs(1));
        let options = connect_options(&format!("postgres://u:p@127.0.0.1:{port}/db")).unwrap();
        let pool = PgPoolOptions::new().acquire_timeout(acquire_timeout()).connect_lazy_with(options.clone());
        let store = PgJobStore::from_backend(Backend { pool, options });
        let started = std::time::Instant::now();
        let err = store.get(&JobId::new(1)).await.expect_err("nothing answers");
        assert!(err.is_unavailable(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        drop(silent);
    }

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        assert!(connect_options("postgres://u:p@localhost:5432/db").is_ok());
        assert!(connect_options("postgresql://u@localhost/db").is_ok());
        for bad in ["sqlite:///x.db", "mongodb://h:27017", "h:27017", ""] {
            assert!(matches!(connect_options(bad), Err(ConnectError::BadUrl(_))), "{bad}");
        }
        let err = connect_options("mysql://me:s3cret@h/db").unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("me:***@h/db"), "{err}");
    }

    #[tokio::test]
    async fn debug_output_never_shows_the_password() {
        let options = connect_options("postgres://me:s3cret@db.example:5433/jobs").unwrap();
        let pool = PgPoolOptions::new().connect_lazy_with(options.clone());
        let store = PgJobStore::from_backend(Backend { pool, options });
        let shown = format!("{store:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.example") && shown.contains("jobs"), "{shown}");
    }

    #[test]
    fn nul_characters_become_replacement_characters() {
        assert_eq!(text("a\0b"), "a\u{fffd}b");
        assert!(matches!(text("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn definitions_split_and_join_again() {
        let def = JobDefinition {
            qname: "q".into(),
            content: "targz,\0abc".into(),
            env_vars: vec!["A=1".into()],
            run: vec!["echo".into()],
            ..Default::default()
        };
        let (rest, secrets) = split_definition(&def).unwrap();
        assert!(!rest.contains("targz"));
        assert!(!secrets.contains('\0'), "NUL escaped: {secrets}");
        let row = JobRow {
            seq: 1,
            id: JobId::new(1).to_hex(),
            qname: "q".into(),
            owner: "o".into(),
            status: "queued".into(),
            node_uuid: String::new(),
            submitted: 0,
            started: 0,
            ended: 0,
            output: String::new(),
            stderr: String::new(),
            return_code: 0,
            tty: false,
            container_id: String::new(),
            container_image: String::new(),
            kill_requested: false,
            definition: rest,
            definition_secrets: Some(secrets),
            wrap_secret_id: String::new(),
            payload: None,
            tenant: String::new(),
            wrap_expires: 0,
        };
        assert_eq!(row.into_record().unwrap().definition, def);
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
