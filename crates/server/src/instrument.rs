//! Port decorators that count the Vault, Docker and job-store calls of this node in
//! `gostint_port_call_seconds{port}` and their failures in `gostint_port_errors_total{port}`.
//! A token Vault refuses is the caller's fault, not Vault's: it is timed, not counted as an
//! error; so is a tenant's queue quota refused by the store. Docker's `wait`, its log follow
//! and the store's event listener last as long as a job or the node: counted, not timed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use std::collections::HashMap;

use gostint_core::{
    ContainerLogs, ContainerRuntime, ContainerSpec, DeleteOutcome, EngineInfo, EventSink, ImageRef, JobId, JobRecord,
    JobStatus, JobStore, JobVault, KillOutcome, LogChunk, NewJob, NodeId, Outcome, PullPolicy, RuntimeError,
    SecretData, StoreError, TenantLoad, Timestamp, TokenInfo, VaultError, VaultErrorKind, Visibility, WrapInfo,
};
use gostint_metrics::Metrics;
use serde_json::{Map, Value};

async fn timed<T, E>(
    m: &Metrics,
    port: &str,
    time_it: bool,
    is_fault: impl Fn(&E) -> bool,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let start = Instant::now();
    let r = f.await;
    if time_it {
        m.port_call_seconds.with_label_values(&[port]).observe(start.elapsed().as_secs_f64());
    }
    if let Err(e) = &r {
        if is_fault(e) {
            m.port_errors.with_label_values(&[port]).inc();
        }
    }
    r
}

/// [`JobVault`] with metrics.
pub(crate) struct MeteredVault {
    pub(crate) inner: Arc<dyn JobVault>,
    pub(crate) metrics: Metrics,
}

fn vault_fault(e: &VaultError) -> bool {
    e.kind != VaultErrorKind::Denied
}

#[async_trait]
impl JobVault for MeteredVault {
    async fn lookup_self(&self, token: &str) -> Result<TokenInfo, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.lookup_self(token)).await
    }
    async fn read_cubbyhole(&self, token: &str, path: &str) -> Result<Option<Map<String, Value>>, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.read_cubbyhole(token, path)).await
    }
    async fn unwrap(&self, wrap_token: &str) -> Result<Map<String, Value>, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.unwrap(wrap_token)).await
    }
    async fn approle_login(&self, role_id: &str, secret_id: &str) -> Result<Option<String>, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.approle_login(role_id, secret_id)).await
    }
    async fn transit_decrypt(&self, token: &str, key: &str, ciphertext: &str) -> Result<String, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.transit_decrypt(token, key, ciphertext)).await
    }
    async fn read_secret(&self, token: &str, path: &str) -> Result<Option<SecretData>, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.read_secret(token, path)).await
    }
    async fn revoke_self(&self, token: &str) -> Result<(), VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.revoke_self(token)).await
    }
    async fn wrapping_lookup(&self, token: &str) -> Result<WrapInfo, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.wrapping_lookup(token)).await
    }
    async fn capabilities_self(
        &self,
        token: &str,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, VaultError> {
        timed(&self.metrics, "vault", true, vault_fault, self.inner.capabilities_self(token, paths)).await
    }
}

/// [`ContainerRuntime`] with metrics.
pub(crate) struct MeteredRuntime {
    pub(crate) inner: Arc<dyn ContainerRuntime>,
    pub(crate) metrics: Metrics,
}

fn any(_: &RuntimeError) -> bool {
    true
}

#[async_trait]
impl ContainerRuntime for MeteredRuntime {
    async fn ensure_image(&self, image: &ImageRef, policy: PullPolicy) -> Result<(), RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.ensure_image(image, policy)).await
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.create(spec)).await
    }
    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.image_id(image)).await
    }
    async fn read_file(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.read_file(id, path)).await
    }
    async fn put_archive(&self, id: &str, tar: Vec<u8>) -> Result<(), RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.put_archive(id, tar)).await
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.start(id)).await
    }
    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        timed(&self.metrics, "docker", false, any, self.inner.wait(id)).await
    }
    async fn logs(&self, id: &str, tty: bool, max_bytes: usize) -> Result<ContainerLogs, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.logs(id, tty, max_bytes)).await
    }
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        timed(&self.metrics, "docker", false, any, self.inner.stop(id, grace)).await
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.remove(id)).await
    }
    async fn info(&self) -> Result<EngineInfo, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.info()).await
    }
    async fn exited_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<gostint_core::ExitedContainer>, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.exited_labelled(key, value)).await
    }
    async fn remove_labelled(&self, key: &str, value: &str) -> Result<u64, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.remove_labelled(key, value)).await
    }
    async fn follow_logs(
        &self,
        id: &str,
        tty: bool,
        sink: &mut (dyn FnMut(LogChunk) + Send),
    ) -> Result<(), RuntimeError> {
        // Lasts as long as the job: counted, not timed.
        timed(&self.metrics, "docker", false, any, self.inner.follow_logs(id, tty, sink)).await
    }
    async fn oom_killed(&self, id: &str) -> Result<bool, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.oom_killed(id)).await
    }
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.ensure_network(name)).await
    }
    async fn engine_id(&self) -> Result<String, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.engine_id()).await
    }
    async fn remove_image(&self, image: &str) -> Result<bool, RuntimeError> {
        timed(&self.metrics, "docker", true, any, self.inner.remove_image(image)).await
    }
}

