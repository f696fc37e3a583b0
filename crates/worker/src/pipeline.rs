//! One job's run, step by step, with the contract's status and message for each failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use gostint_core::content::{files_tar, parse_metadata, patch_passwd};
use gostint_core::secrets::render_secrets;
use gostint_core::{
    resolve, ContainerRuntime, ContainerSpec, JobDefinition, JobRecord, JobStatus, JobStore, JobVault, NodeId, Outcome,
    PullPolicy, ResolvedJob, RuntimeErrorKind, SandboxPolicy, SecretRef, Timestamp,
};
use gostint_core::{ByteSize, JobNetwork, Limits};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::job_files::{ImageFiles, JobDir, JobFiles};
use crate::live::{LiveOutput, FLUSH_EVERY};

/// What the pipeline needs besides the ports.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// This node.
    pub node: NodeId,
    /// The job AppRole's role_id.
    pub role_id: String,
    /// Transit key for payloads.
    pub role_name: Option<String>,
    /// gostint's `VAULT_ADDR`, injected into jobs.
    pub vault_addr: String,
    /// gostint's `VAULT_CACERT`, bound and injected.
    pub vault_cacert: Option<String>,
    /// Give the container the job token.
    pub inject_token: bool,
    /// Cap per stored stream.
    pub max_output: usize,
    /// Run limit.
    pub job_timeout: Option<Duration>,
    /// Stop grace for timeouts.
    pub kill_grace: Duration,
    /// Unpacked-content cap.
    pub max_content_unpacked: u64,
    /// The tenants (docs/design.md §10): a job logs in with its tenant's role_id and decrypts with its
    /// tenant's transit key. (`role_id`/`role_name` above are the single-tenant fallback's
    /// source and no longer read by the pipeline.)
    pub tenants: gostint_core::TenantRegistry,
    /// The job sandbox: limits, capabilities, network, image allow-list (docs/design.md §11).
    pub sandbox: SandboxPolicy,
    /// The engine's id under which pulls are recorded for image GC; empty = GC off, nothing
    /// recorded.
    pub gc_engine: String,
    /// Stop grace when the node shuts down past its drain limit: the kill grace, but at most
    /// half the drain timeout, so that the process exits after about the drain timeout
    /// (issue 16, item 3).
    pub shutdown_grace: Duration,
}

/// The ports a run uses.
#[derive(Clone)]
pub struct Ports {
    /// Job store.
    pub store: Arc<dyn JobStore>,
    /// Container engine.
    pub runtime: Arc<dyn ContainerRuntime>,
    /// Vault.
    pub vault: Arc<dyn JobVault>,
    /// Prometheus metrics.
    pub metrics: gostint_metrics::Metrics,
    /// How job files reach containers, and what is known of each image.
    pub files: Arc<JobFiles>,
    /// Wakes this node's followers of a job (streams, long-polls) when it changes.
    pub live: Arc<gostint_core::live::LiveHub>,
}

const ALERT_UNWRAP: &str = "Request failed to unwrap the token to retrieve the SecretID - POSSIBLE SECURITY/INTERCEPTION ALERT!!!: THIS REQUEST MAY HAVE BEEN TAMPERED WITH, error: ";

/// What must be cleaned up after a run, whatever happened.
#[derive(Default)]
struct Leftovers {
    container_id: Option<String>,
    job_token: Option<String>,
    /// Bound files not yet removed (they go as soon as the container has started).
    job_dir: Option<JobDir>,
    /// Values masked in the output: the job token and every secret delivered.
    mask: Vec<String>,
    /// An engine call that creates or starts the container timed out or lost the engine: a
    /// container may exist that gostint never heard of (issue 16, item 10).
    engine_timed_out: bool,
}

/// Test hook (cargo feature `test-hooks`, never in a release build): a job whose
/// `working_directory` is this panics in the pipeline right after its container is created.
#[cfg(feature = "test-hooks")]
pub const TEST_PANIC_AFTER_CREATE: &str = "/gostint-test-hook/panic-after-create";

/// The message a job gets when its node shuts down under it (SIGTERM past the drain limit).
pub const SHUTDOWN_KILLED: &str = "gostint node shutting down: job killed";

