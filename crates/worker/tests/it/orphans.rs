//! Issue 16, item 1: a claim that commits in the store but whose answer is lost (the store
//! connection drops right after it) must not leave its job `running` forever with its queue
//! blocked. The store is the real SQLite store behind a wrapper that loses one claim's answer.

use std::sync::atomic::AtomicBool;

use super::*;
use gostint_worker::ORPHAN_MESSAGE;

/// The real store, except that the first claim after `cut` is set commits and then answers
/// an error, as when the connection drops right after the claim.
struct CutAfterClaim {
    inner: Arc<dyn JobStore>,
    cut: AtomicBool,
    lost: AtomicUsize,
    /// Finishes still to refuse as `Unavailable` (a full disk), refused so far, and claims
    /// that handed out jobs between the first refusal and the last.
    refuse_finish: AtomicUsize,
    refused: AtomicUsize,
    claims_while_refusing: AtomicUsize,
}

fn cut_error() -> StoreError {
    StoreError::Backend("connection reset by peer (injected after the claim committed)".into())
}

#[async_trait]
impl JobStore for CutAfterClaim {
    async fn enqueue(&self, job: NewJob) -> Result<(), StoreError> {
        self.inner.enqueue(job).await
    }
    async fn claim(&self, node: &NodeId, max: usize, now: Timestamp) -> Result<Vec<JobRecord>, StoreError> {
        let got = self.inner.claim(node, max, now).await?;
        if !got.is_empty() && self.refused.load(Ordering::SeqCst) > 0 && self.refuse_finish.load(Ordering::SeqCst) > 0 {
            self.claims_while_refusing.fetch_add(1, Ordering::SeqCst);
        }
        if !got.is_empty() && self.cut.swap(false, Ordering::SeqCst) {
            self.lost.fetch_add(got.len(), Ordering::SeqCst);
            return Err(cut_error());
        }
        Ok(got)
    }
    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn set_container(&self, id: &JobId, image: &str, container_id: &str) -> Result<(), StoreError> {
        self.inner.set_container(id, image, container_id).await
    }
    async fn clear_wrap_secret_id(&self, id: &JobId) -> Result<(), StoreError> {
        self.inner.clear_wrap_secret_id(id).await
    }
    async fn finish(&self, id: &JobId, node: &NodeId, outcome: Outcome, ended: Timestamp) -> Result<bool, StoreError> {
        if self.refuse_finish.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("database or disk is full (injected)".into()));
        }
        self.inner.finish(id, node, outcome, ended).await
    }
    async fn request_kill(
        &self,
        id: &JobId,
        who: Visibility<'_>,
        now: Timestamp,
    ) -> Result<Option<KillOutcome>, StoreError> {
        self.inner.request_kill(id, who, now).await
    }
    async fn mark_stopping(&self, id: &JobId) -> Result<bool, StoreError> {
        self.inner.mark_stopping(id).await
    }
    async fn kills_pending(&self, node: &NodeId) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.kills_pending(node).await
    }
    async fn delete(&self, id: &JobId, who: Visibility<'_>) -> Result<DeleteOutcome, StoreError> {
        self.inner.delete(id, who).await
    }
    async fn list(&self, who: Visibility<'_>, skip: u64, limit: u64) -> Result<(Vec<JobRecord>, u64), StoreError> {
        self.inner.list(who, skip, limit).await
    }
    async fn count_by_status(&self) -> Result<std::collections::HashMap<JobStatus, u64>, StoreError> {
        self.inner.count_by_status().await
    }
    async fn count_active_on(&self, node: &NodeId) -> Result<u64, StoreError> {
        self.inner.count_active_on(node).await
    }
    async fn purge_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_ended_before(cutoff).await
    }
    async fn heartbeat(&self, node: &NodeId, now: Timestamp) -> Result<(), StoreError> {
        self.inner.heartbeat(node, now).await
    }
    async fn deregister(&self, node: &NodeId) -> Result<(), StoreError> {
        self.inner.deregister(node).await
    }
    async fn mark_node_lost(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.mark_node_lost(node, now).await
    }
    async fn reap_stale_nodes(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        except: &NodeId,
    ) -> Result<Vec<NodeId>, StoreError> {
        self.inner.reap_stale_nodes(cutoff, now, except).await
    }
    async fn orphan_owners(&self, except: &NodeId) -> Result<Vec<NodeId>, StoreError> {
        self.inner.orphan_owners(except).await
    }
    async fn listen(&self, sink: EventSink) -> Result<(), StoreError> {
        self.inner.listen(sink).await
    }
    async fn active_ids_on(&self, node: &NodeId) -> Result<Vec<JobId>, StoreError> {
        self.inner.active_ids_on(node).await
    }
    fn set_tenant_max_running(&self, max: usize) {
        self.inner.set_tenant_max_running(max)
    }
    fn set_tenant_max_queued(&self, max: u64) {
        self.inner.set_tenant_max_queued(max)
    }
    async fn count_by_tenant(&self) -> Result<std::collections::HashMap<String, gostint_core::TenantLoad>, StoreError> {
        self.inner.count_by_tenant().await
    }
    async fn count_queued(&self, tenant: &str) -> Result<u64, StoreError> {
        self.inner.count_queued(tenant).await
    }
    async fn append_output(
        &self,
        id: &JobId,
        node: &NodeId,
        stdout: &str,
        stderr: &str,
        replace: bool,
    ) -> Result<bool, StoreError> {
        self.inner.append_output(id, node, stdout, stderr, replace).await
    }
    async fn record_image_pull(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        self.inner.record_image_pull(engine, image, now).await
    }
    async fn touch_image(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        self.inner.touch_image(engine, image, now).await
    }
    async fn images_unused_since(&self, engine: &str, cutoff: Timestamp) -> Result<Vec<String>, StoreError> {
        self.inner.images_unused_since(engine, cutoff).await
    }
    async fn forget_image(&self, engine: &str, image: &str, cutoff: Timestamp) -> Result<bool, StoreError> {
        self.inner.forget_image(engine, image, cutoff).await
    }
}