/// [`JobStore`] with metrics.
pub(crate) struct MeteredStore {
    pub(crate) inner: Arc<dyn JobStore>,
    pub(crate) metrics: Metrics,
}

fn store_fault(e: &StoreError) -> bool {
    !matches!(e, StoreError::QueueQuota { .. })
}

const S: &str = "store";

#[async_trait]
impl JobStore for MeteredStore {
    async fn enqueue(&self, job: NewJob) -> Result<(), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.enqueue(job)).await
    }
    async fn claim(&self, node: &NodeId, max: usize, now: Timestamp) -> Result<Vec<JobRecord>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.claim(node, max, now)).await
    }
    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.get(id)).await
    }
    async fn set_container(&self, id: &JobId, image: &str, container_id: &str) -> Result<(), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.set_container(id, image, container_id)).await
    }
    async fn clear_wrap_secret_id(&self, id: &JobId) -> Result<(), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.clear_wrap_secret_id(id)).await
    }
    async fn finish(&self, id: &JobId, node: &NodeId, outcome: Outcome, ended: Timestamp) -> Result<bool, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.finish(id, node, outcome, ended)).await
    }
    async fn request_kill(
        &self,
        id: &JobId,
        who: Visibility<'_>,
        now: Timestamp,
    ) -> Result<Option<KillOutcome>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.request_kill(id, who, now)).await
    }
    async fn mark_stopping(&self, id: &JobId) -> Result<bool, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.mark_stopping(id)).await
    }
    async fn kills_pending(&self, node: &NodeId) -> Result<Vec<JobRecord>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.kills_pending(node)).await
    }
    async fn delete(&self, id: &JobId, who: Visibility<'_>) -> Result<DeleteOutcome, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.delete(id, who)).await
    }
    async fn list(&self, who: Visibility<'_>, skip: u64, limit: u64) -> Result<(Vec<JobRecord>, u64), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.list(who, skip, limit)).await
    }
    async fn count_by_status(&self) -> Result<HashMap<JobStatus, u64>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.count_by_status()).await
    }
    async fn count_active_on(&self, node: &NodeId) -> Result<u64, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.count_active_on(node)).await
    }
    async fn purge_ended_before(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.purge_ended_before(cutoff)).await
    }
    async fn heartbeat(&self, node: &NodeId, now: Timestamp) -> Result<(), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.heartbeat(node, now)).await
    }
    async fn deregister(&self, node: &NodeId) -> Result<(), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.deregister(node)).await
    }
    async fn mark_node_lost(&self, node: &NodeId, now: Timestamp) -> Result<u64, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.mark_node_lost(node, now)).await
    }
    async fn reap_stale_nodes(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        except: &NodeId,
    ) -> Result<Vec<NodeId>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.reap_stale_nodes(cutoff, now, except)).await
    }
    async fn orphan_owners(&self, except: &NodeId) -> Result<Vec<NodeId>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.orphan_owners(except)).await
    }
    async fn listen(&self, sink: EventSink) -> Result<(), StoreError> {
        // Lasts as long as the node: counted, not timed.
        timed(&self.metrics, S, false, store_fault, self.inner.listen(sink)).await
    }
    fn set_tenant_max_running(&self, max: usize) {
        self.inner.set_tenant_max_running(max)
    }
    fn set_tenant_max_queued(&self, max: u64) {
        self.inner.set_tenant_max_queued(max)
    }
    async fn count_by_tenant(&self) -> Result<HashMap<String, TenantLoad>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.count_by_tenant()).await
    }
    async fn count_queued(&self, tenant: &str) -> Result<u64, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.count_queued(tenant)).await
    }
    async fn append_output(
        &self,
        id: &JobId,
        node: &NodeId,
        stdout: &str,
        stderr: &str,
        replace: bool,
    ) -> Result<bool, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.append_output(id, node, stdout, stderr, replace)).await
    }
    async fn active_ids_on(&self, node: &NodeId) -> Result<Vec<JobId>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.active_ids_on(node)).await
    }
    async fn record_image_pull(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.record_image_pull(engine, image, now)).await
    }
    async fn touch_image(&self, engine: &str, image: &str, now: Timestamp) -> Result<(), StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.touch_image(engine, image, now)).await
    }
    async fn images_unused_since(&self, engine: &str, cutoff: Timestamp) -> Result<Vec<String>, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.images_unused_since(engine, cutoff)).await
    }
    async fn forget_image(&self, engine: &str, image: &str, cutoff: Timestamp) -> Result<bool, StoreError> {
        timed(&self.metrics, S, true, store_fault, self.inner.forget_image(engine, image, cutoff)).await
    }
}
