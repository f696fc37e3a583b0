//! The port traits: what the worker and the API need from a store, a container engine and
//! Vault. Adapters live in their own crates; nothing here knows sqlx, bollard or HTTP.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::{ImageRef, JobId, JobRecord, JobStatus, NewJob, NodeId, Outcome, Owner, PullPolicy, Timestamp};

// ---------------------------------------------------------------- store

/// A store failure (the API answers 500 and logs the chain).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error("job store failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row could not be read back into a job.
    #[error("job store holds a malformed row: {0}")]
    Corrupt(String),
    /// The store cannot be reached or refuses writes now (no connection within
    /// `GOSTINT_STORE_TIMEOUT`, connection lost, disk full): the API answers 503.
    #[error("job store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// [`JobStore::enqueue`] refused the job: its tenant already has `queued` queued jobs,
    /// the limit set by [`JobStore::set_tenant_max_queued`] (the API answers 429).
    #[error("tenant {tenant} has {queued} queued jobs (limit {limit})")]
    QueueQuota {
        /// The tenant at its limit.
        tenant: String,
        /// Its queued jobs when the insert was refused.
        queued: u64,
        /// `GOSTINT_TENANT_MAX_QUEUED`.
        limit: u64,
    },
}

impl StoreError {
    /// Whether the store is unreachable or refusing writes (retry later) rather than broken.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// What `delete` did.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Removed (a queued job is thereby cancelled).
    Deleted,
    /// No such job (or not the caller's).
    NotFound,
    /// `running` or `stopping`: refused.
    Active,
}

/// What `request_kill` found and did.
#[derive(Debug, PartialEq, Eq)]
pub struct KillOutcome {
    /// The status before the call (the API answers it).
    pub previous: JobStatus,
    /// The container, if one was created.
    pub container_id: String,
}

/// Which jobs a caller may see.
#[derive(Debug, Clone)]
pub enum Visibility<'a> {
    /// An admin: every job.
    All,
    /// Only jobs submitted by this owner.
    Owner(&'a Owner),
}

