//! The node's dispatcher: claims queue heads on wake-up (a job posted, a job ended) with a
//! 1 s fallback sweep, runs each claimed job as a tracked task, and the kill loop.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gostint_core::{JobId, JobStatus, NodeControl, NodeId, Outcome, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::pipeline::{run_job, PipelineConfig, Ports};

/// Whether this node claims new jobs.
#[derive(Debug, Default)]
pub struct NodeState {
    draining: AtomicBool,
}

impl NodeState {
    /// Stop claiming (SIGINT/SIGTERM); HTTP, running jobs and kills go on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// `active` or `draining`, as the health map shows it.
    pub fn as_str(&self) -> &'static str {
        if self.is_draining() {
            "draining"
        } else {
            "active"
        }
    }
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The per-job pipeline settings (node id among them).
    pub pipeline: PipelineConfig,
    /// Running containers on this node; 0 = no cap.
    pub max_running: usize,
    /// Fallback sweep period (the original's 1 s tick).
    pub sweep: Duration,
    /// Kill loop period (docs/design.md §5.4: 5 s; the API also wakes it at once).
    pub kill_period: Duration,
}

/// The node's job engine. The API reaches it as a [`NodeControl`]: `wake` after an
/// enqueue (a permit is kept if the dispatcher is busy, so none is lost), `wake_kills`
/// after a kill request.
pub struct Worker {
    ports: Ports,
    cfg: WorkerConfig,
    wake: Notify,
    kill_wake: Notify,
    running: AtomicUsize,
    state: Arc<NodeState>,
    abort: CancellationToken,
    /// The jobs a pipeline task of this process holds (claimed, not yet ended).
    held: Mutex<HashSet<JobId>>,
    /// Claims sent to the store and not yet answered, and how many have been answered: the
    /// orphan check only trusts a store read that no claim overlapped.
    claims_in_flight: AtomicUsize,
    claims_answered: AtomicU64,
    /// A pipeline could not record an outcome because the store is unavailable (issue 16,
    /// item 5): claim nothing until a record succeeds.
    store_refusing: AtomicBool,
}

/// The outcome of a job this node owns in the store but no pipeline of it holds (the claim
/// committed but its answer was lost with the store connection): it never ran here.
pub const ORPHAN_MESSAGE: &str =
    "gostint lost track of this job after a job store error (the claim's answer did not arrive); it was not run";

/// When no cap is set, claim at most this many queue heads per store round trip.
const CLAIM_BATCH: usize = 64;

impl Worker {
    /// A worker over the given ports.
    pub fn new(ports: Ports, cfg: WorkerConfig, state: Arc<NodeState>) -> Arc<Self> {
        Arc::new(Self {
            ports,
            cfg,
            wake: Notify::new(),
            kill_wake: Notify::new(),
            running: AtomicUsize::new(0),
            state,
            abort: CancellationToken::new(),
            held: Mutex::new(HashSet::new()),
            claims_in_flight: AtomicUsize::new(0),
            claims_answered: AtomicU64::new(0),
            store_refusing: AtomicBool::new(false),
        })
    }

    /// Stops every job this node runs (shutdown past the drain limit): containers get the
    /// kill grace, then SIGKILL; the jobs end `failed` with
    /// [`SHUTDOWN_KILLED`](crate::pipeline::SHUTDOWN_KILLED).
    pub fn abort_running(&self) {
        self.abort.cancel();
    }

    /// Jobs this process is running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The claim loop and the kill loop, until `cancel`; job tasks go to `tracker` so the
    /// server can wait for them on shutdown.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, tracker: TaskTracker) {
        let kills = tracker.spawn(self.clone().kill_loop(cancel.clone()).in_current_span());
        info!(node_uuid = %self.node(), "dispatcher started");
        let mut backoff = Duration::from_millis(100);
        loop {
            if !self.state.is_draining() {
                match self.claim_round(&tracker).await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        error!(error = %e, "claiming jobs failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = cancel.cancelled() => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.sweep) => {}
                _ = cancel.cancelled() => break,
            }
        }
        let _ = kills.await;
        info!("dispatcher stopped");
    }

    /// Claims until the store has nothing runnable or the cap is reached.
    async fn claim_round(self: &Arc<Self>, tracker: &TaskTracker) -> Result<(), gostint_core::StoreError> {
        loop {
            let room = match self.cfg.max_running {
                0 => CLAIM_BATCH,
                cap => cap.saturating_sub(self.running()).min(CLAIM_BATCH),
            };
            if room == 0 {
                return Ok(());
            }
            if self.store_refusing.load(Ordering::SeqCst) {
                debug!("the store refuses outcomes; claiming nothing until one is recorded");
                return Ok(());
            }
            self.claims_in_flight.fetch_add(1, Ordering::SeqCst);
            let jobs = self.ports.store.claim(self.node(), room, Timestamp::now()).await;
            if let Ok(jobs) = &jobs {
                self.held.lock().unwrap_or_else(|p| p.into_inner()).extend(jobs.iter().map(|j| j.id));
            }
            self.claims_answered.fetch_add(1, Ordering::SeqCst);
            self.claims_in_flight.fetch_sub(1, Ordering::SeqCst);
            let jobs = jobs?;
            if jobs.is_empty() {
                return Ok(());
            }
            let full_batch = jobs.len() == room;
            for job in jobs {
                self.ports.live.publish(job.id);
                self.running.fetch_add(1, Ordering::SeqCst);
                self.ports.metrics.jobs_running.inc();
                let waited_ms = job.started.millis().saturating_sub(job.submitted.millis()).max(0);
                self.ports.metrics.job_queue_wait_seconds.observe(waited_ms as f64 / 1000.0);
                let span = tracing::info_span!("job", job_id = %job.id, qname = %job.qname);
                debug!(parent: &span, "job claimed");
                let me = self.clone();
                tracker.spawn(
                    async move {
                        let id = job.id;
                        // A bug in the pipeline must not strand the job `running` nor leak the
                        // slot: catch the panic and record the job failed.
                        // The queue is free once the outcome is stored: its next job (or
                        // another queue's, if the cap allows) can be claimed during the
                        // clean-up.
                        let recorded = || me.wake();
                        let run = std::panic::AssertUnwindSafe(run_job(
                            &me.ports,
                            &me.cfg.pipeline,
                            job,
                            &me.abort,
                            recorded,
                            &me.store_refusing,
                        ));
                        if futures::FutureExt::catch_unwind(run).await.is_err() {
                            error!(job_id = %id, "job pipeline panicked; recording the job failed");
                            let outcome = gostint_core::Outcome::message(
                                gostint_core::JobStatus::Failed,
                                "gostint internal error while running the job",
                            );
                            if let Err(e) = me.ports.store.finish(&id, me.node(), outcome, Timestamp::now()).await {
                                error!(job_id = %id, error = %e, "could not record the failed job");
                            }
                        }
                        me.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                        me.running.fetch_sub(1, Ordering::SeqCst);
                        me.ports.metrics.jobs_running.dec();
                        // The slot is free too.
                        me.wake();
                    }
                    .instrument(span),
                );
            }
            if !full_batch {
                return Ok(());
            }
        }
    }

