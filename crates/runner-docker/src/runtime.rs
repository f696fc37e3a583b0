//! [`DockerRuntime`]: one Engine API call (or two) per [`ContainerRuntime`] method.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io::Read;
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HostConfig, HostConfigLogConfig, Mount, MountType,
    NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::{BollardRequest, Docker};
use bytes::Bytes;
use futures::StreamExt;
use gostint_core::{
    ContainerLogs, ContainerRuntime, ContainerSpec, EngineInfo, ImageRef, PullPolicy, RuntimeError, RuntimeErrorKind,
};
use tracing::{debug, warn};

use crate::connect::{unreachable_at, DockerConnection};
use crate::error::{container_err, is_permanent_pull_failure, is_transport, message_of, status_of, to_runtime};
use crate::tail::Tail;

/// Limit of every Engine API call but `wait` and the pull stream (see [`DockerRuntime::with_call_timeout`]).
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Pull attempts when the failure looks transient; with the backoff below a hopeless pull
/// gives up after about 1.5 s of waiting.
const PULL_ATTEMPTS: u32 = 3;
/// First pause between pull attempts, doubled each time.
const PULL_BACKOFF: Duration = Duration::from_millis(500);
/// A pull whose progress stream is silent this long is abandoned (and retried).
const PULL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Added to the archive upload's limit per entry in the archive (see [`upload_limit`]).
const UPLOAD_PER_ENTRY: Duration = Duration::from_millis(10);
/// Added to the archive upload's limit per MiB unpacked.
const UPLOAD_PER_MIB: Duration = Duration::from_millis(250);
/// `read_file` is for small metadata files; a bigger archive is refused rather than buffered.
const MAX_ARCHIVE_BYTES: usize = 16 << 20;
/// Symbolic links `read_file` follows before giving up.
const MAX_SYMLINK_HOPS: usize = 8;

/// The limit of one archive upload: the call limit, plus 10 ms per entry and 250 ms per MiB
/// unpacked (a gzip archive is counted through its decompressed stream). 20,000 small files
/// get 60 + 200 + 5 s instead of a flat 60 s that the engine's unpacking alone can exceed.
/// An archive that cannot be read gets the plain call limit (the engine will refuse it).
fn upload_limit(call: Duration, archive: &[u8]) -> Duration {
    let (entries, bytes) = archive_size(archive).unwrap_or((0, archive.len() as u64));
    let entries = u32::try_from(entries).unwrap_or(u32::MAX);
    let mib = u32::try_from(bytes >> 20).unwrap_or(u32::MAX);
    call.saturating_add(UPLOAD_PER_ENTRY.saturating_mul(entries)).saturating_add(UPLOAD_PER_MIB.saturating_mul(mib))
}

/// Entries and unpacked bytes of a plain or gzip tar, read as a stream (nothing is buffered).
fn archive_size(archive: &[u8]) -> Option<(u64, u64)> {
    let reader: Box<dyn Read + '_> = if archive.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(archive))
    } else {
        Box::new(archive)
    };
    let mut tar = tar::Archive::new(reader);
    let (mut entries, mut bytes) = (0u64, 0u64);
    for entry in tar.entries().ok()? {
        let entry = entry.ok()?;
        entries += 1;
        bytes = bytes.saturating_add(entry.size());
    }
    Some((entries, bytes))
}

/// The Docker Engine as a [`ContainerRuntime`]. Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    host: String,
    call_timeout: Duration,
}