/// The job store: queues, job rows and their life cycle. Every method is one atomic step.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores a `queued` job at the tail of its queue.
    async fn enqueue(&self, job: NewJob) -> Result<(), StoreError>;

    /// Claims the head of every queue that has no `running`/`stopping` job, oldest queue
    /// heads first, at most `max` jobs: each becomes `running` with `node_uuid` = `node`
    /// and `started` = `now`. Never two active jobs in one queue; FIFO per queue by
    /// `submitted`, ties by insertion order; a busy queue never blocks another.
    async fn claim(&self, node: &NodeId, max: usize, now: Timestamp) -> Result<Vec<JobRecord>, StoreError>;

    /// One job, whoever owns it.
    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError>;

    /// Records the resolved image and the created container of a running job.
    async fn set_container(&self, id: &JobId, image: &str, container_id: &str) -> Result<(), StoreError>;

    /// Blanks the wrapping token once it has been spent.
    async fn clear_wrap_secret_id(&self, id: &JobId) -> Result<(), StoreError>;

    /// Ends a job that `node` owns (`running`, `stopping`, or `unknown` if it came back):
    /// writes the outcome and `ended`, and blanks `payload`, `wrap_secret_id` and the
    /// definition's `content` and `env_vars`. Returns false if the job was not in such a
    /// state (already final, deleted, or owned elsewhere).
    async fn finish(&self, id: &JobId, node: &NodeId, outcome: Outcome, ended: Timestamp) -> Result<bool, StoreError>;

    /// Asks for a kill: a `queued` job becomes `failed` / `job killed` at once; otherwise
    /// the flag is set. `None` if the job does not exist or is not visible.
    async fn request_kill(
        &self,
        id: &JobId,
        who: Visibility<'_>,
        now: Timestamp,
    ) -> Result<Option<KillOutcome>, StoreError>;

    /// Marks a running job `stopping` (the owner's kill loop does this before stopping the
    /// container). Returns false if it was not `running`.
    async fn mark_stopping(&self, id: &JobId) -> Result<bool, StoreError>;

    /// The jobs `node` owns that are `running` with `kill_requested` set.
    async fn kills_pending(&self, node: &NodeId) -> Result<Vec<JobRecord>, StoreError>;

    /// Deletes a job outside `running`/`stopping` in one conditional statement.
    async fn delete(&self, id: &JobId, who: Visibility<'_>) -> Result<DeleteOutcome, StoreError>;

    /// A page of the jobs `who` may see, newest first (ties: later insertion first), and
    /// how many such jobs there are in all.
    async fn list(&self, who: Visibility<'_>, skip: u64, limit: u64) -> Result<(Vec<JobRecord>, u64), StoreError>;

    /// Jobs per status over the whole store.
    async fn count_by_status(&self) -> Result<HashMap<JobStatus, u64>, StoreError>;

    /// `running` + `stopping` jobs owned by `node`.
    async fn count_active_on(&self, node: &NodeId) -> Result<u64, StoreError>;

    /// Deletes final jobs whose `ended` is before `cutoff`; returns how many.
    async fn purge_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError>;

    /// Records that `node` is alive: upserts its row with `last_seen` = `now`.
    async fn heartbeat(&self, node: &NodeId, now: Timestamp) -> Result<(), StoreError>;

    /// Removes `node`'s row (clean shutdown).
    async fn deregister(&self, node: &NodeId) -> Result<(), StoreError>;

    /// Ends every `running`/`stopping` job owned by `node` as `unknown`, `ended` = `now`,
    /// `output` = `gostint node <uuid> stopped reporting; outcome unknown`, secrets blanked;
    /// frees their queues. Returns how many jobs it marked.
    async fn mark_node_lost(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError>;

    /// The nodes whose last heartbeat is before `cutoff`, other than `except` (the caller):
    /// for each, [`JobStore::mark_node_lost`] and delete its row, all jobs in one go (the
    /// original marked one job per pass). Returns the reaped node ids.
    async fn reap_stale_nodes(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        except: &NodeId,
    ) -> Result<Vec<NodeId>, StoreError>;

    /// The ids of nodes other than `except` that own `running`/`stopping` jobs but have no
    /// node row (e.g. a previous run of a single-node store that crashed).
    async fn orphan_owners(&self, except: &NodeId) -> Result<Vec<NodeId>, StoreError>;

    /// Delivers [`StoreEvent`]s that other processes caused (PostgreSQL LISTEN/NOTIFY) to
    /// `sink` until the store is dropped, reconnecting on errors. A store with one process
    /// (SQLite) has nothing to deliver and returns at once.
    async fn listen(&self, sink: EventSink) -> Result<(), StoreError>;

    /// Caps the `running` + `stopping` jobs of each tenant over every node sharing the store
    /// (`GOSTINT_TENANT_MAX_RUNNING`; `0` = no cap, the default). [`JobStore::claim`] then
    /// skips a tenant at its cap; PostgreSQL serialises capped claims across nodes.
    fn set_tenant_max_running(&self, max: usize);

    /// Caps the `queued` jobs of each tenant over every node sharing the store
    /// (`GOSTINT_TENANT_MAX_QUEUED`; `0` = no cap). [`JobStore::enqueue`] counts and inserts
    /// atomically (SQLite: in the insert transaction; PostgreSQL: under a per-tenant
    /// advisory lock), so simultaneous enqueues cannot pass the cap: the ones past it get
    /// [`StoreError::QueueQuota`].
    fn set_tenant_max_queued(&self, max: u64);

    /// Each tenant's `queued` and active (`running` + `stopping`) jobs over the whole store,
    /// for the tenants that have any (the admin form of `/v1/api/health`).
    async fn count_by_tenant(&self) -> Result<HashMap<String, TenantLoad>, StoreError>;

    /// `queued` jobs of `tenant` (the `GOSTINT_TENANT_MAX_QUEUED` early check and gauge).
    async fn count_queued(&self, tenant: &str) -> Result<u64, StoreError>;
    /// Adds live output to a job `node` runs (`running`/`stopping`): appends `stdout` to
    /// `output` and `stderr` to `stderr`, or with `replace` sets them (the capped tail took
    /// over). Wakes followers on other nodes (PostgreSQL NOTIFY). Returns false if the job
    /// is not such a job.
    async fn append_output(
        &self,
        id: &JobId,
        node: &NodeId,
        stdout: &str,
        stderr: &str,
        replace: bool,
    ) -> Result<bool, StoreError>;
    /// The ids of the `running`/`stopping` jobs owned by `node` (reliability: the node
    /// compares them with the jobs its pipelines hold, to end any that none holds, e.g. a
    /// claim that committed but whose answer was lost with the connection).
    async fn active_ids_on(&self, node: &NodeId) -> Result<Vec<JobId>, StoreError>;
    /// **[new]** Image GC (docs/design.md §5.7): records that this deployment pulled `image` onto
    /// `engine` (an image that was absent before), last used `now`. Only recorded images
    /// are ever collected.
    async fn record_image_pull(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError>;

    /// **[new]** A job is about to use `image` on `engine`: a recorded image's `last_used`
    /// becomes `now` (an image gostint did not pull stays unrecorded).
    async fn touch_image(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError>;

    /// **[new]** The recorded images of `engine` last used before `cutoff`.
    async fn images_unused_since(&self, engine: &str, cutoff: Timestamp) -> Result<Vec<String>, StoreError>;

    /// **[new]** Forgets a recorded image if it is still unused since `cutoff` (one
    /// conditional statement); true if it was forgotten, and may now be removed.
    async fn forget_image(&self, engine: &str, image: &str, cutoff: Timestamp) -> Result<bool, StoreError>;
}

/// One tenant's load, from [`JobStore::count_by_tenant`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantLoad {
    /// `queued` jobs.
    pub queued: u64,
    /// `running` + `stopping` jobs.
    pub running: u64,
}

/// Something that happened in the store which may let a node claim or kill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// A job was queued, or a queue freed: claimers should look.
    Claimable,
    /// A kill was requested for an active job: its owner should look.
    KillRequested,
    /// A job's output or status changed: its followers (streams, long-polls) should look.
    JobChanged(JobId),
}

/// Where a store delivers [`StoreEvent`]s (called from the store's listener task; keep it
/// cheap: a `Notify::notify_one`).
pub type EventSink = std::sync::Arc<dyn Fn(StoreEvent) + Send + Sync>;

// ---------------------------------------------------------------- container runtime

/// Everything a job container may be given; privileged mode, writable host mounts and the
/// Docker socket cannot be expressed.
#[derive(Clone, Default)]
pub struct ContainerSpec {
    /// Image reference as the engine resolves it.
    pub image: String,
    /// Docker `Entrypoint`, only if non-empty.
    pub entrypoint: Vec<String>,
    /// Docker `Cmd`, only if non-empty.
    pub cmd: Vec<String>,
    /// Docker `WorkingDir`, only if non-empty.
    pub working_dir: String,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    /// Docker `Tty`.
    pub tty: bool,
    /// `uid:gid` (always `2001:2001` for jobs).
    pub user: String,
    /// Container labels (`gostint.job_id`, `gostint.node_uuid`).
    pub labels: Vec<(String, String)>,
    /// A host file bound read-only at the same path (`VAULT_CACERT`).
    pub ca_bind: Option<String>,
    /// Files gostint wrote for this job (secrets file, patched passwd), bound read-only.
    pub files: Vec<BindFile>,
    /// **[new]** Capabilities added back (all others are always dropped; `no-new-privileges`
    /// and Docker's init process are always on).
    pub cap_add: Vec<String>,
    /// **[new]** pids, memory (swap equal) and CPU limits; `None` = the engine's defaults
    /// (tests of the runtime only: the worker always sets them).
    pub limits: Option<crate::Limits>,
    /// **[new]** The network to attach to (`bridge`, `none`, a name); empty = the engine's default.
    pub network: String,
    /// **[new]** The engine's json-file log `max-size` in bytes (two files); `0` = unbounded.
    pub log_max_size: u64,
}

/// A host file bound read-only into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindFile {
    /// Path on the engine's host.
    pub host: String,
    /// Path in the container.
    pub container: String,
}

/// What a container printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerLogs {
    /// stdout, or the combined stream of a tty container.
    pub stdout: Vec<u8>,
    /// stderr (empty for tty).
    pub stderr: Vec<u8>,
}

