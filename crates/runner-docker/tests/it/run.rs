//! Running containers: streams, exit codes, environment, output limits.

use std::time::Instant;

use gostint_core::ContainerRuntime;
use gostint_runner_docker::TRUNCATION_MARKER;

use crate::{harness, s};

#[tokio::test]
async fn a_non_tty_run_keeps_stdout_and_stderr_apart_and_the_exit_code() {
    let Some(h) = harness().await else { return };
    let spec = h.spec(&["sh", "-c", "echo out; echo err >&2; exit 3"]);

    let (code, logs) = h.run(&spec).await;

    assert_eq!(code, 3);
    assert_eq!(s(&logs.stdout), "out\n");
    assert_eq!(s(&logs.stderr), "err\n");
}

#[tokio::test]
async fn a_tty_run_gives_one_combined_stream() {
    let Some(h) = harness().await else { return };
    let mut spec = h.spec(&["sh", "-c", "echo out; echo err >&2"]);
    spec.tty = true;

    let (code, logs) = h.run(&spec).await;

    assert_eq!(code, 0);
    assert_eq!(s(&logs.stdout), "out\r\nerr\r\n");
    assert!(logs.stderr.is_empty());
}

#[tokio::test]
async fn a_successful_run_exits_zero() {
    let Some(h) = harness().await else { return };

    let (code, logs) = h.run(&h.spec(&["true"])).await;

    assert_eq!(code, 0);
    assert!(logs.stdout.is_empty() && logs.stderr.is_empty());
}

#[tokio::test]
async fn env_working_dir_and_user_reach_the_process() {
    let Some(h) = harness().await else { return };
    let mut spec = h.spec(&["echo $FOO $BAR; pwd; id -u; id -g"]);
    spec.entrypoint = vec!["/bin/sh".into(), "-c".into()];
    spec.env = vec!["FOO=foo value".into(), "BAR=bar".into()];
    spec.working_dir = "/tmp".into();
    spec.user = "2001:2001".into();

    let (code, logs) = h.run(&spec).await;

    assert_eq!(code, 0, "stderr: {}", s(&logs.stderr));
    assert_eq!(s(&logs.stdout), "foo value bar\n/tmp\n2001\n2001\n");
}

#[tokio::test]
async fn logs_over_the_limit_keep_the_tail_after_a_marker() {
    let Some(h) = harness().await else { return };
    // 4000 lines of 50 bytes: 200 KB on stdout, a little on stderr.
    let script = "i=0; while [ $i -lt 4000 ]; do printf 'line %04d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n' $i; \
                  i=$((i+1)); done; echo small >&2";
    let spec = h.spec(&["sh", "-c", script]);
    let id = h.rt.create(&spec).await.unwrap();
    h.rt.start(&id).await.unwrap();
    assert_eq!(h.rt.wait(&id).await.unwrap(), 0);

    let logs = h.rt.logs(&id, false, 10_000).await.unwrap();

    let out = s(&logs.stdout);
    assert!(out.starts_with(TRUNCATION_MARKER), "{}", &out[..80]);
    assert_eq!(out.len(), TRUNCATION_MARKER.len() + 10_000);
    assert!(out.ends_with("line 3999 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"));
    assert_eq!(s(&logs.stderr), "small\n");
    h.rt.remove(&id).await.unwrap();
}

#[tokio::test]
async fn a_ca_file_is_bound_read_only_at_its_own_path() {
    let Some(h) = harness().await else { return };
    let path = std::env::temp_dir().join(format!("gostint-ca-{}.pem", h.run));
    std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let p = path.to_str().unwrap().to_string();
    let mut spec = h.spec(&["sh", "-c", &format!("cat {p}; echo x >> {p} && echo writable")]);
    spec.ca_bind = Some(p.clone());

    let (code, logs) = h.run(&spec).await;
    std::fs::remove_file(&path).unwrap();

    assert_ne!(code, 0);
    assert_eq!(s(&logs.stdout), "-----BEGIN CERTIFICATE-----\n");
    assert!(s(&logs.stderr).contains("Read-only"), "{}", s(&logs.stderr));
}

#[tokio::test]
async fn one_true_cycle_is_quick() {
    let Some(h) = harness().await else { return };
    let spec = h.spec(&["true"]);
    h.run(&spec).await; // warm-up

    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (code, _) = h.run(&spec).await;
        assert_eq!(code, 0);
        times.push(t.elapsed());
    }

    times.sort();
    eprintln!("create+start+wait+logs+remove of `true`: min {:?}, median {:?}, max {:?}", times[0], times[2], times[4]);
    assert!(times[2] < crate::QUICK);
}