/// Runs one claimed job to its outcome and writes it; removes the container and revokes the
/// job token on every path. Never panics on job input. When `abort` fires (the node is
/// shutting down), a running container is stopped with the grace period and the job ends
/// `failed` with [`SHUTDOWN_KILLED`]. `recorded` is called once the outcome is stored (the
/// job's queue is free from then on), before the clean-up.
pub async fn run_job(
    ports: &Ports,
    cfg: &PipelineConfig,
    job: JobRecord,
    abort: &CancellationToken,
    recorded: impl FnOnce(),
    store_refusing: &AtomicBool,
) {
    let mut left = Leftovers::default();
    crate::tenant_metrics::claimed(ports, cfg, &job);
    // A panic in the pipeline must still remove the container and revoke the job token
    // (docs/design.md §11): `left` outlives the caught future.
    let run = std::panic::AssertUnwindSafe(execute(ports, cfg, &job, &mut left, abort));
    let outcome = match futures::FutureExt::catch_unwind(run).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!(job_id = %job.id, "job pipeline panicked; cleaning up and recording the job failed");
            failed("gostint internal error while running the job")
        }
    };
    drop(left.job_dir.take());
    // The container has exited: record first, so the requestor and the queue's next job do
    // not wait for the clean-up (docs/design.md §5.3: record → remove container → revoke token).
    record(ports, cfg, &job, outcome, abort, store_refusing).await;
    ports.live.publish(job.id);
    recorded();
    if let Some(id) = &left.container_id {
        if let Err(e) = ports.runtime.remove(id).await {
            warn!(job_id = %job.id, container_id = %id, error = %e, "container removal failed");
        }
    }
    if left.engine_timed_out {
        remove_by_label(ports, &job).await;
    }
    if let Some(token) = &left.job_token {
        if let Err(e) = ports.vault.revoke_self(token).await {
            warn!(job_id = %job.id, error = %e, "job token revocation failed");
        }
    }
}