/// The engine facts the health map shows.
#[derive(Clone, Debug, Default)]
pub struct EngineInfo {
    /// All containers.
    pub containers: i64,
    /// Running containers.
    pub containers_running: i64,
    /// Paused containers.
    pub containers_paused: i64,
    /// Stopped containers.
    pub containers_stopped: i64,
    /// Images.
    pub images: i64,
    /// Memory in bytes.
    pub mem_total: i64,
    /// e.g. `x86_64`.
    pub architecture: String,
    /// e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub operating_system: String,
}

/// How a runtime failure should be treated (never decided by matching message text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeErrorKind {
    /// The image is not on the engine and could not be pulled.
    ImageMissing,
    /// No such container.
    NotFound,
    /// The engine could not be reached or timed out: worth a retry.
    Transient,
    /// Anything else the engine refused.
    Other,
}

/// A container engine failure; `message` is the engine's own text (shown in job output).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RuntimeError {
    /// How to treat it.
    pub kind: RuntimeErrorKind,
    /// The engine's message.
    pub message: String,
}

impl RuntimeError {
    /// Builds an error of a kind.
    pub fn new(kind: RuntimeErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

/// The container engine (one shared client per process).
#[async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Makes sure the image is on the engine: pulls when absent, or always with
    /// `PullPolicy::Always`. Retries only transient errors.
    async fn ensure_image(&self, image: &ImageRef, policy: PullPolicy) -> Result<(), RuntimeError>;
    /// Creates (does not start) a container; returns its id.
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;
    /// The engine's id of a local image (`sha256:…`), `None` if the engine does not have it.
    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError>;
    /// One file from the container's filesystem, `None` if absent.
    async fn read_file(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, RuntimeError>;
    /// Unpacks a tar (plain or gzip) at `/` in the container.
    async fn put_archive(&self, id: &str, tar: Vec<u8>) -> Result<(), RuntimeError>;
    /// Starts the container.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Waits for it to exit; returns the exit code.
    async fn wait(&self, id: &str) -> Result<i64, RuntimeError>;
    /// Its output after exit; demultiplexed unless `tty`. Keeps at most the last
    /// `max_bytes` of each stream (and says whether it cut).
    async fn logs(&self, id: &str, tty: bool, max_bytes: usize) -> Result<ContainerLogs, RuntimeError>;
    /// Stops with a grace period, then kills; "not running" is not an error.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;
    /// Removes the container and its anonymous volumes, forcibly; absent is not an error.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Engine facts for the health map.
    async fn info(&self) -> Result<EngineInfo, RuntimeError>;
    /// Removes every container whose label `key` has `value`; returns how many.
    async fn remove_labelled(&self, key: &str, value: &str) -> Result<u64, RuntimeError>;

    /// Follows a started container's output as it comes, calling `sink` for each chunk,
    /// until the container's output ends (it exited). Demultiplexed unless `tty`.
    ///
    /// The default waits for the exit and delivers [`ContainerRuntime::logs`] in one go
    /// (an engine without a follow call).
    async fn follow_logs(
        &self,
        id: &str,
        tty: bool,
        sink: &mut (dyn FnMut(LogChunk) + Send),
    ) -> Result<(), RuntimeError> {
        self.wait(id).await?;
        let logs = self.logs(id, tty, usize::MAX).await?;
        if !logs.stdout.is_empty() {
            sink(LogChunk::Stdout(logs.stdout));
        }
        if !logs.stderr.is_empty() {
            sink(LogChunk::Stderr(logs.stderr));
        }
        Ok(())
    }
    /// **[new]** Whether the kernel's OOM killer ended the (exited) container. An engine
    /// that cannot tell answers false. A container that is gone, or being removed (`docker rm
    /// -f` kills it first, so its wait ends before the removal does), is a `NotFound` error.
    async fn oom_killed(&self, _id: &str) -> Result<bool, RuntimeError> {
        Ok(false)
    }

    /// **[new]** Makes sure a user-defined bridge network `name` exists (created with the
    /// label `gostint.network=tenant` when absent; a concurrent create is not an error).
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::new(RuntimeErrorKind::Other, format!("this engine cannot create network {name}")))
    }

