//! The job sandbox (docs/design.md §11) on the real engine: what a job can and cannot do.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, TestApp};

/// A job's output after it ended; fails the test on a non-final status.
async fn run(app: &TestApp, token: &str, job: Value) -> Value {
    let id = app.submit(token, job).await;
    app.wait(token, &id).await
}

/// What a sandboxed job sees of itself: capabilities, no-new-privileges, cgroup limits
/// (cgroup v1 or v2) and network interfaces, with shell builtins only where possible.
const SELF_REPORT: &str = r#"grep -E '^(CapBnd|CapEff|NoNewPrivs):' /proc/self/status
for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do [ -r $f ] && read v < $f && echo pids=$v; done
for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max; do [ -r $f ] && read v < $f && echo memory=$v; done
echo net=$(ls /sys/class/net | tr '\n' ' ')"#;

#[tokio::test]
async fn a_job_has_no_capabilities_no_new_privileges_and_the_default_limits() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let job = run(&app, &token, json!({"container_image": app.svc.image, "run": ["sh", "-c", SELF_REPORT]})).await;
    assert_eq!(job["status"], "success", "{job}");
    let out = job["output"].as_str().unwrap();
    assert!(out.contains("CapBnd:\t0000000000000000\n"), "bounding set empty: {out}");
    assert!(out.contains("CapEff:\t0000000000000000\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1\n"), "{out}");
    assert!(out.contains("pids=1024\n"), "default pids limit in the cgroup: {out}");
    assert!(out.contains(&format!("memory={}\n", 2u64 << 30)), "default 2GiB in the cgroup: {out}");
    assert!(out.contains("eth0") && out.contains("lo"), "the default bridge: {out}");
    app.stop().await;
}