struct CutHarness {
    store: Arc<CutAfterClaim>,
    worker: Arc<Worker>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _dir: tempfile::TempDir,
}

impl CutHarness {
    async fn start(kill_period: Duration) -> Self {
        Self::start_with(kill_period, Arc::new(FakeVault)).await
    }

    async fn start_with(kill_period: Duration, vault: Arc<dyn JobVault>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn JobStore> =
            Arc::new(gostint_store_sqlite::SqliteJobStore::open_in(dir.path()).await.unwrap());
        let store = Arc::new(CutAfterClaim {
            inner,
            cut: AtomicBool::new(false),
            lost: AtomicUsize::new(0),
            refuse_finish: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            claims_while_refusing: AtomicUsize::new(0),
        });
        let ports = Ports {
            store: store.clone(),
            runtime: Arc::new(FaultyRuntime::default()),
            vault,
            metrics: gostint_metrics::Metrics::new(),
            files: Arc::new(JobFiles::bind_in(dir.path()).unwrap()),
            live: Default::default(),
        };
        let cfg = WorkerConfig {
            pipeline: pipeline_config(),
            max_running: 4,
            sweep: Duration::from_millis(200),
            kill_period,
        };
        let worker = Worker::new(ports, cfg, Arc::new(NodeState::default()));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(worker.clone().run(cancel.clone(), tracker.clone()));
        Self { store, worker, cancel, tracker, _dir: dir }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Waits up to `limit` for the job to be final; None if it is still not.
async fn final_within(store: &dyn JobStore, id: &JobId, limit: Duration) -> Option<JobRecord> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let j = store.get(id).await.unwrap().unwrap();
        if j.status.is_final() {
            return Some(j);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_claim_whose_answer_is_lost_ends_its_job_and_frees_the_queue() {
    let h = CutHarness::start(Duration::from_millis(300)).await;
    h.store.cut.store(true, Ordering::SeqCst);
    let first = job("ok/img");
    let mut second = job("ok/img");
    second.submitted = Timestamp::from_millis(first.submitted.millis() + 1);
    h.store.enqueue(first.clone()).await.unwrap();
    h.store.enqueue(second.clone()).await.unwrap();
    NodeControl::wake(h.worker.as_ref());

    let f = final_within(h.store.as_ref(), &first.id, Duration::from_secs(60)).await;
    assert_eq!(h.store.lost.load(Ordering::SeqCst), 1, "one claim answer was lost");
    let f = f.expect("the job whose claim answer was lost stayed running");
    assert_eq!((f.status, f.output.as_str()), (JobStatus::Failed, ORPHAN_MESSAGE));
    let s =
        final_within(h.store.as_ref(), &second.id, Duration::from_secs(60)).await.expect("the queue stayed blocked");
    assert_eq!((s.status, s.output.as_str()), (JobStatus::Success, "ok\n"), "the queue moved on");
    assert_eq!(h.store.active_ids_on(&NodeId::new("n1")).await.unwrap(), vec![]);
    h.stop().await;
}

#[tokio::test]
async fn a_kill_of_a_job_no_pipeline_holds_ends_it_at_once() {
    // The periodic check is an hour away: only the kill's wake-up can end the job.
    let h = CutHarness::start(Duration::from_secs(3600)).await;
    h.store.cut.store(true, Ordering::SeqCst);
    let j = job("ok/img");
    h.store.enqueue(j.clone()).await.unwrap();
    NodeControl::wake(h.worker.as_ref());
    // Wait for the claim (and its lost answer).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while h.store.lost.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the job was never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.store.get(&j.id).await.unwrap().unwrap().status, JobStatus::Running);
    let k = h.store.request_kill(&j.id, Visibility::All, Timestamp::now()).await.unwrap().unwrap();
    assert_eq!(k.previous, JobStatus::Running);
    NodeControl::wake_kills(h.worker.as_ref());
    let f = final_within(h.store.as_ref(), &j.id, Duration::from_secs(30)).await.expect("the kill did nothing");
    assert_eq!((f.status, f.output.as_str()), (JobStatus::Failed, "job killed"));
    assert_eq!(h.store.delete(&j.id, Visibility::All).await.unwrap(), DeleteOutcome::Deleted);
    h.stop().await;
}

/// Issue 16, item 5: while the store refuses writes (disk full), a finished job's real
/// outcome is kept and retried with back-off (before: three tries, then `failed` / "could not
/// store the job's result"), and the node claims nothing meanwhile.
#[tokio::test]
async fn an_outcome_the_store_refuses_is_kept_and_nothing_is_claimed_meanwhile() {
    let h = CutHarness::start(Duration::from_secs(3600)).await;
    h.store.refuse_finish.store(5, Ordering::SeqCst);
    let first = job("ok/img");
    h.store.enqueue(first.clone()).await.unwrap();
    NodeControl::wake(h.worker.as_ref());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while h.store.refused.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the outcome was never refused");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut other = job("ok/img");
    other.qname = "other".into();
    h.store.enqueue(other.clone()).await.unwrap();
    NodeControl::wake(h.worker.as_ref());

    let f = final_within(h.store.as_ref(), &first.id, Duration::from_secs(60)).await.expect("never recorded");
    assert_eq!((f.status, f.output.as_str()), (JobStatus::Success, "ok\n"), "the real outcome was kept");
    assert_eq!(h.store.refused.load(Ordering::SeqCst), 5);
    assert_eq!(h.store.claims_while_refusing.load(Ordering::SeqCst), 0, "claimed while the store refused writes");
    let o = final_within(h.store.as_ref(), &other.id, Duration::from_secs(60)).await.expect("never run");
    assert_eq!(o.status, JobStatus::Success, "claiming resumed once the store took writes");
    h.stop().await;
}

/// A Vault whose first unwrap times out after spending the token (the stall of item 2).
#[derive(Default)]
struct StalledUnwrap {
    calls: AtomicUsize,
}

#[async_trait]
impl JobVault for StalledUnwrap {
    async fn lookup_self(&self, t: &str) -> Result<TokenInfo, VaultError> {
        FakeVault.lookup_self(t).await
    }
    async fn read_cubbyhole(&self, t: &str, p: &str) -> Result<Option<Map<String, Value>>, VaultError> {
        FakeVault.read_cubbyhole(t, p).await
    }
    async fn unwrap(&self, _: &str) -> Result<Map<String, Value>, VaultError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(VaultError::new(VaultErrorKind::Unavailable, "Vault request timed out"));
        }
        Err(VaultError::new(VaultErrorKind::Denied, "wrapping token is not valid or does not exist"))
    }
    async fn approle_login(&self, r: &str, s: &str) -> Result<Option<String>, VaultError> {
        FakeVault.approle_login(r, s).await
    }
    async fn transit_decrypt(&self, t: &str, k: &str, c: &str) -> Result<String, VaultError> {
        FakeVault.transit_decrypt(t, k, c).await
    }
    async fn read_secret(&self, t: &str, p: &str) -> Result<Option<SecretData>, VaultError> {
        FakeVault.read_secret(t, p).await
    }
    async fn revoke_self(&self, t: &str) -> Result<(), VaultError> {
        FakeVault.revoke_self(t).await
    }
    async fn wrapping_lookup(&self, _: &str) -> Result<gostint_core::WrapInfo, VaultError> {
        unreachable!("the worker never looks up wrapping tokens")
    }
}

/// Issue 16, item 2: a timed-out unwrap is retried; the token found spent afterwards is
/// reported as exactly that, `failed`, with no interception alert (before: `notauthorised`
/// with "POSSIBLE SECURITY/INTERCEPTION ALERT").
#[tokio::test]
async fn a_timed_out_unwrap_is_retried_and_never_reported_as_interception() {
    let vault = Arc::new(StalledUnwrap::default());
    let h = CutHarness::start_with(Duration::from_secs(3600), vault.clone()).await;
    let j = job("ok/img");
    h.store.enqueue(j.clone()).await.unwrap();
    NodeControl::wake(h.worker.as_ref());
    let f = final_within(h.store.as_ref(), &j.id, Duration::from_secs(60)).await.expect("never ended");
    assert_eq!(f.status, JobStatus::Failed, "{}", f.output);
    assert!(!f.output.contains("INTERCEPTION"), "{}", f.output);
    assert!(f.output.contains("spent by an earlier unwrap attempt"), "{}", f.output);
    assert_eq!(vault.calls.load(Ordering::SeqCst), 2, "retried once");
    h.stop().await;
}

/// An engine whose one container runs until it is stopped, then reports exit 0: a job that
/// finishes by itself during the shutdown grace.
#[derive(Default)]
struct FinishesInGrace {
    inner: FaultyRuntime,
    stopped: tokio::sync::Notify,
    started: AtomicUsize,
    /// Set by `stop`: every wait (the pipeline's and the output follower's) then ends.
    was_stopped: AtomicBool,
}

#[async_trait]
impl ContainerRuntime for FinishesInGrace {
    async fn ensure_image(&self, i: &ImageRef, p: PullPolicy) -> Result<(), RuntimeError> {
        self.inner.ensure_image(i, p).await
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.inner.create(spec).await
    }
    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        self.inner.image_id(image).await
    }
    async fn read_file(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        self.inner.read_file(id, path).await
    }
    async fn put_archive(&self, id: &str, tar: Vec<u8>) -> Result<(), RuntimeError> {
        self.inner.put_archive(id, tar).await
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.inner.start(id).await
    }
    async fn wait(&self, _: &str) -> Result<i64, RuntimeError> {
        loop {
            let notified = self.stopped.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.was_stopped.load(Ordering::SeqCst) {
                return Ok(0);
            }
            notified.await;
        }
    }
    async fn logs(&self, id: &str, tty: bool, max: usize) -> Result<ContainerLogs, RuntimeError> {
        self.inner.logs(id, tty, max).await
    }
    async fn stop(&self, _: &str, _: Duration) -> Result<(), RuntimeError> {
        self.was_stopped.store(true, Ordering::SeqCst);
        self.stopped.notify_waiters();
        Ok(())
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.inner.remove(id).await
    }
    async fn info(&self) -> Result<EngineInfo, RuntimeError> {
        self.inner.info().await
    }
    async fn remove_labelled(&self, k: &str, v: &str) -> Result<u64, RuntimeError> {
        self.inner.remove_labelled(k, v).await
    }
}