    /// **[new]** A stable id of the engine (image GC records pulls per engine).
    async fn engine_id(&self) -> Result<String, RuntimeError> {
        Err(RuntimeError::new(RuntimeErrorKind::Other, "this engine has no id"))
    }

    /// **[new]** Removes a local image by reference, never forcibly: an image a container
    /// still uses stays (`Ok(false)`), as does one already gone (`Ok(false)`).
    async fn remove_image(&self, image: &str) -> Result<bool, RuntimeError> {
        Err(RuntimeError::new(RuntimeErrorKind::Other, format!("this engine cannot remove image {image}")))
    }

    /// **[new]** The containers whose label `key` has `value` and that have exited (not
    /// running any more), with their exit status (issue 16, item 6: a crashed node's finished
    /// jobs). An engine that cannot tell answers none.
    async fn exited_labelled(&self, _key: &str, _value: &str) -> Result<Vec<ExitedContainer>, RuntimeError> {
        Ok(Vec::new())
    }
}

/// A piece of a container's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogChunk {
    /// stdout (or the one stream of a tty container).
    Stdout(Vec<u8>),
    /// stderr.
    Stderr(Vec<u8>),
}

// ---------------------------------------------------------------- vault

/// What `auth/token/lookup-self` says of a caller's token.
#[derive(Clone, Debug, Default)]
pub struct TokenInfo {
    /// `data.entity_id` (may be empty).
    pub entity_id: String,
    /// `data.accessor`.
    pub accessor: String,
    /// `data.policies` ∪ `data.identity_policies`.
    pub policies: Vec<String>,
}