#[tokio::test]
async fn the_container_is_created_with_init_swap_equal_to_memory_two_cpus_and_a_bounded_log() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let id = app.submit(&token, json!({"container_image": app.svc.image, "run": ["sleep", "30"]})).await;
    let mut j = app.wait_status(&token, &id, "running").await;
    let start = Instant::now();
    while j["container_id"] == "" {
        assert!(start.elapsed() < Duration::from_secs(30), "no container: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        j = app.get(Some(&token), &format!("/v1/api/job/{id}")).await.1;
    }
    let cid = j["container_id"].as_str().unwrap();
    let fmt = "{{.HostConfig.Init}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.PidsLimit}} \
               {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.LogConfig.Type}} \
               {{index .HostConfig.LogConfig.Config \"max-size\"}} {{index .HostConfig.LogConfig.Config \"max-file\"}}";
    let inspect = Command::new("docker").args(["inspect", "-f", fmt, cid]).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    let mem = 2u64 << 30;
    assert_eq!(
        text,
        format!("true [ALL] [no-new-privileges:true] 1024 {mem} {mem} 2000000000 json-file {} 2", 5u64 << 20),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    // A kill of a plain `sleep` (PID 1 would ignore SIGTERM; the init forwards it) ends well
    // inside the default 15 s grace.
    let start = Instant::now();
    let r =
        app.http.post(format!("{}/v1/api/job/kill/{id}", app.url)).header("X-Auth-Token", &token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let end = app.wait(&token, &id).await;
    let took = start.elapsed();
    assert_eq!(end["status"], "failed", "{end}");
    assert!(took < Duration::from_secs(5), "kill of sleep took {took:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_setuid_root_binary_in_content_runs_as_uid_2001() {
    let Some(app) = spawn_app().await else { return };
    // A static helper that prints its effective uid (busybox drops setuid privileges by
    // itself, so it would prove nothing). Without no-new-privileges it prints euid=0.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("euid.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <unistd.h>\nint main(void){printf(\"euid=%d\\n\",(int)geteuid());return 0;}\n",
    )
    .unwrap();
    let bin = dir.path().join("euid");
    let cc = Command::new("cc").arg("-static").arg("-Os").arg("-o").arg(&bin).arg(&src).status();
    assert!(matches!(cc, Ok(s) if s.success()), "building the setuid helper needs cc and a static libc: {cc:?}");
    let helper = std::fs::read(&bin).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(helper.len() as u64);
    h.set_mode(0o4755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("./suid/euid").unwrap();
    h.set_cksum();
    b.append(&h, &helper[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &b.into_inner().unwrap()).unwrap();
    let content = format!("targz,{}", base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap()));

    let token = app.req.token(None, &["default"]).await;
    let job = run(
        &app,
        &token,
        json!({"container_image": app.svc.image, "content": content, "run": ["sh", "-c", "ls -ln /suid/euid; /suid/euid"]}),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    let out = job["output"].as_str().unwrap();
    assert!(out.starts_with("-rwsr-xr-x") && out.contains(" 0        0 "), "setuid root in the container: {out}");
    assert!(out.ends_with("euid=2001\n"), "no-new-privileges: {out}");
    app.stop().await;
}

#[tokio::test]
async fn memory_requests_are_honoured_capped_and_an_oom_kill_is_reported() {
    let Some(app) = spawn_app_with(&[("GOSTINT_JOB_MAX_MEMORY", "3GiB")]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let job = run(
        &app,
        &token,
        json!({"container_image": app.svc.image, "resources": {"memory": "64MiB", "pids": 100}, "run": ["sh", "-c", SELF_REPORT]}),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    let out = job["output"].as_str().unwrap();
    assert!(out.contains(&format!("memory={}\n", 64u64 << 20)), "{out}");
    assert!(out.contains("pids=100\n"), "{out}");

    let job =
        run(&app, &token, json!({"container_image": app.svc.image, "resources": {"memory": "4GiB"}, "run": ["true"]}))
            .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["output"], "resources.memory 4GiB is above the limit GOSTINT_JOB_MAX_MEMORY=3GiB");
    assert_eq!(job["container_id"], "", "refused before any container");

    let job = run(
        &app,
        &token,
        json!({
            "container_image": app.svc.image,
            "resources": {"memory": "64MiB"},
            "run": ["sh", "-c", "echo allocating; x=$(head -c 300m /dev/zero | tr '\\0' a); echo survived"],
        }),
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    let out = job["output"].as_str().unwrap();
    assert!(out.starts_with("allocating\n") && !out.contains("survived"), "{out}");
    assert!(out.ends_with("job killed: out of memory (limit 64MiB)"), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn three_thousand_processes_are_refused_while_health_keeps_answering() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let script = r#"i=0; while [ $i -lt 3000 ]; do sleep 20 & i=$((i+1)); done
for f in /sys/fs/cgroup/pids/pids.current /sys/fs/cgroup/pids.current; do [ -r $f ] && read v < $f && echo current=$v; done
echo loop-ended"#;
    // Half a CPU: the point is the pids limit, and the other tests share this machine.
    let id = app
        .submit(
            &token,
            json!({"container_image": app.svc.image, "resources": {"cpus": 0.5}, "run": ["sh", "-c", script]}),
        )
        .await;
    let mut worst = Duration::ZERO;
    let start = Instant::now();
    let job = loop {
        let t = Instant::now();
        let (code, _) = app.get(None, "/v1/api/health").await;
        worst = worst.max(t.elapsed());
        assert_eq!(code, 200);
        let (_, j) = app.get(Some(&token), &format!("/v1/api/job/{id}")).await;
        if ["success", "failed"].contains(&j["status"].as_str().unwrap_or_default()) {
            break j;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "job still {}", j["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(worst < Duration::from_secs(2), "health answered in at worst {worst:?}");
    let all = format!("{}{}", job["output"].as_str().unwrap(), job["stderr"].as_str().unwrap());
    assert!(all.contains("fork"), "forks beyond the pids limit fail: {all}");
    if let Some(n) = all.lines().find_map(|l| l.strip_prefix("current=")) {
        assert!(n.trim().parse::<u64>().unwrap() <= 1024, "{all}");
    }
    app.stop().await;
}

#[tokio::test]
async fn network_none_leaves_only_loopback() {
    let Some(app) = spawn_app_with(&[("GOSTINT_JOB_NETWORK", "none")]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let job = run(&app, &token, json!({"container_image": app.svc.image, "run": ["ls", "/sys/class/net"]})).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["output"], "lo\n");
    app.stop().await;
}

#[tokio::test]
async fn network_tenant_puts_jobs_on_the_tenants_own_bridge() {
    let Some(app) = spawn_app_with(&[("GOSTINT_JOB_NETWORK", "tenant")]).await else { return };
    let network = format!("gostint-{}", app.svc.role_name);
    let _ = Command::new("docker").args(["network", "rm", &network]).output();
    let token = app.req.token(None, &["default"]).await;
    let job = run(
        &app,
        &token,
        json!({"container_image": app.svc.image, "run": ["sh", "-c", "ls /sys/class/net | tr '\\n' ' '"]}),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["output"], "eth0 lo ");
    let inspect = Command::new("docker")
        .args(["network", "inspect", "-f", "{{.Driver}} {{index .Labels \"gostint.network\"}}", &network])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "bridge tenant", "created on demand");
    app.stop().await;
    let _ = Command::new("docker").args(["network", "rm", &network]).output();
}

#[tokio::test]
async fn an_image_outside_the_allow_list_fails_before_any_pull() {
    let Some(app) = spawn_app_with(&[("GOSTINT_IMAGE_ALLOW", "docker.io/gostint-test/busybox:*")]).await else {
        return;
    };
    let token = app.req.token(None, &["default"]).await;
    // `Always` would try a pull (and fail on this registry-less machine) if the check came later.
    let job = run(
        &app,
        &token,
        json!({"container_image": "evil.example/miner:1", "image_pull_policy": "Always", "run": ["true"]}),
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["output"], "image evil.example/miner:1 is not allowed");
    assert_eq!(job["container_id"], "");
    let job = run(&app, &token, json!({"container_image": "gostint-test/nopasswd:latest", "run": ["true"]})).await;
    assert_eq!(job["output"], "image docker.io/gostint-test/nopasswd:latest is not allowed");
    let job = run(&app, &token, json!({"container_image": app.svc.image, "run": ["echo", "allowed"]})).await;
    assert_eq!(job["output"], "allowed\n", "{job}");
    app.stop().await;
}

fn docker(args: &[&str]) -> bool {
    Command::new("docker").args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

#[tokio::test]
async fn image_gc_removes_only_images_gostint_pulled_once_unused() {
    use std::sync::Arc;

    use gostint_core::{ContainerRuntime, JobStore, Timestamp};

    let Some(svc) = gostint_test_support::services() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(gostint_store_sqlite::SqliteJobStore::open_in(dir.path()).await.unwrap());
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(gostint_runner_docker::DockerRuntime::connect().await.unwrap());
    let engine = runtime.engine_id().await.unwrap();
    assert!(!engine.is_empty());
    // Distinct local images stand in for pulled ones (nothing can be pulled here): each a
    // commit of a container of the test image with its own label.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let tag = |what: &str| format!("gostint-test/gc-{what}-{run}:1");
    let (old, recent, busy, preexisting) = (tag("old"), tag("recent"), tag("busy"), tag("preexisting"));
    let base = format!("gostint-gc-base-{run}");
    assert!(docker(&["create", "--name", &base, &svc.image, "true"]));
    for t in [&old, &recent, &busy, &preexisting] {
        assert!(docker(&["commit", "-c", &format!("LABEL gostint.gc.test={t}"), &base, t]), "docker commit {t}");
    }
    docker(&["rm", "-f", &base]);
    let now = Timestamp::now();
    let long_ago = Timestamp::from_millis(now.millis() - 3 * 3600 * 1000);
    store.record_image_pull(&engine, &old, long_ago).await.unwrap();
    store.record_image_pull(&engine, &busy, long_ago).await.unwrap();
    store.record_image_pull(&engine, &recent, now).await.unwrap();
    // Another engine's record of the same name is not this engine's business.
    store.record_image_pull("another-engine", &preexisting, long_ago).await.unwrap();
    let container = format!("gostint-gc-busy-{run}");
    assert!(docker(&["create", "--name", &container, &busy, "true"]), "a container of {busy}");

    let removed = gostint_worker::image_gc::collect_once(&store, &runtime, &engine, Duration::from_secs(3600), now)
        .await
        .unwrap();

    assert_eq!(removed, std::slice::from_ref(&old), "only the old image gostint pulled");
    assert!(!docker(&["image", "inspect", &old]), "{old} removed");
    for kept in [&recent, &busy, &preexisting, &svc.image] {
        assert!(docker(&["image", "inspect", kept]), "{kept} kept");
    }
    // The busy one stays recorded (as used now) for a later collection; the old one is gone.
    let cutoff = Timestamp::from_millis(now.millis() - 3600 * 1000);
    assert!(store.images_unused_since(&engine, cutoff).await.unwrap().is_empty());
    let all = store.images_unused_since(&engine, Timestamp::from_millis(i64::MAX)).await.unwrap();
    assert!(all.contains(&busy) && all.contains(&recent) && !all.contains(&old), "{all:?}");

    docker(&["rm", "-f", &container]);
    for t in [&recent, &busy, &preexisting] {
        docker(&["rmi", t]);
    }
}