/// Issue 16, item 3: a job that exits 0 by itself during the shutdown grace keeps its real
/// outcome (before: `failed`, -1, "job killed").
#[tokio::test]
async fn a_job_that_finishes_during_the_shutdown_grace_keeps_its_real_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(gostint_store_sqlite::SqliteJobStore::open_in(dir.path()).await.unwrap());
    let runtime = Arc::new(FinishesInGrace::default());
    let ports = Ports {
        store: store.clone(),
        runtime: runtime.clone(),
        vault: Arc::new(FakeVault),
        metrics: gostint_metrics::Metrics::new(),
        files: Arc::new(JobFiles::bind_in(dir.path()).unwrap()),
        live: Default::default(),
    };
    let cfg = WorkerConfig {
        pipeline: pipeline_config(),
        max_running: 1,
        sweep: Duration::from_millis(200),
        kill_period: Duration::from_secs(3600),
    };
    let worker = Worker::new(ports, cfg, Arc::new(NodeState::default()));
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(worker.clone().run(cancel.clone(), tracker.clone()));
    let j = job("ok/img");
    store.enqueue(j.clone()).await.unwrap();
    NodeControl::wake(worker.as_ref());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while runtime.started.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.abort_running();
    let f = final_within(store.as_ref(), &j.id, Duration::from_secs(30)).await.expect("never ended");
    assert_eq!((f.status, f.return_code, f.output.as_str()), (JobStatus::Success, 0, "ok\n"));
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
