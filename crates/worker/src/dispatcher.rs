//! The node's dispatcher: claims queue heads on wake-up (a job posted, a job ended) with a
//! 1 s fallback sweep, runs each claimed job as a tracked task, and the kill loop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gostint_core::{NodeControl, NodeId, Timestamp};
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
    /// Kill loop period (SPEC.md §5.4: 5 s; the API also wakes it at once).
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
}

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
            let jobs = self.ports.store.claim(self.node(), room, Timestamp::now()).await?;
            if jobs.is_empty() {
                return Ok(());
            }
            let full_batch = jobs.len() == room;
            for job in jobs {
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
                            Ok(true) => {}
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
