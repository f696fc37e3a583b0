//! Port decorators that count the Vault and Docker calls of this node in
//! `gostint_port_call_seconds{port}` and their failures in `gostint_port_errors_total{port}`.
//! A token Vault refuses is the caller's fault, not Vault's: it is timed, not counted as an
//! error. Docker's `wait` lasts as long as the job: it is counted, not timed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gostint_core::{
    ContainerLogs, ContainerRuntime, ContainerSpec, EngineInfo, ImageRef, JobVault, LogChunk, PullPolicy, RuntimeError,
    SecretData, TokenInfo, VaultError, VaultErrorKind, WrapInfo,
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
