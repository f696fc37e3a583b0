//! Faults a real engine cannot be made to produce on demand: a pipeline that panics, and an
//! engine whose calls fail mid-run. The store is the real SQLite store; Vault and Docker are
//! fakes here (the real ones are driven by the server's e2e suite).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gostint_core::*;
use gostint_worker::pipeline::{PipelineConfig, Ports};
use gostint_worker::{JobFiles, NodeState, Worker, WorkerConfig};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod orphans;

struct FakeVault;

#[async_trait]
impl JobVault for FakeVault {
    async fn lookup_self(&self, _: &str) -> Result<TokenInfo, VaultError> {
        Ok(TokenInfo::default())
    }
    async fn read_cubbyhole(&self, _: &str, _: &str) -> Result<Option<Map<String, Value>>, VaultError> {
        Ok(None)
    }
    async fn unwrap(&self, _: &str) -> Result<Map<String, Value>, VaultError> {
        Ok(json!({"secret_id": "sid"}).as_object().cloned().unwrap())
    }
    async fn approle_login(&self, _: &str, _: &str) -> Result<Option<String>, VaultError> {
        Ok(Some("job-token".into()))
    }
    async fn transit_decrypt(&self, _: &str, _: &str, _: &str) -> Result<String, VaultError> {
        Err(VaultError::new(VaultErrorKind::Denied, "no"))
    }
    async fn read_secret(&self, _: &str, _: &str) -> Result<Option<SecretData>, VaultError> {
        Ok(None)
    }
    async fn revoke_self(&self, _: &str) -> Result<(), VaultError> {
        Ok(())
    }
    async fn wrapping_lookup(&self, _: &str) -> Result<gostint_core::WrapInfo, VaultError> {
        unreachable!("the worker never looks up wrapping tokens")
    }
}

/// Panics in `create` for images named `panic/...`; fails `wait` for `broken/...`; with
/// `refuse_binds`, refuses creates that bind files, as an engine that cannot see the node's
/// job-file directory does.
#[derive(Default)]
struct FaultyRuntime {
    removed: AtomicUsize,
    refuse_binds: bool,
    bound: AtomicUsize,
    archives: AtomicUsize,
    /// `remove_labelled` calls, as (key, value).
    labelled_removals: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl ContainerRuntime for FaultyRuntime {
    async fn ensure_image(&self, _: &ImageRef, _: PullPolicy) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        assert!(!spec.image.starts_with("panic/"), "injected pipeline bug");
        if spec.image.starts_with("slowcreate/") {
            return Err(RuntimeError::new(RuntimeErrorKind::Transient, "the Docker engine did not answer in time"));
        }
        if !spec.files.is_empty() {
            self.bound.fetch_add(1, Ordering::SeqCst);
            if self.refuse_binds {
                return Err(RuntimeError::new(
                    RuntimeErrorKind::Other,
                    format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        spec.files[0].host
                    ),
                ));
            }
        }
        Ok(spec.image.clone())
    }
    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        // The id is the name, so that the faults above still see it.
        Ok(Some(image.to_string()))
    }
    async fn read_file(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        Ok(None)
    }
    async fn put_archive(&self, _: &str, _: Vec<u8>) -> Result<(), RuntimeError> {
        self.archives.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        if id.starts_with("slowstart/") {
            return Err(RuntimeError::new(RuntimeErrorKind::Transient, "the Docker engine did not answer in time"));
        }
        Ok(())
    }
    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        if id.starts_with("broken/") {
            return Err(RuntimeError::new(RuntimeErrorKind::Transient, "engine went away"));
        }
        Ok(0)
    }
    async fn logs(&self, _: &str, _: bool, _: usize) -> Result<ContainerLogs, RuntimeError> {
        Ok(ContainerLogs { stdout: b"ok\n".to_vec(), stderr: Vec::new() })
    }
    async fn stop(&self, _: &str, _: Duration) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn remove(&self, _: &str) -> Result<(), RuntimeError> {
        self.removed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn info(&self) -> Result<EngineInfo, RuntimeError> {
        Ok(EngineInfo::default())
    }
    async fn remove_labelled(&self, key: &str, value: &str) -> Result<u64, RuntimeError> {
        self.labelled_removals.lock().unwrap().push((key.to_string(), value.to_string()));
        Ok(1)
    }
}