    /// Stops the containers of this node's jobs whose kill was requested.
    async fn kill_loop(self: Arc<Self>, cancel: CancellationToken) {
        let mut backoff = self.cfg.kill_period;
        loop {
            tokio::select! {
                _ = self.kill_wake.notified() => {}
                _ = tokio::time::sleep(backoff) => {}
                _ = cancel.cancelled() => return,
            }
            match self.ports.store.kills_pending(self.node()).await {
                Ok(jobs) => {
                    backoff = self.cfg.kill_period;
                    for job in jobs {
                        if job.container_id.is_empty() {
                            // Not created yet: the pre-start re-check will catch it.
                            continue;
                        }
                        match self.ports.store.mark_stopping(&job.id).await {
                            Ok(true) => self.ports.live.publish(job.id),
                            Ok(false) => continue,
                            Err(e) => {
                                warn!(job_id = %job.id, error = %e, "could not mark job stopping");
                                continue;
                            }
                        }
                        info!(job_id = %job.id, container_id = %job.container_id, "killing job");
                        let runtime = self.ports.runtime.clone();
                        let grace = self.cfg.pipeline.kill_grace;
                        // Stopping waits out the grace period: don't hold up other kills.
                        tokio::spawn(async move {
                            if let Err(e) = runtime.stop(&job.container_id, grace).await {
                                warn!(job_id = %job.id, error = %e, "stopping the container failed");
                            }
                        });
                    }
                }
                Err(e) => {
                    warn!(error = %e, "kill scan failed; backing off");
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
            self.end_orphans().await;
        }
    }

    /// Ends this node's active jobs that no pipeline task of this process holds (issue 16,
    /// item 1): a claim that committed in the store but whose answer was lost leaves jobs
    /// `running` here with nothing to run, kill or finish them, and their queues blocked.
    /// Such a job never reached a pipeline, so it never ran: it ends `failed` with
    /// [`ORPHAN_MESSAGE`] (or `job killed` if a kill was asked), and any container labelled
    /// with its id is removed. The store read is only trusted if no claim was in flight or
    /// answered meanwhile (its jobs may not be in the held set yet); `finish` only moves
    /// jobs still active, so a job that a pipeline ends at the same moment keeps its outcome.
    async fn end_orphans(&self) {
        let answered = self.claims_answered.load(Ordering::SeqCst);
        if self.claims_in_flight.load(Ordering::SeqCst) != 0 {
            return;
        }
        let active = match self.ports.store.active_ids_on(self.node()).await {
            Ok(ids) => ids,
            Err(e) => {
                debug!(error = %e, "orphan check could not read this node's jobs");
                return;
            }
        };
        if self.claims_in_flight.load(Ordering::SeqCst) != 0 || self.claims_answered.load(Ordering::SeqCst) != answered
        {
            return;
        }
        let orphans: Vec<JobId> = {
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            active.into_iter().filter(|id| !held.contains(id)).collect()
        };
        for id in orphans {
            let killed = matches!(self.ports.store.get(&id).await, Ok(Some(j)) if j.kill_requested);
            let message = if killed { "job killed" } else { ORPHAN_MESSAGE };
            match self
                .ports
                .store
                .finish(&id, self.node(), Outcome::message(JobStatus::Failed, message), Timestamp::now())
                .await
            {
                Ok(true) => {
                    warn!(job_id = %id, killed, "ended a running job that no pipeline of this node held");
                    self.ports.metrics.jobs_finished.with_label_values(&["failed"]).inc();
                    if let Err(e) = self.ports.runtime.remove_labelled("gostint.job_id", &id.to_string()).await {
                        warn!(job_id = %id, error = %e, "could not look for the job's container");
                    }
                    self.wake();
                }
                Ok(false) => {}
                Err(e) => warn!(job_id = %id, error = %e, "could not end a job no pipeline holds"),
            }
        }
    }
}

impl NodeControl for Worker {
    fn node(&self) -> &NodeId {
        &self.cfg.pipeline.node
    }
    fn state(&self) -> &'static str {
        self.state.as_str()
    }
    fn wake(&self) {
        self.wake.notify_one();
    }
    fn wake_kills(&self) {
        self.kill_wake.notify_one();
    }
}