impl TokenInfo {
    /// The tenant: `entity_id`, or `accessor:<accessor>` for a token without an entity.
    pub fn owner(&self) -> Owner {
        if self.entity_id.is_empty() {
            Owner::new(format!("accessor:{}", self.accessor))
        } else {
            Owner::new(self.entity_id.clone())
        }
    }

    /// Whether the token may see every job (`root`, or the admin policy).
    pub fn is_admin(&self, admin_policy: &str) -> bool {
        self.policies.iter().any(|p| p == "root" || p == admin_policy)
    }
}

/// A secret as read from Vault.
#[derive(Clone, Default)]
pub struct SecretData {
    /// The key/value data (for KV v2 the inner `data.data`).
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Vault's `warnings`.
    pub warnings: Vec<String>,
}

/// How a Vault failure should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultErrorKind {
    /// Vault answered 4xx: the token or request was refused.
    Denied,
    /// Vault could not be reached, timed out, or answered 5xx.
    Unavailable,
    /// Vault answered something gostint cannot use.
    Invalid,
}

/// A Vault failure. `message` is for logs and job output: it never holds a token.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct VaultError {
    /// How to treat it.
    pub kind: VaultErrorKind,
    /// What went wrong (Vault's `errors`, or the transport error), without tokens.
    pub message: String,
}

