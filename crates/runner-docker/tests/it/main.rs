//! Runner tests against the real Docker engine (skipped, or failing under
//! `GOSTINT_TEST_REQUIRE=docker`, when it is unreachable). They use only the local fixture
//! images `scripts/services up` builds; nothing is pulled.

mod files;
mod images;
mod lifecycle;
mod run;

use std::time::Duration;

use gostint_core::{ContainerLogs, ContainerRuntime, ContainerSpec, ImageRef, PullPolicy};
use gostint_runner_docker::DockerRuntime;

/// Static busybox `FROM scratch`, with `/etc/passwd`.
pub const IMAGE: &str = "gostint-test/busybox:latest";
/// The same without `/etc/passwd`.
pub const NOPASSWD_IMAGE: &str = "gostint-test/nopasswd:latest";
/// Every container a test makes carries this label (value: the test's run id).
pub const LABEL: &str = "gostint.test.run";

/// A connected runtime plus a run id; dropping it removes every container of the run.
pub struct Harness {
    pub rt: DockerRuntime,
    pub run: String,
}

/// `None` (after printing `skipped: no docker`) when Docker or the fixture image is missing,
/// unless `GOSTINT_TEST_REQUIRE` names docker.
pub async fn harness() -> Option<Harness> {
    let required = std::env::var("GOSTINT_TEST_REQUIRE").is_ok_and(|v| v.contains("docker"));
    let skip = |why: String| {
        if required {
            panic!("docker required by GOSTINT_TEST_REQUIRE but {why}");
        }
        println!("skipped: no docker ({why})");
        None
    };
    let rt = match DockerRuntime::connect().await {
        Ok(rt) => rt,
        Err(e) => return skip(format!("connect: {e}")),
    };
    if let Err(e) = rt.ping().await {
        return skip(format!("ping: {e}"));
    }
    if let Err(e) = rt.ensure_image(&ImageRef::parse(IMAGE).unwrap(), PullPolicy::IfNotPresent).await {
        return skip(format!("fixture image {IMAGE} missing, run scripts/services up: {e}"));
    }
    Some(Harness { rt, run: uuid::Uuid::new_v4().to_string() })
}

impl Harness {
    /// A spec for the fixture image running `cmd`, labelled with this run.
    pub fn spec(&self, cmd: &[&str]) -> ContainerSpec {
        ContainerSpec {
            image: IMAGE.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            labels: vec![(LABEL.to_string(), self.run.clone())],
            ..Default::default()
        }
    }

    /// create → start → wait → logs (1 MiB per stream) → remove.
    pub async fn run(&self, spec: &ContainerSpec) -> (i64, ContainerLogs) {
        let id = self.rt.create(spec).await.unwrap();
        self.rt.start(&id).await.unwrap();
        let code = self.rt.wait(&id).await.unwrap();
        let logs = self.rt.logs(&id, spec.tty, 1 << 20).await.unwrap();
        self.rt.remove(&id).await.unwrap();
        (code, logs)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down: clean up from a
        // fresh thread with its own runtime and client.
        let run = self.run.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(docker) = DockerRuntime::connect().await {
                    if let Err(e) = docker.remove_labelled(LABEL, &run).await {
                        eprintln!("cleanup of run {run} failed: {e}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// `text` as a string, for readable assertions.
pub fn s(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Generous upper bound for things that should be quick.
pub const QUICK: Duration = Duration::from_secs(10);