impl fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("host", &self.host)
            .field("api_version", &self.api_version())
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl DockerRuntime {
    /// Connects as the Docker CLI would ([`DockerConnection::from_env`]) and negotiates the
    /// API version unless `DOCKER_API_VERSION` pins it.
    ///
    /// # Errors
    /// An unusable `DOCKER_*` setting (`Other`), or an engine that cannot be reached for the
    /// version negotiation (`Transient`).
    pub async fn connect() -> Result<Self, RuntimeError> {
        Self::connect_with(&DockerConnection::from_env()).await
    }

    /// Connects to the engine `conn` describes; see [`DockerRuntime::connect`].
    ///
    /// # Errors
    /// As [`DockerRuntime::connect`].
    pub async fn connect_with(conn: &DockerConnection) -> Result<Self, RuntimeError> {
        let call_timeout = DEFAULT_CALL_TIMEOUT;
        let (docker, negotiate) = conn.client(call_timeout.as_secs())?;
        let host = conn.host().to_string();
        let docker = if negotiate {
            // The engine refuses a client speaking a newer API than its own (bollard's
            // default is newer than a 20.10 engine's 1.41): settle on the lower, once.
            match tokio::time::timeout(call_timeout, docker.negotiate_version()).await {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => return Err(unreachable_at(&host, &e)),
                Err(_) => return Err(unreachable_at(&host, &BollardError::RequestTimeoutError)),
            }
        } else {
            docker
        };
        // bollard builds every URL by joining an absolute path onto `/v1.xx`, which drops
        // the version, so the engine would answer in its own newest dialect whatever was
        // negotiated or pinned. Put the version back.
        let prefix = format!("/v{}", version_text(&docker));
        let docker = docker.with_request_modifier(move |req| versioned(req, &prefix));
        debug!(host = %host, api_version = %version_text(&docker), "connected to the Docker engine");
        Ok(Self { docker, host, call_timeout })
    }

    /// Sets the limit of each Engine API call (default 60 s); `wait` and the image pull
    /// stream are not limited by it. `stop` gets its grace period on top.
    pub fn with_call_timeout(mut self, limit: Duration) -> Self {
        self.call_timeout = limit.max(Duration::from_secs(1));
        self.docker.set_timeout(self.call_timeout);
        self
    }

    /// Checks that the engine answers (`GET /_ping`), so a server can refuse to start with a
    /// clear message.
    ///
    /// # Errors
    /// The engine cannot be reached or answers an error.
    pub async fn ping(&self) -> Result<(), RuntimeError> {
        self.timed("ping", self.call_timeout, async {
            self.docker.ping().await.map(|_| ()).map_err(|e| to_runtime(&e, RuntimeErrorKind::Other))
        })
        .await
    }

    /// The engine address in use (`DOCKER_HOST` or the default socket).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The Engine API version spoken, e.g. `1.41`.
    pub fn api_version(&self) -> String {
        version_text(&self.docker)
    }

    /// Runs one call under `limit`; running out is a `Transient` failure.
    async fn timed<T>(
        &self,
        what: &str,
        limit: Duration,
        call: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| Err(timed_out(what, limit)))
    }

    /// One pull, its progress stream read to the end.
    async fn pull_once(&self, name: &str, tag: &str) -> Result<(), PullFailure> {
        let options = CreateImageOptionsBuilder::default().from_image(name).tag(tag).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        loop {
            match tokio::time::timeout(PULL_IDLE_TIMEOUT, progress.next()).await {
                Ok(None) => return Ok(()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(PullFailure::of(&e)),
                Err(_) => {
                    return Err(PullFailure { retry: true, error: timed_out("image pull progress", PULL_IDLE_TIMEOUT) })
                }
            }
        }
    }

    /// The archive of `path` (`GET /containers/{id}/archive`), `None` on 404.
    async fn download(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        let options = DownloadFromContainerOptionsBuilder::default().path(path).build();
        self.timed("archive download", self.call_timeout, async {
            let mut body = self.docker.download_from_container(id, Some(options));
            let mut tar = Vec::new();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(bytes) => {
                        if tar.len() + bytes.len() > MAX_ARCHIVE_BYTES {
                            return Err(RuntimeError::new(
                                RuntimeErrorKind::Other,
                                format!("{path} in container {id} is larger than {MAX_ARCHIVE_BYTES} bytes"),
                            ));
                        }
                        tar.extend_from_slice(&bytes);
                    }
                    Err(e) if status_of(&e) == Some(404) => return Ok(None),
                    Err(e) => return Err(container_err(e)),
                }
            }
            Ok(Some(tar))
        })
        .await
    }

    /// `Ok` if the container exists, `NotFound` if not.
    async fn container_exists(&self, id: &str) -> Result<(), RuntimeError> {
        self.timed("container inspect", self.call_timeout, async {
            self.docker.inspect_container(id, None).await.map(|_| ()).map_err(container_err)
        })
        .await
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn ensure_image(&self, image: &ImageRef, policy: PullPolicy) -> Result<(), RuntimeError> {
        let reference = image.to_string();
        if policy == PullPolicy::IfNotPresent && self.image_id(&reference).await?.is_some() {
            return Ok(());
        }
        let name = image.name();
        // A digest pins more than a tag; never send an empty tag (that pulls every tag).
        let tag = image.digest().or_else(|| image.tag()).unwrap_or("latest");
        let mut pause = PULL_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.pull_once(&name, tag).await {
                Ok(()) => {
                    debug!(image = %reference, attempt, "image pulled");
                    return Ok(());
                }
                Err(failure) if failure.retry && attempt < PULL_ATTEMPTS => {
                    warn!(image = %reference, attempt, error = %failure.error, "image pull failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let non_blank = |s: &String| (!s.is_empty()).then(|| s.clone());
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: non_empty(&spec.cmd),
            entrypoint: non_empty(&spec.entrypoint),
            working_dir: non_blank(&spec.working_dir),
            tty: Some(spec.tty),
            user: non_blank(&spec.user),
            env: non_empty(&spec.env),
            labels: Some(spec.labels.iter().cloned().collect::<HashMap<_, _>>()),
            host_config: Some(HostConfig {
                binds: spec.ca_bind.as_ref().map(|path| vec![format!("{path}:{path}:ro")]),
                // `Mounts`, unlike `Binds`, refuses a source the engine's host does not have
                // instead of creating an empty directory in its place.
                mounts: (!spec.files.is_empty()).then(|| {
                    spec.files
                        .iter()
                        .map(|f| Mount {
                            target: Some(f.container.clone()),
                            source: Some(f.host.clone()),
                            typ: Some(MountType::BIND),
                            read_only: Some(true),
                            ..Default::default()
                        })
                        .collect()
                }),
                // The sandbox (docs/design.md §11): not optional. Every capability dropped but the
                // operator's add-back list; setuid binaries grant nothing; Docker's init
                // forwards signals and reaps zombies.
                cap_drop: Some(vec!["ALL".into()]),
                cap_add: non_empty(&spec.cap_add),
                security_opt: Some(vec!["no-new-privileges:true".into()]),
                init: Some(true),
                pids_limit: spec.limits.map(|l| l.pids),
                memory: spec.limits.map(|l| i64::try_from(l.memory).unwrap_or(i64::MAX)),
                // Swap equal to memory: no swap on top of the limit.
                memory_swap: spec.limits.map(|l| i64::try_from(l.memory).unwrap_or(i64::MAX)),
                nano_cpus: spec.limits.map(|l| l.nano_cpus()),
                network_mode: non_blank(&spec.network),
                log_config: (spec.log_max_size > 0).then(|| HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([
                        ("max-size".to_string(), spec.log_max_size.to_string()),
                        ("max-file".to_string(), "2".to_string()),
                    ])),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .timed("container create", self.call_timeout, async {
                // 404 here is the image the container would be made of.
                self.docker
                    .create_container(None, body)
                    .await
                    .map_err(|e| to_runtime(&e, RuntimeErrorKind::ImageMissing))
            })
            .await?;
        debug!(container_id = %created.id, image = %spec.image, "container created");
        Ok(created.id)
    }

    /// The engine resolves `docker.io/library/x` and `x` alike.
    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        self.timed("image inspect", self.call_timeout, async {
            match self.docker.inspect_image(image).await {
                Ok(i) => Ok(i.id),
                Err(e) if status_of(&e) == Some(404) => Ok(None),
                Err(e) => Err(to_runtime(&e, RuntimeErrorKind::Other)),
            }
        })
        .await
    }

    async fn read_file(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, RuntimeError> {
        let mut path = path.to_string();
        for _ in 0..MAX_SYMLINK_HOPS {
            let Some(tar) = self.download(id, &path).await? else {
                // 404 means either no such path or no such container: tell them apart.
                self.container_exists(id).await?;
                return Ok(None);
            };
            match first_entry(&tar).map_err(|e| {
                RuntimeError::new(RuntimeErrorKind::Other, format!("archive of {path} in container {id}: {e}"))
            })? {
                Entry::File(bytes) => return Ok(Some(bytes)),
                Entry::Link(target) => path = resolve_link(&path, &target),
                Entry::Other => {
                    return Err(RuntimeError::new(
                        RuntimeErrorKind::Other,
                        format!("{path} in container {id} is not a regular file"),
                    ))
                }
            }
        }
        Err(RuntimeError::new(
            RuntimeErrorKind::Other,
            format!("too many symbolic links resolving {path} in container {id}"),
        ))
    }

    async fn put_archive(&self, id: &str, tar: Vec<u8>) -> Result<(), RuntimeError> {
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        // The engine unpacks the archive inside the call (about 1.4 ms per file seen here,
        // 28 s for 20,000 files), so the limit grows with what is unpacked.
        let call = self.call_timeout;
        let (tar, limit) = tokio::task::spawn_blocking(move || {
            let limit = upload_limit(call, &tar);
            (tar, limit)
        })
        .await
        .map_err(|e| RuntimeError::new(RuntimeErrorKind::Other, format!("sizing the archive failed: {e}")))?;
        let mut docker = self.docker.clone();
        docker.set_timeout(limit);
        self.timed("archive upload", limit, async {
            docker
                .upload_to_container(id, Some(options), bollard::body_full(Bytes::from(tar)))
                .await
                .map_err(container_err)
        })
        .await
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.timed("container start", self.call_timeout, async {
            self.docker.start_container(id, None).await.map_err(container_err)
        })
        .await
    }

    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        // No limit: a job may run for hours. The engine sends the response headers at once
        // (API ≥ 1.30), so bollard's own request timeout does not cut the wait short.
        let mut waited = self.docker.wait_container(id, None);
        match waited.next().await {
            Some(Ok(answer)) => match answer.error.and_then(|e| e.message).filter(|m| !m.is_empty()) {
                Some(message) => Err(RuntimeError::new(RuntimeErrorKind::Other, message)),
                None => Ok(answer.status_code),
            },
            // bollard turns every non-zero exit into this error; without a message it is
            // just the exit code.
            Some(Err(BollardError::DockerContainerWaitError { error, code })) if error.is_empty() => Ok(code),
            Some(Err(e)) => Err(container_err(e)),
            None => Err(RuntimeError::new(
                RuntimeErrorKind::Other,
                format!("the Docker engine ended the wait for container {id} without an exit status"),
            )),
        }
    }

    async fn logs(&self, id: &str, tty: bool, max_bytes: usize) -> Result<ContainerLogs, RuntimeError> {
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).build();
        self.timed("container logs", self.call_timeout, async {
            let mut stdout = Tail::new(max_bytes);
            let mut stderr = Tail::new(max_bytes);
            let mut frames = self.docker.logs(id, Some(options));
            while let Some(frame) = frames.next().await {
                match frame.map_err(container_err)? {
                    bollard::container::LogOutput::StdErr { message } if !tty => stderr.push(&message),
                    bollard::container::LogOutput::StdIn { .. } => {}
                    // A tty container has one stream; bollard reports it as `Console`.
                    other => stdout.push(other.as_ref()),
                }
            }
            Ok(ContainerLogs { stdout: stdout.finish(), stderr: stderr.finish() })
        })
        .await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let stop = StopContainerOptionsBuilder::default().t(i32::try_from(secs).unwrap_or(i32::MAX)).build();
        let stopped = self
            .timed("container stop", self.call_timeout + Duration::from_secs(secs), async {
                // 304 (already stopped) is a success for bollard.
                self.docker.stop_container(id, Some(stop)).await.map_err(container_err)
            })
            .await;
        match stopped {
            Ok(()) => {}
            // Gone: nothing left to kill.
            Err(RuntimeError { kind: RuntimeErrorKind::NotFound, .. }) => return Ok(()),
            Err(e) => debug!(container_id = %id, error = %e, "container stop failed; killing"),
        }
        // Stop is asked to kill after the grace period itself; this catches a stop that
        // failed or timed out. 304/409 ("is not running") and 404 mean it is already down.
        let kill = KillContainerOptionsBuilder::default().signal("KILL").build();
        self.timed("container kill", self.call_timeout, async {
            match self.docker.kill_container(id, Some(kill)).await {
                Ok(()) => Ok(()),
                Err(e) if matches!(status_of(&e), Some(304 | 404 | 409)) => Ok(()),
                Err(e) => Err(container_err(e)),
            }
        })
        .await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        self.timed("container remove", self.call_timeout, async {
            match self.docker.remove_container(id, Some(options)).await {
                // 409 with force=1 is "removal already in progress": it is going away.
                Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(()),
                other => other.map_err(container_err),
            }
        })
        .await
    }

    async fn info(&self) -> Result<EngineInfo, RuntimeError> {
        let info = self
            .timed("info", self.call_timeout, async {
                self.docker.info().await.map_err(|e| to_runtime(&e, RuntimeErrorKind::Other))
            })
            .await?;
        Ok(EngineInfo {
            containers: info.containers.unwrap_or_default(),
            containers_running: info.containers_running.unwrap_or_default(),
            containers_paused: info.containers_paused.unwrap_or_default(),
            containers_stopped: info.containers_stopped.unwrap_or_default(),
            images: info.images.unwrap_or_default(),
            mem_total: info.mem_total.unwrap_or_default(),
            architecture: info.architecture.unwrap_or_default(),
            operating_system: info.operating_system.unwrap_or_default(),
        })
    }

    async fn remove_labelled(&self, key: &str, value: &str) -> Result<u64, RuntimeError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{key}={value}")])]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let listed = self
            .timed("container list", self.call_timeout, async {
                self.docker.list_containers(Some(options)).await.map_err(|e| to_runtime(&e, RuntimeErrorKind::Other))
            })
            .await?;
        let mut removed = 0;
        let mut first_error = None;
        for id in listed.into_iter().filter_map(|c| c.id) {
            match self.remove(&id).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }

    async fn exited_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<gostint_core::ExitedContainer>, RuntimeError> {
        let filters = HashMap::from([
            ("label".to_string(), vec![format!("{key}={value}")]),
            ("status".to_string(), vec!["exited".to_string()]),
        ]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let listed = self
            .timed("container list", self.call_timeout, async {
                self.docker.list_containers(Some(options)).await.map_err(|e| to_runtime(&e, RuntimeErrorKind::Other))
            })
            .await?;
        let mut exited = Vec::new();
        for c in listed {
            let Some(id) = c.id else { continue };
            let job_id = c.labels.and_then(|mut l| l.remove("gostint.job_id")).unwrap_or_default();
            // The list's status is text ("Exited (3) 2 seconds ago"): inspect for the number.
            let inspected = self
                .timed("container inspect", self.call_timeout, async {
                    self.docker.inspect_container(&id, None).await.map_err(container_err)
                })
                .await;
            let state = match inspected {
                Ok(i) => i.state.unwrap_or_default(),
                Err(e) if e.kind == RuntimeErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if state.running == Some(true) {
                continue;
            }
            let Some(exit_code) = state.exit_code else { continue };
            exited.push(gostint_core::ExitedContainer {
                id,
                job_id,
                exit_code,
                oom_killed: state.oom_killed.unwrap_or(false),
            });
        }
        Ok(exited)
    }

    async fn follow_logs(
        &self,
        id: &str,
        tty: bool,
        sink: &mut (dyn FnMut(gostint_core::LogChunk) + Send),
    ) -> Result<(), RuntimeError> {
        // No call timeout: the stream lasts as long as the container runs (the pipeline
        // bounds the run). It starts from the container's first byte, so nothing printed
        // before the call is lost.
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).follow(true).build();
        let mut frames = self.docker.logs(id, Some(options));
        while let Some(frame) = frames.next().await {
            match frame.map_err(container_err)? {
                bollard::container::LogOutput::StdErr { message } if !tty => {
                    sink(gostint_core::LogChunk::Stderr(message.to_vec()))
                }
                bollard::container::LogOutput::StdIn { .. } => {}
                other => sink(gostint_core::LogChunk::Stdout(other.as_ref().to_vec())),
            }
        }
        Ok(())
    }

    async fn oom_killed(&self, id: &str) -> Result<bool, RuntimeError> {
        self.timed("container inspect", self.call_timeout, async {
            let inspected = self.docker.inspect_container(id, None).await.map_err(container_err)?;
            let state = inspected.state.unwrap_or_default();
            // `docker rm -f` marks the container for removal, then kills it: its wait answers
            // 137 while the removal is still going on (issue 16 item 4, seen 5 runs in 5).
            if matches!(state.status, Some(ContainerStateStatusEnum::REMOVING | ContainerStateStatusEnum::DEAD)) {
                return Err(RuntimeError::new(RuntimeErrorKind::NotFound, format!("container {id} is being removed")));
            }
            Ok(state.oom_killed.unwrap_or(false))
        })
        .await
    }

    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.timed("network create", self.call_timeout, async {
            match self.docker.inspect_network(name, None).await {
                Ok(_) => return Ok(()),
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => return Err(to_runtime(&e, RuntimeErrorKind::Other)),
            }
            let request = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".into()),
                labels: Some(HashMap::from([("gostint.network".to_string(), "tenant".to_string())])),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(_) => {
                    debug!(network = %name, "network created");
                    Ok(())
                }
                // Another job (or node) created it meanwhile.
                Err(e) if status_of(&e) == Some(409) => Ok(()),
                Err(e) => Err(to_runtime(&e, RuntimeErrorKind::Other)),
            }
        })
        .await
    }

    async fn engine_id(&self) -> Result<String, RuntimeError> {
        let info = self
            .timed("info", self.call_timeout, async {
                self.docker.info().await.map_err(|e| to_runtime(&e, RuntimeErrorKind::Other))
            })
            .await?;
        // The daemon's id; an engine without one is known by its address.
        Ok(info.id.filter(|id| !id.is_empty()).unwrap_or_else(|| self.host.clone()))
    }

    async fn remove_image(&self, image: &str) -> Result<bool, RuntimeError> {
        let options = RemoveImageOptionsBuilder::default().force(false).build();
        self.timed("image remove", self.call_timeout, async {
            // The engine would merely untag an image with other tags that a container uses:
            // keep any image a container (running or not) was made from.
            let filters = HashMap::from([("ancestor".to_string(), vec![image.to_string()])]);
            let users = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
            match self.docker.list_containers(Some(users)).await {
                Ok(list) if !list.is_empty() => return Ok(false),
                Ok(_) => {}
                Err(e) if status_of(&e) == Some(404) => return Ok(false),
                Err(e) => return Err(to_runtime(&e, RuntimeErrorKind::Other)),
            }
            match self.docker.remove_image(image, Some(options), None).await {
                Ok(_) => Ok(true),
                // 409: a container (running or not) still uses it; 404: already gone.
                Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(false),
                Err(e) => Err(to_runtime(&e, RuntimeErrorKind::Other)),
            }
        })
        .await
    }
}

/// A failed pull attempt and whether another is worth it.
struct PullFailure {
    retry: bool,
    error: RuntimeError,
}

impl PullFailure {
    /// Engine unreachable → retry, `Transient` if it stays so. The engine's refusals are
    /// `ImageMissing`; a 4xx or a final registry answer is not retried (docs/defects.md item 12).
    fn of(e: &BollardError) -> Self {
        if is_transport(e) {
            return Self { retry: true, error: to_runtime(e, RuntimeErrorKind::Transient) };
        }
        let message = message_of(e);
        let retry = match (status_of(e), e) {
            (Some(status), _) => status >= 500 && !is_permanent_pull_failure(&message),
            (None, BollardError::DockerStreamError { .. }) => !is_permanent_pull_failure(&message),
            (None, _) => false,
        };
        Self { retry, error: RuntimeError::new(RuntimeErrorKind::ImageMissing, message) }
    }
}

/// What the first entry of an archive is.
enum Entry {
    File(Vec<u8>),
    Link(String),
    Other,
}

/// The engine archives a file as one entry (a link as the link itself, not its target).
fn first_entry(tar_bytes: &[u8]) -> Result<Entry, std::io::Error> {
    let mut archive = tar::Archive::new(tar_bytes);
    let Some(entry) = archive.entries()?.next() else {
        return Ok(Entry::Other);
    };
    let mut entry = entry?;
    let kind = entry.header().entry_type();
    if kind.is_file() {
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        Ok(Entry::File(data))
    } else if kind.is_symlink() {
        Ok(entry.link_name()?.map_or(Entry::Other, |t| Entry::Link(t.to_string_lossy().into_owned())))
    } else {
        Ok(Entry::Other)
    }
}

/// Where a symbolic link at `path` points (the engine cleans `..` itself).
fn resolve_link(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_string();
    }
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    format!("{dir}/{target}")
}

/// `req` with its path under `prefix` (`/v1.41`), unless it already has a version.
fn versioned(mut req: BollardRequest, prefix: &str) -> BollardRequest {
    let Some(path_and_query) = req.uri().path_and_query() else {
        return req;
    };
    if path_and_query.path().starts_with("/v1.") {
        return req;
    }
    let mut parts = req.uri().clone().into_parts();
    let Ok(with_version) = format!("{prefix}{path_and_query}").parse() else {
        return req;
    };
    parts.path_and_query = Some(with_version);
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

fn timed_out(what: &str, limit: Duration) -> RuntimeError {
    RuntimeError::new(
        RuntimeErrorKind::Transient,
        format!("the Docker engine did not answer {what} within {}s", limit.as_secs()),
    )
}

fn version_text(docker: &Docker) -> String {
    let v = docker.client_version();
    format!("{}.{}", v.major_version, v.minor_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    #[test]
    fn the_upload_limit_grows_with_the_entries_and_bytes_unpacked_also_through_gzip() {
        use std::io::Write as _;
        let files = tar_of(|b| {
            for i in 0..2000 {
                let mut h = tar::Header::new_gnu();
                h.set_size(4);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, format!("c/f{i}"), &b"data"[..]).unwrap();
            }
        });
        let call = Duration::from_secs(60);
        assert_eq!(upload_limit(call, &files), Duration::from_secs(80));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&files).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < files.len() / 10, "the gzip is small: {}", gz.len());
        assert_eq!(upload_limit(call, &gz), Duration::from_secs(80), "counted through the decompressed stream");

        let big = tar_of(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(8 << 20);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "big", std::io::repeat(0).take(8 << 20)).unwrap();
        });
        assert_eq!(upload_limit(call, &big), Duration::from_millis(60_000 + 10 + 8 * 250));
        assert_eq!(upload_limit(call, b"not a tar at all"), call, "unreadable: the plain limit");
    }

    #[test]
    fn the_first_entry_of_an_archive_is_a_file_a_link_or_neither() {
        let file = tar_of(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "passwd", &b"abc"[..]).unwrap();
        });
        assert!(matches!(first_entry(&file).unwrap(), Entry::File(d) if d == b"abc"));

        let link = tar_of(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "passwd", "../usr/passwd").unwrap();
        });
        assert!(matches!(first_entry(&link).unwrap(), Entry::Link(t) if t == "../usr/passwd"));

        let dir = tar_of(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, "etc/", &b""[..]).unwrap();
        });
        assert!(matches!(first_entry(&dir).unwrap(), Entry::Other));
        assert!(matches!(first_entry(&tar_of(|_| {})).unwrap(), Entry::Other));
    }

    #[test]
    fn requests_get_the_api_version_once() {
        let req = |uri: &str| {
            let mut r = BollardRequest::new(bollard::body_full(Bytes::new()));
            *r.uri_mut() = uri.parse().unwrap();
            r
        };
        let v = versioned(req("unix://2f7661722f72756e/containers/json?all=true"), "/v1.41");
        assert_eq!(v.uri().to_string(), "unix://2f7661722f72756e/v1.41/containers/json?all=true");
        let v = versioned(req("http://localhost:2375/v1.40/info"), "/v1.41");
        assert_eq!(v.uri().to_string(), "http://localhost:2375/v1.40/info");
    }

    #[test]
    fn links_resolve_against_their_directory() {
        assert_eq!(resolve_link("/etc/passwd", "/usr/lib/passwd"), "/usr/lib/passwd");
        assert_eq!(resolve_link("/etc/passwd", "../usr/passwd"), "/etc/../usr/passwd");
        assert_eq!(resolve_link("/passwd", "x"), "/x");
    }

    #[test]
    fn pull_failures_are_retried_only_when_transient() {
        let engine = |status_code, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        };
        let f =
            PullFailure::of(&engine(500, "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup x: no such host"));
        assert!(!f.retry);
        assert_eq!(f.error.kind, RuntimeErrorKind::ImageMissing);
        assert!(!PullFailure::of(&engine(404, "pull access denied")).retry);
        assert!(!PullFailure::of(&engine(400, "invalid tag format")).retry);
        assert!(PullFailure::of(&engine(500, "received unexpected HTTP status: 502 Bad Gateway")).retry);
        let f = PullFailure::of(&BollardError::DockerStreamError { error: "unexpected EOF".into() });
        assert!(f.retry);
        assert_eq!(f.error.message, "unexpected EOF");
        let f = PullFailure::of(&BollardError::RequestTimeoutError);
        assert!(f.retry);
        assert_eq!(f.error.kind, RuntimeErrorKind::Transient);
    }
}
