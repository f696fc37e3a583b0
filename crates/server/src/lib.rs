//! The gostint server: turns [`Settings`] into adapters (SQLite store, Docker engine, Vault
//! client), starts the worker and the HTTP(S) API, and handles signals and shutdown.
//!
//! `main.rs` only parses the command line and calls [`run`]; tests call [`start`] with
//! settings of their own and get the bound address back.
#![warn(missing_docs)]

mod hardening;
mod instrument;
mod listen;
mod node_state;
pub mod ops_cli;
pub mod otel;
mod tenants;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gostint_api::{ApiConfig, AppState};
use gostint_config::{Settings, StoreKind, Tls};
use gostint_core::{ContainerRuntime, JobStore, JobVault, NodeControl, NodeId, Timestamp};
use gostint_worker::pipeline::{PipelineConfig, Ports};
use gostint_worker::{JobFiles, NodeState, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use hardening::log_filter;

/// A started server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it speaks HTTPS.
    pub https: bool,
    /// This node's id.
    pub node: NodeId,
    /// Drain control (what SIGINT/SIGTERM flip).
    pub state: Arc<NodeState>,
    /// The worker (running count for drains).
    pub worker: Arc<Worker>,
    store: Arc<dyn JobStore>,
    tls_files: Option<(axum_server::tls_rustls::RustlsConfig, std::path::PathBuf, std::path::PathBuf)>,
    _state_dir: node_state::NodeStateDir,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Server {
    /// Stops HTTP, the dispatcher and the loops, stops what still runs (the jobs end
    /// `failed` / `gostint node shutting down: job killed`) and waits for every task.
    pub async fn shutdown(self) {
        self.state.drain();
        self.worker.abort_running();
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Err(e) = self.store.deregister(&self.node).await {
            warn!(error = %e, "could not deregister this node");
        }
    }

    /// Reloads the certificate and key from their files (SIGHUP): new connections get the
    /// new pair, open ones keep theirs. A pair that does not load leaves the old one serving.
    ///
    /// # Errors
    /// Plain HTTP, or the files do not load.
    pub async fn reload_tls(&self) -> anyhow::Result<()> {
        let Some((config, cert, key)) = &self.tls_files else {
            anyhow::bail!("plain HTTP: there is no certificate to reload");
        };
        config
            .reload_from_pem_file(cert, key)
            .await
            .with_context(|| format!("reloading TLS cert {} and key {}", cert.display(), key.display()))
    }

    /// The base URL (`https://127.0.0.1:port`).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

/// The Vault client configuration for the server's settings: the same for the job calls,
/// the database credentials and `gostint check` (`VAULT_ADDR`, `VAULT_NAMESPACE`,
/// `VAULT_CLIENT_TIMEOUT` and every TLS setting).
pub fn vault_config(v: &gostint_config::VaultSettings) -> gostint_vault::VaultConfig {
    let mut c = gostint_vault::VaultConfig::new(v.addr.clone());
    c.ca_cert = v.ca_cert.clone();
    c.ca_path = v.ca_path.clone();
    c.client_cert = v.client_cert.clone();
    c.client_key = v.client_key.clone();
    c.tls_server_name = v.tls_server_name.clone();
    c.skip_verify = v.skip_verify;
    c.namespace = v.namespace.clone();
    c.timeout = v.timeout;
    c
}

/// Opens the store the settings name.
///
/// # Errors
/// The store cannot be opened.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn JobStore>> {
    gostint_store_postgres::set_acquire_timeout(settings.store_timeout);
    match &settings.store {
        StoreKind::Sqlite(path) => {
            hardening::prepare_sqlite_path(path).with_context(|| {
                format!("making the SQLite job store's path private (0700/0600): {}", path.display())
            })?;
            let store = gostint_store_sqlite::SqliteJobStore::open(&path.to_string_lossy())
                .await
                .with_context(|| format!("opening the SQLite job store at {}", path.display()))?;
            Ok(Arc::new(store))
        }
        StoreKind::Postgres(url) if settings.db_creds.is_some() => {
            let creds = settings.db_creds.as_ref().expect("checked by the match guard");
            let mut v = gostint_store_postgres::vault::VaultDbSettings::new(
                vault_config(&settings.vault),
                creds.role_id.clone(),
                creds.secret_id.clone(),
            );
            v.creds_role = creds.creds_role.clone();
            let store = gostint_store_postgres::vault::connect_with_vault_creds(url, v, 16)
                .await
                .context("connecting to the PostgreSQL job store with Vault credentials (GOSTINT_RUN_ROLEID)")?;
            Ok(Arc::new(store))
        }
        StoreKind::Postgres(url) => {
            let store = gostint_store_postgres::PgJobStore::connect(url)
                .await
                .context("connecting to the PostgreSQL job store (GOSTINT_DBURL)")?;
            Ok(Arc::new(store))
        }
    }
}

/// Builds the adapters, starts the worker, the housekeeping loop and the listener.
///
/// # Errors
/// Bad settings, an unreachable Docker engine, a store that cannot be opened, a port in use.
pub async fn start(settings: &Settings) -> anyhow::Result<Server> {
    // One crypto provider for rustls, whoever links which.
    let _ = rustls::crypto::ring::default_provider().install_default();
    for var in &settings.ignored_set {
        warn!(variable = var, "setting is accepted but ignored");
    }
    if settings.role_name.is_none() {
        warn!("GOSTINT_ROLENAME is not set: encrypted (cubbyhole or payload) jobs will fail to decrypt");
    }
    hardening::warn_weak_settings(settings);

    // The listener is bound and the certificate loaded before anything else: a node that
    // cannot serve must never claim a job (on a shared PostgreSQL it would then exit with
    // the job taken).
    let addr: SocketAddr = format!("{}:{}", settings.bind, settings.port).parse().with_context(|| {
        format!("GOSTINT_BIND/GOSTINT_PORT: {}:{} is not a socket address", settings.bind, settings.port)
    })?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    listener.set_nonblocking(true).context("setting the listener non-blocking")?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let tls_config = match &settings.tls {
        Tls::Plain => None,
        Tls::Files { cert, key, self_signed } => {
            if *self_signed {
                tls::ensure_self_signed(cert, key)?;
            }
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("loading TLS cert {} and key {}", cert.display(), key.display()))?;
            Some(config)
        }
    };

    let runtime = gostint_runner_docker::DockerRuntime::connect()
        .await
        .context("connecting to the Docker engine (DOCKER_HOST)")?;
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(runtime);
    // Image GC records pulls under the engine's id (docs/design.md §5.7); empty = GC off.
    let gc_engine = match settings.image_gc_age {
        Some(_) => runtime.engine_id().await.context("reading the Docker engine's id for image GC")?,
        None => String::new(),
    };

    let vcfg = vault_config(&settings.vault);
    let vault_client = Arc::new(gostint_vault::VaultClient::new(&vcfg).context("building the Vault client (VAULT_*)")?);
    let vault: Arc<dyn JobVault> = vault_client.clone();

    let store = open_store(settings).await?;
    store.set_tenant_max_running(settings.tenant_max_running);
    store.set_tenant_max_queued(settings.tenant_max_queued);
    let tenants = gostint_core::TenantRegistry::new(settings.tenants.clone());
    if settings.tenants.is_unnamed() {
        warn!("GOSTINT_ROLENAME is not set: the one tenant has no name, so any AppRole's wrapped secret-id passes the creation-path check (the login with GOSTINT_ROLEID still refuses other roles) and encrypted payloads cannot be decrypted");
    }

    let node = NodeId::new(uuid::Uuid::new_v4().to_string());
    let state_dir = node_state::NodeStateDir::lock(&settings.state_dir)?;
    let previous_run = state_dir.swap_node_id(&node)?;
    let state = Arc::new(NodeState::default());
    let metrics = gostint_metrics::Metrics::new();
    // Every Vault, Docker and store call of this node is timed and its failures counted.
    let runtime: Arc<dyn ContainerRuntime> =
        Arc::new(instrument::MeteredRuntime { inner: runtime, metrics: metrics.clone() });
    let vault: Arc<dyn JobVault> = Arc::new(instrument::MeteredVault { inner: vault, metrics: metrics.clone() });
    let store: Arc<dyn JobStore> = Arc::new(instrument::MeteredStore { inner: store, metrics: metrics.clone() });
    let files = match &settings.job_files_dir {
        None => JobFiles::copy(),
        Some(base) => JobFiles::bind_in(base).with_context(|| {
            format!("GOSTINT_JOB_FILES_DIR: making this node's job-file directory in {}", base.display())
        })?,
    };
    if let Some(previous) = state_dir.swap_job_files_dir(files.dir())? {
        // A crashed run's directory: files of jobs it was starting when it died.
        match std::fs::remove_dir_all(&previous) {
            Ok(()) => warn!(dir = %previous.display(), "removed the previous run's job files"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(dir = %previous.display(), error = %e, "could not remove the previous run's job files"),
        }
    }
    let live = Arc::new(gostint_core::live::LiveHub::new());
    let ports = Ports {
        store: store.clone(),
        runtime: runtime.clone(),
        vault: vault.clone(),
        metrics: metrics.clone(),
        files: Arc::new(files),
        live: live.clone(),
    };
    let pipeline = PipelineConfig {
        node: node.clone(),
        role_id: settings.role_id.clone(),
        role_name: settings.role_name.clone(),
        vault_addr: settings.vault.addr.clone(),
        vault_cacert: settings.vault.ca_cert.as_ref().map(|p| p.to_string_lossy().into_owned()),
        inject_token: settings.inject_token,
        max_output: settings.max_output,
        job_timeout: settings.job_timeout,
        kill_grace: settings.kill_grace,
        max_content_unpacked: settings.max_content,
        tenants: tenants.clone(),
        sandbox: settings.sandbox.clone(),
        gc_engine: gc_engine.clone(),
        shutdown_grace: shutdown_grace(settings),
    };
    let worker = Worker::new(
        ports,
        WorkerConfig {
            pipeline,
            max_running: settings.max_running,
            sweep: Duration::from_secs(1),
            kill_period: Duration::from_secs(5),
        },
        state.clone(),
    );

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(worker.clone().run(cancel.child_token(), tracker.clone()));
    let housekeeping = Housekeeping {
        store: store.clone(),
        runtime: runtime.clone(),
        node: node.clone(),
        retention: settings.retention,
        stale_after: settings.stale_after,
        worker: worker.clone(),
    };
    housekeeping.recover(matches!(settings.store, StoreKind::Sqlite(_)), previous_run).await?;
    tracker.spawn(housekeeping.run(cancel.child_token()));
    if let Some(age) = settings.image_gc_age {
        tracker.spawn(gostint_worker::image_gc::run(
            store.clone(),
            runtime.clone(),
            gc_engine.clone(),
            age,
            cancel.child_token(),
        ));
    }
    // Wake-ups other nodes cause (PostgreSQL LISTEN/NOTIFY); SQLite keeps the sink for the
    // deletes it announces in-process. The store keeps the sink, and the worker holds the
    // store: the sink holds the worker weakly, or the two would keep each other (and the
    // node's job-file directory, removed when the worker goes) alive for good.
    let sink_worker = Arc::downgrade(&worker);
    let sink_live = live.clone();
    let sink: gostint_core::EventSink = Arc::new(move |event| match event {
        gostint_core::StoreEvent::Claimable => {
            if let Some(w) = sink_worker.upgrade() {
                w.wake();
            }
        }
        gostint_core::StoreEvent::KillRequested => {
            if let Some(w) = sink_worker.upgrade() {
                w.wake_kills();
            }
        }
        gostint_core::StoreEvent::JobChanged(id) => sink_live.publish(id),
    });
    let listen_store = store.clone();
    let listen_cancel = cancel.child_token();
    tracker.spawn(async move {
        tokio::select! {
            r = listen_store.listen(sink) => if let Err(e) = r { warn!(error = %e, "store event listener stopped") },
            _ = listen_cancel.cancelled() => {}
        }
    });

    tracker.spawn(tenants::reload_on_sighup(settings.approles_file.clone(), tenants.clone(), cancel.child_token()));
    let store_for_server = store.clone();
    let app_state = AppState {
        store,
        vault,
        runtime,
        node: worker.clone() as Arc<dyn NodeControl>,
        cfg: Arc::new(ApiConfig {
            admin_policy: settings.admin_policy.clone(),
            protect_status: settings.protect_status,
            max_body: settings.max_body,
            vault_addr: settings.vault.addr.clone(),
            vault_external_addr: settings.vault.external_addr.clone(),
            tenant_max_queued: settings.tenant_max_queued,
            max_streams_per_caller: settings.max_streams_per_caller,
        }),
        metrics,
        tenants: tenants.clone(),
        live,
    };
    // The API's engine `info` (health, readyz) is cached; the worker's calls are not.
    let app_state = AppState {
        runtime: Arc::new(gostint_api::ops::CachedEngineInfo::new(app_state.runtime.clone(), Duration::from_secs(5))),
        ..app_state
    };
    let probe_client = vault_client.clone();
    let ops = gostint_api::ops::OpsConfig {
        metrics_token: settings.metrics_token.as_ref().map(|t| secrecy::ExposeSecret::expose_secret(t).to_string()),
        vault_probe: Arc::new(move || {
            let c = probe_client.clone();
            Box::pin(async move { c.health().await.map_err(|e| e.message) })
        }),
        probe_timeout: Duration::from_secs(3),
    };
    let connections_metrics = app_state.metrics.clone();
    let protection = gostint_api::Protection {
        max_requests: settings.max_requests,
        max_body: settings.max_body,
        metrics: app_state.metrics.clone(),
    };
    let ui = settings.ui.then(|| gostint_web::router(&settings.vault.external_addr));
    // Outermost the ops layer (request id, access log, gzip, livez/readyz/openapi), so that
    // the protection layer's own answers (503 busy, 413) are logged too.
    let app = gostint_api::ops::wrap(
        gostint_api::protect(gostint_api::router_with_ui(app_state.clone(), ui), protection),
        app_state,
        ops,
    );
    // With OTLP export on, each request also gets a server span (method, route, status).
    let app = if settings.otlp.is_some() { otel::http_spans(app) } else { app };

    let https = tls_config.is_some();
    let tls_files = match (&settings.tls, &tls_config) {
        (Tls::Files { cert, key, .. }, Some(config)) => Some((config.clone(), cert.clone(), key.clone())),
        _ => None,
    };
    let listen = listen::Listen {
        listener,
        tls: tls_config,
        header_timeout: settings.header_timeout,
        metrics: connections_metrics,
    };
    tracker.spawn(listen::serve(listen, app, cancel.child_token(), tracker.clone()));
    info!(addr = %bound, https, node_uuid = %node, "gostint listening");
    Ok(Server {
        addr: bound,
        https,
        node,
        state,
        worker,
        store: store_for_server,
        tls_files,
        _state_dir: state_dir,
        cancel,
        tracker,
    })
}

/// The line a job recovered from a dead node's exited container ends with (issue 16, item 6).
pub const RECOVERED_NOTE: &str =
    "gostint node restarted after a crash: outcome recovered from the exited container; output after the last live write may be missing";

/// The stop grace of jobs still running when SIGTERM's drain limit is reached: the kill
/// grace, but at most half `GOSTINT_DRAIN_TIMEOUT`. SIGTERM waits for the jobs for the drain
/// timeout less this, so the process exits after about the drain timeout (issue 16, item 3;
/// before: the drain timeout plus the whole kill grace).
pub fn shutdown_grace(settings: &Settings) -> Duration {
    settings.kill_grace.min(settings.drain_timeout / 2)
}

/// Output and stderr of jobs, by id, as stored before a dead node's jobs were marked.
type Streamed = std::collections::HashMap<gostint_core::JobId, (String, String)>;

/// What the housekeeping loop needs.
struct Housekeeping {
    store: Arc<dyn JobStore>,
    runtime: Arc<dyn ContainerRuntime>,
    node: NodeId,
    retention: Duration,
    stale_after: Duration,
    worker: Arc<Worker>,
}

impl Housekeeping {
    /// Marks the jobs of `nodes` (dead) `unknown` has been done by the store; here their
    /// leftover containers on this engine go.
    async fn remove_containers_of(&self, nodes: &[NodeId], streamed: &Streamed) {
        for dead in nodes {
            self.recover_exited(dead, streamed).await;
            match self.runtime.remove_labelled("gostint.node_uuid", dead.as_str()).await {
                Ok(0) => {}
                Ok(n) => info!(node_uuid = %dead, removed = n, "removed leftover containers of a dead node"),
                Err(e) => warn!(node_uuid = %dead, error = %e, "could not remove a dead node's containers"),
            }
        }
    }

    /// Issue 16, item 6: a dead node's containers that had already exited hold their job's
    /// real exit status. Each such job, now `unknown`, gets its real outcome (the owner may
    /// replace `unknown`, docs/design.md §5.1): status and return code from the container,
    /// the output the node had already stored (masked), and a note. The container's own log
    /// is not read back: the secret values to mask it went with the dead node. Containers
    /// still running stay `unknown`.
    async fn recover_exited(&self, dead: &NodeId, streamed: &Streamed) {
        let exited = match self.runtime.exited_labelled("gostint.node_uuid", dead.as_str()).await {
            Ok(e) => e,
            Err(e) => {
                warn!(node_uuid = %dead, error = %e, "could not list a dead node's exited containers");
                return;
            }
        };
        for c in exited {
            let Ok(id) = c.job_id.parse::<gostint_core::JobId>() else { continue };
            let job = match self.store.get(&id).await {
                Ok(Some(j)) if j.status == gostint_core::JobStatus::Unknown && j.node_uuid == dead.as_str() => j,
                Ok(_) => continue,
                Err(e) => {
                    warn!(job_id = %id, error = %e, "could not read a dead node's job");
                    continue;
                }
            };
            let ok = c.exit_code == 0 && !c.oom_killed && !job.kill_requested;
            let (mut output, stderr) = streamed.get(&id).cloned().unwrap_or((job.output, job.stderr));
            output.push_str(&format!("\n{RECOVERED_NOTE}"));
            let outcome = gostint_core::Outcome {
                status: if ok { gostint_core::JobStatus::Success } else { gostint_core::JobStatus::Failed },
                output,
                stderr,
                return_code: c.exit_code,
            };
            // The end time stays the one the job got when it was marked `unknown`: the queue
            // was freed then, and the next job of the queue may already have been claimed, so
            // a later end would make the two overlap in the record (issue 16: found by the
            // reliability suite's `sigkill-sqlite` FIFO check).
            let ended = if job.ended.is_zero() { Timestamp::now() } else { job.ended };
            match self.store.finish(&id, dead, outcome, ended).await {
                Ok(true) => {
                    info!(job_id = %id, return_code = c.exit_code, "recovered the outcome of a dead node's job")
                }
                Ok(false) => {}
                Err(e) => warn!(job_id = %id, error = %e, "could not record a dead node's job outcome"),
            }
        }
    }

    /// The output and stderr stored so far of the active jobs of `nodes` (errors: none).
    async fn streamed_by(&self, nodes: &[NodeId]) -> Streamed {
        let mut streamed = Streamed::new();
        for node in nodes {
            for id in self.store.active_ids_on(node).await.unwrap_or_default() {
                if let Ok(Some(j)) = self.store.get(&id).await {
                    streamed.insert(id, (j.output, j.stderr));
                }
            }
        }
        streamed
    }

    /// At start: with a single-process store every other node is a previous run of this
    /// one (it crashed, or it would have deregistered), so its jobs end `unknown` now and
    /// its containers go; with a shared store the stale-node sweep decides.
    async fn recover(&self, single_process: bool, previous: Option<NodeId>) -> anyhow::Result<()> {
        self.store.heartbeat(&self.node, Timestamp::now()).await.context("registering this node")?;
        // The output the dead runs' jobs had streamed, read before marking them `unknown`
        // replaces it (issue 16, item 6).
        let mut owners = previous.iter().cloned().collect::<Vec<_>>();
        if single_process {
            owners.extend(self.store.orphan_owners(&self.node).await.unwrap_or_default());
        }
        let streamed = self.streamed_by(&owners).await;
        if let Some(prev) = previous {
            // This machine's previous run: if it still owns jobs it crashed.
            let lost = self.store.mark_node_lost(&prev, Timestamp::now()).await?;
            self.store.deregister(&prev).await?;
            if lost > 0 {
                warn!(node_uuid = %prev, jobs = lost, "the previous run on this machine crashed: its jobs are now unknown");
                self.worker.wake();
            }
            self.remove_containers_of(std::slice::from_ref(&prev), &streamed).await;
        }
        if single_process {
            let everyone = Timestamp::from_millis(i64::MAX);
            let mut dead = self.store.reap_stale_nodes(everyone, Timestamp::now(), &self.node).await?;
            for orphan in self.store.orphan_owners(&self.node).await? {
                self.store.mark_node_lost(&orphan, Timestamp::now()).await?;
                dead.push(orphan);
            }
            if !dead.is_empty() {
                warn!(nodes = dead.len(), "a previous run ended without shutting down: its jobs are now unknown");
                self.worker.wake();
            }
            self.remove_containers_of(&dead, &streamed).await;
        }
        Ok(())
    }

    /// One pass: heartbeat, reap stale nodes, purge ended jobs past retention. Every error
    /// is logged and retried next pass; nothing here brings the process down.
    async fn pass(&self) {
        let now = Timestamp::now();
        if let Err(e) = self.store.heartbeat(&self.node, now).await {
            warn!(error = %e, "heartbeat failed; will retry");
        }
        let cutoff = Timestamp::from_millis(now.millis() - self.stale_after.as_millis() as i64);
        match self.store.reap_stale_nodes(cutoff, now, &self.node).await {
            Ok(dead) if dead.is_empty() => {}
            Ok(dead) => {
                warn!(nodes = ?dead.iter().map(NodeId::as_str).collect::<Vec<_>>(), "stale nodes reaped: their jobs are now unknown");
                self.worker.wake();
                self.remove_containers_of(&dead, &Streamed::new()).await;
            }
            Err(e) => warn!(error = %e, "stale-node sweep failed; will retry"),
        }
        let cutoff = Timestamp::from_millis(now.millis() - self.retention.as_millis() as i64);
        match self.store.purge_ended_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => info!(purged = n, "purged ended jobs past retention"),
            Err(e) => warn!(error = %e, "purging ended jobs failed; will retry"),
        }
    }

    /// Every 60 s + 0–60 s (docs/design.md §5.7), or sooner when the stale threshold is short.
    async fn run(self, cancel: CancellationToken) {
        let base = Duration::from_secs(60).min(self.stale_after / 3).max(Duration::from_millis(200));
        loop {
            self.pass().await;
            let jitter = Duration::from_millis(rand::random::<u64>() % (base.as_millis() as u64).max(1));
            tokio::select! {
                _ = tokio::time::sleep(base + jitter) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }
}

/// Runs until SIGTERM (drain, then exit) — SIGINT only drains (docs/design.md §5.5).
///
/// # Errors
/// Start-up failures (see [`start`]).
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let server = start(&settings).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = hup.recv() => match server.reload_tls().await {
                Ok(()) => info!("SIGHUP: certificate reloaded"),
                Err(e) => warn!(error = format!("{e:#}"), "SIGHUP: certificate not reloaded; the previous one still serves"),
            },
            _ = int.recv() => {
                server.state.drain();
                info!("SIGINT: draining (no new claims); send SIGTERM to exit");
            }
            _ = term.recv() => {
                server.state.drain();
                info!(running = server.worker.running(), "SIGTERM: draining, then exiting");
                // The shutdown's stop grace is part of the drain limit (issue 16, item 3).
                let deadline = tokio::time::Instant::now() + settings.drain_timeout.saturating_sub(shutdown_grace(&settings));
                while server.worker.running() > 0 && tokio::time::Instant::now() < deadline {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = term.recv() => break,
                        _ = int.recv() => break,
                    }
                }
                break;
            }
        }
    }
    server.shutdown().await;
    info!("gostint stopped");
    Ok(())
}
