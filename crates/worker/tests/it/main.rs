//! Faults a real engine cannot be made to produce on demand: a pipeline that panics, and an
//! engine whose calls fail mid-run. The store is the real SQLite store; Vault and Docker are
//! fakes here (the real ones are driven by the server's e2e suite).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gostint_core::*;
use gostint_worker::pipeline::{PipelineConfig, Ports};
use gostint_worker::{NodeState, Worker, WorkerConfig};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
}

/// Panics in `create` for images named `panic/...`; fails `wait` for `broken/...`.
#[derive(Default)]
struct FaultyRuntime {
    removed: AtomicUsize,
}

#[async_trait]
impl ContainerRuntime for FaultyRuntime {
    async fn ensure_image(&self, _: &ImageRef, _: PullPolicy) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        assert!(!spec.image.starts_with("panic/"), "injected pipeline bug");
        Ok(spec.image.clone())
    }
    async fn read_file(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        Ok(None)
    }
    async fn put_archive(&self, _: &str, _: Vec<u8>) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn start(&self, _: &str) -> Result<(), RuntimeError> {
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
    async fn remove_labelled(&self, _: &str, _: &str) -> Result<u64, RuntimeError> {
        Ok(0)
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

#[tokio::test]
async fn a_panicking_pipeline_fails_the_job_and_frees_its_queue_and_slot() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(gostint_store_sqlite::SqliteJobStore::open_in(dir.path()).await.unwrap());
    let runtime = Arc::new(FaultyRuntime::default());
    let ports = Ports {
        store: store.clone(),
        runtime: runtime.clone(),
        vault: Arc::new(FakeVault),
        metrics: gostint_metrics::Metrics::new(),
    };
    let node = NodeId::new("n1");
    let cfg = WorkerConfig {
        pipeline: PipelineConfig {
            node: node.clone(),
            role_id: "rid".into(),
            role_name: None,
            vault_addr: "http://vault".into(),
            vault_cacert: None,
            inject_token: true,
            max_output: 1 << 20,
            job_timeout: None,
            kill_grace: Duration::from_secs(1),
            max_content_unpacked: 1 << 20,
        },
        max_running: 1,
        sweep: Duration::from_secs(1),
        kill_period: Duration::from_secs(5),
    };
    let worker = Worker::new(ports, cfg, Arc::new(NodeState::default()));
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(worker.clone().run(cancel.clone(), tracker.clone()));

    let bad = job("panic/img");
    let broken = job("broken/img");
    let good = job("ok/img");
    for j in [&bad, &broken, &good] {
        store.enqueue(j.clone()).await.unwrap();
        NodeControl::wake(worker.as_ref());
    }
    let b = wait_final(store.as_ref(), &bad.id).await;
    assert_eq!((b.status, b.output.as_str()), (JobStatus::Failed, "gostint internal error while running the job"));
    let e = wait_final(store.as_ref(), &broken.id).await;
    assert_eq!((e.status, e.output.as_str()), (JobStatus::Failed, "Run container failed: engine went away"));
    let g = wait_final(store.as_ref(), &good.id).await;
    assert_eq!((g.status, g.output.as_str()), (JobStatus::Success, "ok\n"), "the queue and the only slot moved on");
    assert_eq!(worker.running(), 0);
    assert!(runtime.removed.load(Ordering::SeqCst) >= 2, "containers removed on failure paths too");
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