impl VaultError {
    /// Builds an error of a kind.
    pub fn new(kind: VaultErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

/// The Vault calls gostint's server makes (docs/design.md §4). Tokens pass through as `&str`
/// and are never logged.
#[async_trait]
pub trait JobVault: Send + Sync + 'static {
    /// `GET auth/token/lookup-self` with `token`.
    async fn lookup_self(&self, token: &str) -> Result<TokenInfo, VaultError>;
    /// `GET <path>` with `token` (a cubbyhole read); `Ok(None)` when nothing is stored.
    async fn read_cubbyhole(
        &self,
        token: &str,
        path: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, VaultError>;
    /// `PUT sys/wrapping/unwrap` authenticated by the wrapping token itself; returns `data`.
    async fn unwrap(&self, wrap_token: &str) -> Result<serde_json::Map<String, serde_json::Value>, VaultError>;
    /// `PUT auth/approle/login`; `Ok(None)` when the answer has no `auth`.
    async fn approle_login(&self, role_id: &str, secret_id: &str) -> Result<Option<String>, VaultError>;
    /// `PUT transit/decrypt/<key>`; returns `data.plaintext` (base64).
    async fn transit_decrypt(&self, token: &str, key: &str, ciphertext: &str) -> Result<String, VaultError>;
    /// `GET <path>` with `token`; KV v2 unwrapped to `data.data`; `Ok(None)` on 404.
    async fn read_secret(&self, token: &str, path: &str) -> Result<Option<SecretData>, VaultError>;
    /// `PUT auth/token/revoke-self`.
    async fn revoke_self(&self, token: &str) -> Result<(), VaultError>;
    /// `POST sys/wrapping/lookup {"token": …}` (no Vault token, spends no use): where the
    /// wrapped response was created. `Denied` when the token is expired or unknown.
    async fn wrapping_lookup(&self, wrap_token: &str) -> Result<WrapInfo, VaultError>;
    /// `POST sys/capabilities-self {"paths": …}` with `token`: what the token may do on each
    /// path (Vault decides; `["deny"]` when nothing). The default (test doubles) answers
    /// `Unavailable`.
    async fn capabilities_self(
        &self,
        token: &str,
        paths: &[String],
    ) -> Result<HashMap<String, Vec<String>>, VaultError> {
        let _ = (token, paths);
        Err(VaultError::new(VaultErrorKind::Unavailable, "sys/capabilities-self is not available"))
    }
}

/// What `sys/wrapping/lookup` says of a wrapping token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrapInfo {
    /// `data.creation_path`: `auth/approle/role/<name>/secret-id` for a secret-id wrapped
    /// by Vault itself, `sys/wrapping/wrap` for a re-wrapped one.
    pub creation_path: String,
    /// `data.creation_time` + `data.creation_ttl`: when the token expires (`ZERO` when Vault
    /// did not say).
    pub expires: Timestamp,
}

// ---------------------------------------------------------------- node control

/// What the API may ask of this node's worker, without depending on it.
pub trait NodeControl: Send + Sync + 'static {
    /// This node's id.
    fn node(&self) -> &NodeId;
    /// `active` or `draining`.
    fn state(&self) -> &'static str;
    /// A job was posted or a queue freed: claim now.
    fn wake(&self);
    /// A kill was requested: look now.
    fn wake_kills(&self);
}

/// **[new]** A container that has exited, as [`ContainerRuntime::exited_labelled`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitedContainer {
    /// The engine's id.
    pub id: String,
    /// Its `gostint.job_id` label (empty if none).
    pub job_id: String,
    /// Its exit status.
    pub exit_code: i64,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
}