fn job(image: &str) -> NewJob {
    let now = Timestamp::now();
    NewJob {
        id: JobId::new(now.unix_seconds()),
        qname: "q".into(),
        owner: Owner::new("o"),
        submitted: now,
        definition: JobDefinition { container_image: image.into(), ..Default::default() },
        wrap_secret_id: "wrap".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

async fn wait_final(store: &dyn JobStore, id: &JobId) -> JobRecord {
    for _ in 0..200 {
        let j = store.get(id).await.unwrap().unwrap();
        if j.status.is_final() {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} never ended");
}

fn pipeline_config() -> PipelineConfig {
    PipelineConfig {
        node: NodeId::new("n1"),
        role_id: "rid".into(),
        role_name: None,
        vault_addr: "http://vault".into(),
        vault_cacert: None,
        inject_token: true,
        max_output: 1 << 20,
        job_timeout: None,
        kill_grace: Duration::from_secs(1),
        max_content_unpacked: 1 << 20,
        tenants: gostint_core::TenantRegistry::new(gostint_core::Tenants::single(None, "rid".into())),
        sandbox: Default::default(),
        gc_engine: String::new(),
        shutdown_grace: Duration::from_secs(1),
    }
}

struct Harness {
    store: Arc<dyn JobStore>,
    worker: Arc<Worker>,
    files: Arc<JobFiles>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A worker with one slot on the real SQLite store, binding job files in a temp dir.
    async fn start(runtime: Arc<FaultyRuntime>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn JobStore> =
            Arc::new(gostint_store_sqlite::SqliteJobStore::open_in(dir.path()).await.unwrap());
        let files = Arc::new(JobFiles::bind_in(dir.path()).unwrap());
        let ports = Ports {
            store: store.clone(),
            runtime,
            vault: Arc::new(FakeVault),
            metrics: gostint_metrics::Metrics::new(),
            files: files.clone(),
            live: Default::default(),
        };
        let cfg = WorkerConfig {
            pipeline: pipeline_config(),
            max_running: 1,
            sweep: Duration::from_secs(1),
            kill_period: Duration::from_secs(5),
        };
        let worker = Worker::new(ports, cfg, Arc::new(NodeState::default()));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(worker.clone().run(cancel.clone(), tracker.clone()));
        Self { store, worker, files, cancel, tracker, _dir: dir }
    }

    async fn run(&self, j: &NewJob) -> JobRecord {
        self.store.enqueue(j.clone()).await.unwrap();
        NodeControl::wake(self.worker.as_ref());
        wait_final(self.store.as_ref(), &j.id).await
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[tokio::test]
async fn a_panicking_pipeline_fails_the_job_and_frees_its_queue_and_slot() {
    let runtime = Arc::new(FaultyRuntime::default());
    let h = Harness::start(runtime.clone()).await;
    let bad = job("panic/img");
    let broken = job("broken/img");
    let good = job("ok/img");
    for j in [&bad, &broken, &good] {
        h.store.enqueue(j.clone()).await.unwrap();
        NodeControl::wake(h.worker.as_ref());
    }
    let b = wait_final(h.store.as_ref(), &bad.id).await;
    assert_eq!((b.status, b.output.as_str()), (JobStatus::Failed, "gostint internal error while running the job"));
    let e = wait_final(h.store.as_ref(), &broken.id).await;
    assert_eq!((e.status, e.output.as_str()), (JobStatus::Failed, "Run container failed: engine went away"));
    let g = wait_final(h.store.as_ref(), &good.id).await;
    assert_eq!((g.status, g.output.as_str()), (JobStatus::Success, "ok\n"), "the queue and the only slot moved on");
    assert_eq!(h.worker.running(), 0);
    assert!(runtime.removed.load(Ordering::SeqCst) >= 2, "containers removed on failure paths too");
    h.stop().await;
}

#[tokio::test]
async fn an_engine_that_cannot_bind_the_job_files_gets_them_copied_for_good() {
    // An engine that sees the directory: the first job of an image is copied (its files are
    // read from the container), the next ones are bound.
    let runtime = Arc::new(FaultyRuntime::default());
    let h = Harness::start(runtime.clone()).await;
    for _ in 0..3 {
        assert_eq!(h.run(&job("ok/img")).await.status, JobStatus::Success);
    }
    assert_eq!((runtime.archives.load(Ordering::SeqCst), runtime.bound.load(Ordering::SeqCst)), (1, 2));
    assert!(h.files.binding());
    h.stop().await;

    // One that does not: the refused create is made again without binds, the job succeeds,
    // and the node copies from then on without trying again.
    let runtime = Arc::new(FaultyRuntime { refuse_binds: true, ..Default::default() });
    let h = Harness::start(runtime.clone()).await;
    for _ in 0..3 {
        let j = h.run(&job("ok/img")).await;
        assert_eq!((j.status, j.output.as_str()), (JobStatus::Success, "ok\n"));
    }
    assert_eq!(runtime.bound.load(Ordering::SeqCst), 1, "one refused bind, then none tried");
    assert_eq!(runtime.archives.load(Ordering::SeqCst), 3, "every job's files copied in");
    assert!(!h.files.binding());
    h.stop().await;
}

/// Issue 16, item 10: after an engine timeout in create or start, the job's container is
/// looked up by its label `gostint.job_id` and removed (before: a create that timed out left
/// its container `Created`, burning a core, with nobody removing it).
#[tokio::test]
async fn an_engine_timeout_in_create_or_start_removes_the_container_by_its_label() {
    let runtime = Arc::new(FaultyRuntime::default());
    let h = Harness::start(runtime.clone()).await;
    for image in ["slowcreate/img", "slowstart/img"] {
        let j = job(image);
        let r = h.run(&j).await;
        assert_eq!(r.status, JobStatus::Failed, "{image}");
        assert!(r.output.contains("did not answer in time"), "{}", r.output);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let want = ("gostint.job_id".to_string(), j.id.to_string());
        while !runtime.labelled_removals.lock().unwrap().contains(&want) {
            assert!(tokio::time::Instant::now() < deadline, "{image}: the container was never removed by its label");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A job that ran normally is not looked up by label.
    let ok = job("ok/img");
    assert_eq!(h.run(&ok).await.status, JobStatus::Success);
    assert!(!runtime.labelled_removals.lock().unwrap().iter().any(|(_, v)| *v == ok.id.to_string()));
    h.stop().await;
}