/// Writes the outcome; retries, and if the outcome itself cannot be stored (it should
/// always fit, output is capped) stores a short `failed` so a job never stays `running`.
/// While the store is unavailable (unreachable, disk full) the real outcome is kept and
/// retried with back-off (issue 16, item 5), and `store_refusing` is set so that the node
/// claims nothing meanwhile; only a node shutting down gives up (its restart or a peer then
/// marks the job `unknown`).
async fn record(
    ports: &Ports,
    cfg: &PipelineConfig,
    job: &JobRecord,
    outcome: Outcome,
    abort: &CancellationToken,
    store_refusing: &AtomicBool,
) {
    let status = outcome.status;
    let mut last_err = None;
    let mut attempt = 0u32;
    let mut refused = 0u32;
    let mut delay = Duration::from_millis(200);
    while attempt < 3 {
        match ports.store.finish(&job.id, &cfg.node, outcome.clone(), Timestamp::now()).await {
            Ok(true) => {
                store_refusing.store(false, Ordering::SeqCst);
                ports.metrics.jobs_finished.with_label_values(&[status.as_str()]).inc();
                crate::tenant_metrics::finished(ports, cfg, job, status);
                let ran_ms = Timestamp::now().millis().saturating_sub(job.started.millis()).max(0);
                ports.metrics.job_run_seconds.observe(ran_ms as f64 / 1000.0);
                info!(job_id = %job.id, status = %status, return_code = outcome.return_code, "job ended");
                return;
            }
            Ok(false) => {
                store_refusing.store(false, Ordering::SeqCst);
                // The state machine refused it. If the job is still ours and active, it was
                // being killed (`stopping` may only end `failed`): record that, never leave it.
                if let Ok(Some(now)) = ports.store.get(&job.id).await {
                    if now.status.is_active() && now.node_uuid == cfg.node.as_str() && status != JobStatus::Failed {
                        let killed = Outcome { status: JobStatus::Failed, ..outcome.clone() };
                        if let Ok(true) = ports.store.finish(&job.id, &cfg.node, killed, Timestamp::now()).await {
                            ports.metrics.jobs_finished.with_label_values(&["failed"]).inc();
                            return;
                        }
                    }
                }
                info!(job_id = %job.id, "job no longer ours to finish");
                return;
            }
            Err(e) if e.is_unavailable() && !(abort.is_cancelled() && refused >= 3) => {
                store_refusing.store(true, Ordering::SeqCst);
                refused += 1;
                warn!(job_id = %job.id, refused, error = %e, retry_in = ?delay, "store unavailable; keeping the job's outcome and retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = abort.cancelled() => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) if e.is_unavailable() => {
                tracing::error!(job_id = %job.id, error = %e, "node shutting down with the store unavailable: job left running");
                return;
            }
            Err(e) => {
                warn!(job_id = %job.id, attempt, error = %e, "storing the job outcome failed");
                last_err = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                attempt += 1;
            }
        }
    }
    let fallback = Outcome::message(
        JobStatus::Failed,
        format!("gostint could not store the job's result: {}", last_err.unwrap_or_default()),
    );
    for attempt in 0..5u32 {
        match ports.store.finish(&job.id, &cfg.node, fallback.clone(), Timestamp::now()).await {
            Ok(_) => return,
            Err(e) => {
                warn!(job_id = %job.id, attempt, error = %e, "storing the fallback outcome failed");
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
    }
    tracing::error!(job_id = %job.id, "job left running: the store refuses every write");
}

fn failed(msg: impl Into<String>) -> Outcome {
    Outcome::message(JobStatus::Failed, msg)
}

fn not_authorised(msg: impl Into<String>) -> Outcome {
    Outcome::message(JobStatus::NotAuthorised, msg)
}

async fn kill_requested(ports: &Ports, job: &JobRecord) -> bool {
    match ports.store.get(&job.id).await {
        Ok(Some(j)) => j.kill_requested,
        // Deleted meanwhile: treat as killed, nobody is waiting for it.
        Ok(None) => true,
        Err(e) => {
            warn!(job_id = %job.id, error = %e, "could not re-read the kill flag");
            false
        }
    }
}

async fn execute(
    ports: &Ports,
    cfg: &PipelineConfig,
    job: &JobRecord,
    left: &mut Leftovers,
    abort: &CancellationToken,
) -> Outcome {
    // 0. Killed while queued but claimed before the kill landed.
    if job.kill_requested {
        return failed("job killed");
    }

    // 1–2. Become the job AppRole.
    let token = match login(ports, cfg, job).await {
        Ok(t) => t,
        Err(o) => return o,
    };
    left.job_token = Some(token.clone());
    left.mask.push(token.clone());

    // 3. Decrypt the payload, if any, with the job's tenant's transit key.
    let payload_def = match &job.payload {
        Some(ct) if !ct.is_empty() => match decrypt_payload(ports, cfg, job, &token, ct, &job.qname).await {
            Ok(d) => Some(d),
            Err(o) => return o,
        },
        _ => None,
    };

    // Layer and validate before any Docker call: off the async runtime, since content
    // inspection may unpack up to GOSTINT_MAX_CONTENT (docs/design.md §11).
    let (outer, max) = (job.definition.clone(), cfg.max_content_unpacked);
    let resolved = match tokio::task::spawn_blocking(move || resolve(&outer, payload_def.as_ref(), max)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(e) => return failed(format!("gostint internal error while inspecting the job: {e}")),
    };

    // The sandbox's own checks, still before any engine call.
    if let Err(e) = cfg.sandbox.check_image(&resolved.image) {
        return failed(e.to_string());
    }
    let limits = match cfg.sandbox.limits(&resolved.resources) {
        Ok(l) => l,
        Err(e) => return failed(e.to_string()),
    };
    let network = cfg.sandbox.network.for_tenant(job_tenant(cfg, job));
    if cfg.sandbox.network == JobNetwork::Tenant {
        if let Err(e) = ports.runtime.ensure_network(&network).await {
            return failed(format!("Run container failed: network {network}: {e}"));
        }
    }

    // The image's id: files read from it once stay true for every job that uses it. Image
    // GC keeps away until the container exists.
    let gc_guard = crate::image_gc::using().await;
    let image_id = match local_image(ports, cfg, &resolved).await {
        Ok(id) => id,
        Err(o) => return o,
    };
    let known = ports.files.image(&image_id);
    let mut spec = container_spec(cfg, job, &resolved, &token, &image_id);
    spec.limits = Some(limits);
    spec.network = network;
    let secrets_path = format!("/{}", resolved.secret_file_type.path());

    // With the image's files known, the secrets are read before the create and bound into
    // the container; otherwise (first job of an image, content to copy, copy mode) the
    // container is created first and its files read, then everything is copied in.
    let bound = match known.clone() {
        Some(img) if ports.files.binding() && resolved.content.is_none() => Some(img),
        _ => None,
    };
    let (container_id, to_copy) = if let Some(img) = bound {
        let files = match job_files(ports, cfg, &token, &resolved, &img).await {
            Ok((secrets, passwd, values)) => {
                left.mask.extend(values);
                (secrets, passwd)
            }
            Err(o) => return o,
        };
        match ports.files.write(&job.id, &[(&secrets_path, &files.0), ("/etc/passwd", &files.1)]) {
            Ok(dir) => {
                spec.files = dir.as_ref().map(|d| d.binds.clone()).unwrap_or_default();
                left.job_dir = dir;
            }
            Err(e) => return failed(format!("Run container failed: writing the job's files: {e}")),
        }
        debug!(job_id = %job.id, bound = true, "creating the container");
        match ports.runtime.create(&spec).await {
            Ok(id) => (id, None),
            Err(e) if matches!(e.kind, RuntimeErrorKind::Other) => {
                // Perhaps the engine cannot see the directory: the same create without binds.
                spec.files.clear();
                left.job_dir = None;
                match ports.runtime.create(&spec).await {
                    Ok(id) => {
                        ports.files.stop_binding(&e.message);
                        (id, Some(files))
                    }
                    Err(e) => return engine_failed(left, "", e),
                }
            }
            Err(e) => return engine_failed(left, "", e),
        }
    } else {
        debug!(job_id = %job.id, bound = false, "creating the container");
        let id = match ports.runtime.create(&spec).await {
            Ok(id) => id,
            Err(e) => return engine_failed(left, "", e),
        };
        left.container_id = Some(id.clone());
        let img = match known {
            Some(img) => img,
            None => match read_image_files(ports, &id, &image_id).await {
                Ok(img) => img,
                Err(o) => return o,
            },
        };
        let files = match job_files(ports, cfg, &token, &resolved, &img).await {
            Ok((secrets, passwd, values)) => {
                left.mask.extend(values);
                (secrets, passwd)
            }
            Err(o) => return o,
        };
        (id, Some(files))
    };
    left.container_id = Some(container_id.clone());
    drop(gc_guard);
    if let Err(e) = ports.store.set_container(&job.id, &resolved.image.to_string(), &container_id).await {
        warn!(job_id = %job.id, error = %e, "could not record the container id");
    }
    #[cfg(feature = "test-hooks")]
    if job.definition.working_directory == TEST_PANIC_AFTER_CREATE {
        panic!("test hook: a panic after the container was created");
    }

    // Copy content, secrets file and passwd entry in.
    if let Err(msg) = copy_in(ports, &container_id, &resolved, to_copy.as_ref()).await {
        return failed(format!("Run container failed: {msg}"));
    }

    // A kill between claim and start must not be lost.
    if kill_requested(ports, job).await {
        return failed("job killed");
    }
    if abort.is_cancelled() {
        return failed(SHUTDOWN_KILLED);
    }

    run_container(ports, cfg, job, &container_id, resolved.tty, left, abort, &limits).await
}

/// The tenant a job runs for, which names its network under `GOSTINT_JOB_NETWORK=tenant`:
/// the AppRole its secret-id was issued for (docs/design.md §10), recorded at submission.
fn job_tenant<'a>(_cfg: &'a PipelineConfig, job: &'a JobRecord) -> &'a str {
    &job.tenant
}

/// The engine's id of the job's image, pulled first when the policy says so (`Always`) or
/// when the engine does not have it (`IfNotPresent`).
async fn local_image(ports: &Ports, cfg: &PipelineConfig, r: &ResolvedJob) -> Result<String, Outcome> {
    let name = r.image.to_string();
    if !cfg.gc_engine.is_empty() && crate::image_gc::touch_due(&name) {
        // Keeps an image gostint pulled from image GC; records nothing for others.
        if let Err(e) = ports.store.touch_image(&cfg.gc_engine, &name, Timestamp::now()).await {
            warn!(image = %name, error = %e, "could not record the image's use");
        }
    }
    if r.pull_policy == PullPolicy::Always {
        ports.runtime.ensure_image(&r.image, r.pull_policy).await.map_err(|e| failed(e.to_string()))?;
    }
    if let Some(id) = ports.runtime.image_id(&name).await.map_err(|e| failed(e.to_string()))? {
        return Ok(id);
    }
    ports.runtime.ensure_image(&r.image, r.pull_policy).await.map_err(|e| failed(e.to_string()))?;
    // Absent before this pull: gostint's own, so image GC may remove it one day. (An
    // `Always` pull of an image that was already there is not recorded: it was present.)
    if !cfg.gc_engine.is_empty() {
        if let Err(e) = ports.store.record_image_pull(&cfg.gc_engine, &name, Timestamp::now()).await {
            warn!(image = %name, error = %e, "could not record the image pull for image GC");
        }
    }
    match ports.runtime.image_id(&name).await.map_err(|e| failed(e.to_string()))? {
        Some(id) => Ok(id),
        None => Err(failed(format!("image {name} is not on the engine after its pull"))),
    }
}

/// `/gostint_image.yml` and `/etc/passwd` of a created (not started) container of image
/// `image_id`, remembered for the image's next jobs.
async fn read_image_files(ports: &Ports, container_id: &str, image_id: &str) -> Result<Arc<ImageFiles>, Outcome> {
    let gostint_image = ports
        .runtime
        .read_file(container_id, "/gostint_image.yml")
        .await
        .map_err(|e| failed(format!("Failed gostint_image.yml extraction tar: {e}")))?;
    let passwd = ports
        .runtime
        .read_file(container_id, "/etc/passwd")
        .await
        .map_err(|e| failed(format!("Run container failed: {e}")))?;
    Ok(ports.files.remember(image_id, ImageFiles { gostint_image, passwd }))
}

/// The secrets file (refs merged with the image's own, read from Vault with the job token)
/// and the patched passwd, as the container will see them.
async fn job_files(
    ports: &Ports,
    cfg: &PipelineConfig,
    token: &str,
    resolved: &ResolvedJob,
    img: &ImageFiles,
) -> Result<(Vec<u8>, Vec<u8>, Vec<String>), Outcome> {
    let image_refs = match &img.gostint_image {
        None => Vec::new(),
        Some(bytes) => match parse_metadata(&String::from_utf8_lossy(bytes)) {
            Ok(m) => m.secret_refs,
            Err(e) => return Err(failed(format!("Failed parsing yaml in gostint_image.yml: {e}"))),
        },
    };
    let refs = resolved.secret_refs(&image_refs).map_err(|e| failed(e.to_string()))?;
    let secrets = read_secrets(ports, cfg, token, &refs, resolved.cont_on_warnings).await?;
    let values = secrets.values().cloned().collect();
    Ok((render_secrets(&secrets, resolved.secret_file_type), patch_passwd(img.passwd.as_deref()), values))
}

async fn login(ports: &Ports, cfg: &PipelineConfig, job: &JobRecord) -> Result<String, Outcome> {
    if job.wrap_secret_id.is_empty() {
        return Err(not_authorised("Vault SecretID Wrapping Token was not provided in request"));
    }
    // Issue 16, item 2: a timeout or an unreachable Vault is not an interception. Retry it;
    // if the token then turns out spent (by the attempt that timed out, most likely), say
    // so, without the alert.
    let mut timed_out: Option<String> = None;
    let mut unwrapped = ports.vault.unwrap(&job.wrap_secret_id).await;
    for delay in [500u64, 1_000, 2_000] {
        match &unwrapped {
            Err(e) if e.kind == gostint_core::VaultErrorKind::Unavailable => {
                warn!(job_id = %job.id, error = %e, "Vault did not answer the unwrap; retrying");
                timed_out = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(delay)).await;
                unwrapped = ports.vault.unwrap(&job.wrap_secret_id).await;
            }
            _ => break,
        }
    }
    if let Some(first) = &timed_out {
        match &unwrapped {
            Err(e) if e.kind == gostint_core::VaultErrorKind::Unavailable => {
                let _ = ports.store.clear_wrap_secret_id(&job.id).await;
                return Err(failed(format!(
                    "Vault did not answer the unwrap of the SecretID wrapping token in time (not an interception; submit the job again): {e}"
                )));
            }
            Err(e) => {
                let _ = ports.store.clear_wrap_secret_id(&job.id).await;
                return Err(failed(format!(
                    "The SecretID wrapping token was spent by an earlier unwrap attempt that Vault did not answer in time ({first}); not an interception: submit the job again. Vault now says: {e}"
                )));
            }
            Ok(_) => {}
        }
    }
    // The wrapping token is single-use: spent (or dead) either way, so forget it.
    if let Err(e) = ports.store.clear_wrap_secret_id(&job.id).await {
        warn!(job_id = %job.id, error = %e, "could not blank the spent wrapping token");
    }
    let alert = |detail: String| {
        warn!(job_id = %job.id, error = %detail, alert = "interception", "wrapped secret id could not be used");
        ports.metrics.interception_alerts.with_label_values(&["unwrap"]).inc();
        not_authorised(format!("{ALERT_UNWRAP}{detail}"))
    };
    // A token that lapsed while the job waited in its queue (its expiry, from Vault at
    // submission, has passed) is not an interception either: say so, without the alert.
    if let Err(e) = &unwrapped {
        if let Some(msg) = lapsed_while_queued(job, Timestamp::now()) {
            warn!(job_id = %job.id, error = %e, "the wrapping token expired while the job was queued");
            return Err(not_authorised(format!("{msg} Vault says: {e}")));
        }
    }
    let data = unwrapped.map_err(|e| alert(e.to_string()))?;
    let Some(secret_id) = data.get("secret_id").and_then(|v| v.as_str()) else {
        return Err(alert("wrapped response has no secret_id".into()));
    };
    // docs/design.md §10: the job's own tenant's role_id, so a secret-id of another AppRole fails.
    let Some(tenant) = tenant_of(cfg, job) else {
        return Err(login_alert(
            ports,
            job,
            format!(
                "Request failed AppRole authentication with vault: tenant {:?} is not configured on this gostint node",
                job.tenant
            ),
        ));
    };
    match ports.vault.approle_login(&tenant.role_id, secret_id).await {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(not_authorised("Request's Vault AppRole authentication returned no Auth token")),
        Err(e) => Err(login_alert(ports, job, format!("Request failed AppRole authentication with vault: {e}"))),
    }
}

/// Clock difference allowed between gostint and Vault when judging a wrapping token expired.
const WRAP_EXPIRY_SKEW_MS: i64 = 2_000;

/// The message for a job whose wrapping token's expiry (from `sys/wrapping/lookup` at
/// submission) is past at `now`, give or take [`WRAP_EXPIRY_SKEW_MS`]; `None` when the expiry
/// is unknown or still ahead, so a refused unwrap then remains a possible interception.
fn lapsed_while_queued(job: &JobRecord, now: Timestamp) -> Option<String> {
    let expires = job.wrap_expires;
    if expires.is_zero() || now.millis() + WRAP_EXPIRY_SKEW_MS < expires.millis() {
        return None;
    }
    let waited = (now.millis() - job.submitted.millis()).max(0) / 1000;
    Some(format!(
        "The SecretID wrapping token expired at {} while the job waited {waited} s in its queue (submitted {}); not an interception: submit the job again, with a wrap TTL longer than the queue's wait.",
        expires.to_rfc3339(),
        job.submitted.to_rfc3339()
    ))
}

/// A failed AppRole login raises the interception alert too (docs/design.md §10): the secret-id was
/// unwrapped but is not one of the job's tenant.
fn login_alert(ports: &Ports, job: &JobRecord, msg: String) -> Outcome {
    warn!(job_id = %job.id, tenant = %job.tenant, error = %msg, alert = "interception", "AppRole login with the job's secret-id failed");
    ports.metrics.interception_alerts.with_label_values(&["login"]).inc();
    not_authorised(msg)
}

/// The job's tenant in the set in force; a row from before tenants (tenant `""`) belongs to
/// the one tenant of a single-tenant set-up.
pub(crate) fn tenant_of(cfg: &PipelineConfig, job: &JobRecord) -> Option<gostint_core::Tenant> {
    let set = cfg.tenants.current();
    set.get(&job.tenant).cloned().or_else(|| match set.all() {
        [only] if job.tenant.is_empty() => Some(only.clone()),
        _ => None,
    })
}

async fn decrypt_payload(
    ports: &Ports,
    cfg: &PipelineConfig,
    job: &JobRecord,
    token: &str,
    ciphertext: &str,
    qname: &str,
) -> Result<JobDefinition, Outcome> {
    // The tenant's name is its transit key (docs/design.md §10); login already found the tenant.
    let key = tenant_of(cfg, job).map(|t| t.name).unwrap_or_default();
    if key.is_empty() {
        return Err(failed("Failed to decrypt payload via vault: GOSTINT_ROLENAME is not set on this gostint node"));
    }
    let key = key.as_str();
    let plain_b64 = ports
        .vault
        .transit_decrypt(token, key, ciphertext)
        .await
        .map_err(|e| failed(format!("Failed to decrypt payload via vault: {e}")))?;
    let compact: String = plain_b64.chars().filter(|c| !c.is_whitespace()).collect();
    let json = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| failed(format!("Failed to decode payload content base64: {e}")))?;
    let def: JobDefinition =
        serde_json::from_slice(&json).map_err(|e| failed(format!("Failed unmarshaling json from payload: {e}")))?;
    let payload_q = def.qname.to_lowercase();
    if payload_q != qname.to_lowercase() {
        return Err(failed(format!("payload qname and job request qname do not match: '{payload_q}' != '{qname}'")));
    }
    Ok(def)
}

fn container_spec(
    cfg: &PipelineConfig,
    job: &JobRecord,
    r: &ResolvedJob,
    token: &str,
    image_id: &str,
) -> ContainerSpec {
    let mut env = r.env_vars.clone();
    env.push(format!("VAULT_ADDR={}", cfg.vault_addr));
    env.push(format!("VAULT_CACERT={}", cfg.vault_cacert.as_deref().unwrap_or("")));
    if cfg.inject_token {
        env.push(format!("VAULT_TOKEN={token}"));
    }
    ContainerSpec {
        // The id, not the name: the files read from the image are the container's.
        image: image_id.to_string(),
        entrypoint: r.entrypoint.clone(),
        cmd: r.run.clone(),
        working_dir: r.working_directory.clone(),
        env,
        tty: r.tty,
        user: "2001:2001".into(),
        labels: vec![("gostint.job_id".into(), job.id.to_string()), ("gostint.node_uuid".into(), cfg.node.to_string())],
        ca_bind: cfg.vault_cacert.clone(),
        files: Vec::new(),
        cap_add: cfg.sandbox.cap_add.clone(),
        limits: Some(cfg.sandbox.defaults),
        network: String::new(),
        log_max_size: cfg.sandbox.log_max_size,
    }
}

/// A secret value as text: strings as they are, numbers and booleans as their JSON text.
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

async fn read_secrets(
    ports: &Ports,
    cfg: &PipelineConfig,
    token: &str,
    refs: &[SecretRef],
    cont_on_warnings: bool,
) -> Result<BTreeMap<String, String>, Outcome> {
    let mut map = BTreeMap::new();
    if cfg.inject_token {
        map.insert("TOKEN".to_string(), token.to_string());
    }
    // Each distinct path once, in first-use order.
    let mut cache: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    for r in refs {
        if !cache.contains_key(r.path.as_str()) {
            let read = ports
                .vault
                .read_secret(token, &r.path)
                .await
                .map_err(|e| failed(format!("Failed to retrieve secret {} from vault err: {e}", r.path)))?;
            let Some(secret) = read else {
                return Err(failed(format!("Failed to retrieve secret {} from vault: response is nil", r.path)));
            };
            if !secret.warnings.is_empty() && !cont_on_warnings {
                return Err(failed(format!(
                    "FailOnWarnings from vault path {} lookups: {}",
                    r.path,
                    secret.warnings.join("; ")
                )));
            }
            cache.insert(r.path.as_str(), secret.data);
        }
        let data = &cache[r.path.as_str()];
        let Some(value) = data.get(&r.key) else {
            return Err(failed(format!("No data returned from vault path {}.{}", r.path, r.key)));
        };
        let Some(text) = scalar(value) else {
            return Err(failed(format!("Secret value at vault path {}.{} is not a scalar", r.path, r.key)));
        };
        map.insert(r.var.clone(), text);
    }
    Ok(map)
}

async fn copy_in(
    ports: &Ports,
    container_id: &str,
    r: &ResolvedJob,
    files: Option<&(Vec<u8>, Vec<u8>)>,
) -> Result<(), String> {
    if let Some(content) = &r.content {
        ports.runtime.put_archive(container_id, content.clone()).await.map_err(|e| e.to_string())?;
    }
    // The secrets file and the patched passwd go in one engine call.
    if let Some((secrets, passwd)) = files {
        let tar = files_tar(&[(r.secret_file_type.path(), secrets, 0o444), ("etc/passwd", passwd, 0o444)], 0, 0);
        ports.runtime.put_archive(container_id, tar).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // each is one part of the job's state, none optional
async fn run_container(
    ports: &Ports,
    cfg: &PipelineConfig,
    job: &JobRecord,
    container_id: &str,
    tty: bool,
    left: &mut Leftovers,
    abort: &CancellationToken,
    limits: &Limits,
) -> Outcome {
    if let Err(e) = ports.runtime.start(container_id).await {
        return engine_failed(left, "Run container failed: ", e);
    }
    // The mounts hold the bound files open: their names on the host can go now.
    drop(left.job_dir.take());
    info!(job_id = %job.id, container_id, "container started");
    enum Ended {
        Exited(Result<i64, gostint_core::RuntimeError>),
        TimedOut,
        Aborted,
    }
    // The output is followed while the container runs (docs/design.md §12): chunks come through a
    // channel from the follower task, are masked and written every FLUSH_EVERY.
    let mut live = LiveOutput::new(&left.mask, cfg.max_output);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = {
        let runtime = ports.runtime.clone();
        let id = container_id.to_string();
        tokio::spawn(async move {
            let mut sink = |chunk| {
                let _ = tx.send(chunk);
            };
            runtime.follow_logs(&id, tty, &mut sink).await
        })
    };
    let limit = cfg.job_timeout.unwrap_or(Duration::MAX);
    let mut next_flush = tokio::time::Instant::now() + FLUSH_EVERY;
    let mut chunks_open = true;
    // The wait lives in this block only: once the loop ends (exit, timeout, shutdown) the
    // pending call is dropped, not left half-polled beside the waits that follow.
    let ended = {
        let waited = tokio::time::timeout(limit, ports.runtime.wait(container_id));
        tokio::pin!(waited);
        loop {
            tokio::select! {
                r = &mut waited => break match r {
                    Ok(r) => Ended::Exited(r),
                    Err(_) => Ended::TimedOut,
                },
                _ = abort.cancelled() => break Ended::Aborted,
                chunk = rx.recv(), if chunks_open => match chunk {
                    Some(c) => live.push(c),
                    None => chunks_open = false,
                },
                _ = tokio::time::sleep_until(next_flush), if live.dirty() => {
                    flush(ports, cfg, job, &mut live).await;
                    next_flush = tokio::time::Instant::now() + FLUSH_EVERY;
                }
            }
        }
    };
    // Issue 16, item 4: a container removed from outside gostint (`docker rm -f`) ends the
    // wait with an error or a kill status; what was followed so far is kept.
    let mut gone = false;
    let code = match ended {
        Ended::Exited(Ok(code)) => code,
        Ended::Exited(Err(ref e)) if e.kind == RuntimeErrorKind::NotFound => {
            gone = true;
            -1
        }
        Ended::Exited(Err(e)) => {
            follower.abort();
            return failed(format!("Run container failed: {e}"));
        }
        Ended::TimedOut | Ended::Aborted => {
            let grace = if matches!(ended, Ended::Aborted) { cfg.shutdown_grace } else { cfg.kill_grace };
            if let Err(e) = ports.runtime.stop(container_id, grace).await {
                warn!(job_id = %job.id, error = %e, "stopping the container failed");
            }
            // Issue 16, item 3: the container has exited now; its real exit status (it may
            // have finished by itself during the grace) beats a made-up -1.
            match tokio::time::timeout(Duration::from_secs(10), ports.runtime.wait(container_id)).await {
                Ok(Ok(code)) => code,
                _ => -1,
            }
        }
    };
    // The container has exited: the follow stream ends once the engine has sent the rest.
    let drained = tokio::time::timeout(FOLLOW_DRAIN, async {
        while let Some(c) = rx.recv().await {
            live.push(c);
        }
    })
    .await;
    // A follow stream that has not ended by then is given up (never awaited without bound: an
    // engine that keeps it open must not hold the job `running`).
    let followed = match drained {
        Ok(()) => match follower.await {
            Ok(Ok(())) => true,
            r => {
                let r = r.map(|r| r.map_err(|e| e.to_string()));
                warn!(job_id = %job.id, result = ?r, "following the output failed; reading it after the exit");
                false
            }
        },
        Err(_) => {
            follower.abort();
            warn!(job_id = %job.id, "the output stream did not end after the exit; reading it after the exit");
            false
        }
    };
    // The kernel's OOM killer ends the job with SIGKILL (137): say so. Only a non-zero exit
    // is looked at (a job whose child was killed but which itself succeeded succeeded).
    let oom = code != 0
        && !gone
        && matches!(ended, Ended::Exited(_))
        && match ports.runtime.oom_killed(container_id).await {
            Ok(oom) => oom,
            Err(e) if e.kind == RuntimeErrorKind::NotFound => {
                gone = true;
                false
            }
            Err(e) => {
                warn!(job_id = %job.id, error = %e, "could not inspect the container for an OOM kill");
                false
            }
        };
    if gone {
        return removed_from_outside(live);
    }
    // The stored outcome is read again after the exit, when the engine's own log is complete:
    // the followed text served the live view only. Docker's follow stream repeats lines when
    // the job's json-file log rotates (Engine 28: the last line of a 50 MiB job came twice),
    // and with a tty it can end before the last line without a newline. The followed text
    // stands only if that read fails after a clean follow.
    match ports.runtime.logs(container_id, tty, cfg.max_output).await {
        Ok(logs) => {
            live = LiveOutput::new(&left.mask, cfg.max_output);
            live.push(gostint_core::LogChunk::Stdout(logs.stdout));
            live.push(gostint_core::LogChunk::Stderr(logs.stderr));
        }
        Err(e) if e.kind == RuntimeErrorKind::NotFound => return removed_from_outside(live),
        Err(e) if !followed => return failed(format!("Run container failed: {e}")),
        Err(e) => {
            warn!(job_id = %job.id, error = %e, "reading the output after the exit failed; keeping the followed output")
        }
    }
    live.finish();
    let timed_out = matches!(ended, Ended::TimedOut);
    // A job that exited 0 during the shutdown grace finished: record it as it is.
    let aborted = matches!(ended, Ended::Aborted) && code != 0;
    if timed_out {
        live.note(&format!("\njob timed out after {}s", limit.as_secs()));
    } else if aborted {
        live.note(&format!("\n{SHUTDOWN_KILLED}"));
    } else if oom {
        live.note(&format!("\njob killed: out of memory (limit {})", ByteSize(limits.memory)));
    }
    let (output, stderr) = live.texts();
    let mut outcome = Outcome {
        status: if code == 0 { JobStatus::Success } else { JobStatus::Failed },
        output,
        stderr,
        return_code: code,
    };
    if timed_out || aborted || oom || kill_requested(ports, job).await {
        // A kill always ends `failed`, even when the container exits 0.
        outcome.status = JobStatus::Failed;
    }
    outcome
}

/// `failed` with the engine's message; a timeout or lost engine marks the job's container
/// (perhaps created all the same) for removal by its label.
fn engine_failed(left: &mut Leftovers, lead: &str, e: gostint_core::RuntimeError) -> Outcome {
    if e.kind == RuntimeErrorKind::Transient {
        left.engine_timed_out = true;
    }
    failed(format!("{lead}{e}"))
}

/// Issue 16, item 10: after an engine timeout in create or start, the job's container (found
/// by its label `gostint.job_id`, since its id never arrived) is removed, so no runaway
/// container stays behind. Retried while the engine is still slow (5 tries, 1 s doubling).
async fn remove_by_label(ports: &Ports, job: &JobRecord) {
    for attempt in 0..5u32 {
        match ports.runtime.remove_labelled("gostint.job_id", &job.id.to_string()).await {
            Ok(n) => {
                if n > 0 {
                    info!(job_id = %job.id, removed = n, "removed the job's container after an engine timeout");
                }
                return;
            }
            Err(e) => {
                warn!(job_id = %job.id, error = %e, attempt, "could not remove the job's container after an engine timeout");
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
    }
}

/// What a job whose container was removed from outside gostint ends with (issue 16, item 4).
pub const REMOVED_FROM_OUTSIDE: &str = "container removed from outside gostint; exit status unknown";

/// `failed`, -1, the output followed until the container went, and
/// [`REMOVED_FROM_OUTSIDE`].
fn removed_from_outside(mut live: LiveOutput) -> Outcome {
    live.finish();
    live.note(&format!("\n{REMOVED_FROM_OUTSIDE}"));
    let (output, stderr) = live.texts();
    Outcome { status: JobStatus::Failed, output, stderr, return_code: -1 }
}

/// How long the rest of the output may take to arrive after the exit.
const FOLLOW_DRAIN: Duration = Duration::from_secs(10);

/// Writes the pending output; a failure is logged and the text stays for the final record.
async fn flush(ports: &Ports, cfg: &PipelineConfig, job: &JobRecord, live: &mut LiveOutput) {
    let p = live.take();
    match ports.store.append_output(&job.id, &cfg.node, &p.stdout, &p.stderr, p.replace).await {
        Ok(_) => ports.live.publish(job.id),
        Err(e) => warn!(job_id = %job.id, error = %e, "could not store live output"),
    }
}

#[cfg(test)]
mod tests {
    use super::scalar;
    use serde_json::json;

    #[test]
    fn secret_values_become_text_or_are_refused() {
        assert_eq!(scalar(&json!("s3cr3t")).as_deref(), Some("s3cr3t"));
        assert_eq!(scalar(&json!(42)).as_deref(), Some("42"));
        assert_eq!(scalar(&json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(scalar(&json!(true)).as_deref(), Some("true"));
        assert_eq!(scalar(&json!({"a": 1})), None);
        assert_eq!(scalar(&json!([1])), None);
        assert_eq!(scalar(&json!(null)), None);
    }
}
