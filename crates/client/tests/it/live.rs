//! Live output (docs/design.md §12) and secret masking (§11) against the real server, OpenBao and
//! Docker: the SSE stream read by curl, the long-poll, and `gostint-client run` live.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{env, text, Env, Who};

/// `curl -sN` on a stream, as a raw SSE client: each line with the time it came.
fn curl_stream(e: &Env, token: &str, id: &str, last_event_id: Option<&str>) -> mpsc::Receiver<(Instant, String)> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sN", "--max-time", "60", "--cacert"])
        .arg(&e.server.cert)
        .arg("-H")
        .arg(format!("X-Auth-Token: {token}"));
    if let Some(l) = last_event_id {
        cmd.arg("-H").arg(format!("Last-Event-ID: {l}"));
    }
    cmd.arg(format!("{}/v1/api/job/{id}/stream", e.server.url)).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("curl runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    });
    rx
}

fn curl_json(e: &Env, token: &str, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "70", "--cacert"])
        .arg(&e.server.cert)
        .arg("-H")
        .arg(format!("X-Auth-Token: {token}"))
        .arg(format!("{}{path}", e.server.url))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not JSON: {}", text(&out.stdout)))
}

fn submit(e: &Env, who: &Who, qname: &str, script: &str, extra: &[&str]) -> String {
    let run = serde_json::to_string(&["sh", "-c", script]).unwrap();
    let mut args = vec!["-qname", qname, "-image", &e.svc.image, "-run", &run, "-wait=false"];
    args.extend_from_slice(extra);
    let out = e.command(who, &args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    reply["_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_stream_delivers_output_while_the_job_runs_and_resumes_after_last_event_id() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let root = e.svc.root_token.clone();
    let id = submit(&e, &who, "live-sse", "echo tick1; echo to-err >&2; sleep 4; echo tick2", &[]);
    let lines = curl_stream(&e, &root, &id, None);

    // Collect events until `end`; note when tick1 came and look at the view then.
    let (mut tick1_at, mut end_at, mut tick1_id) = (None, None, None);
    let mut last_id = None;
    let mut event = String::new();
    let mut saw_stderr = false;
    let mut statuses = Vec::new();
    let mut view_while_running = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while end_at.is_none() {
        let (at, line) = lines.recv_timeout(deadline - Instant::now()).expect("the stream goes on until the end");
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
        } else if let Some(v) = line.strip_prefix("id: ") {
            last_id = Some(v.to_string());
        } else if let Some(data) = line.strip_prefix("data: ") {
            match event.as_str() {
                "stdout" if data == "tick1" => {
                    tick1_at = Some(at);
                    tick1_id = last_id.clone();
                    view_while_running = Some(curl_json(&e, &root, &format!("/v1/api/job/{id}")));
                }
                "stdout" => assert_ne!(data, "tick1", "tick1 only once"),
                "stderr" if data == "to-err" => saw_stderr = true,
                "status" => statuses.push(data.to_string()),
                "end" => {
                    end_at = Some(at);
                    let view: Value = serde_json::from_str(data).unwrap();
                    assert_eq!(view["status"], "success");
                    assert_eq!(view["output"], "tick1\ntick2\n");
                }
                _ => {}
            }
        }
    }
    let (tick1_at, end_at) = (tick1_at.expect("tick1 came"), end_at.unwrap());
    assert!(end_at - tick1_at >= Duration::from_secs(3), "tick1 came {:?} before the end", end_at - tick1_at);
    assert!(saw_stderr, "stderr arrives as its own event");
    assert!(statuses.contains(&"running".to_string()) && statuses.last().unwrap() == "success", "{statuses:?}");
    let view = view_while_running.unwrap();
    assert_eq!(view["status"], "running", "{view}");
    assert!(view["output"].as_str().unwrap().contains("tick1"), "the view shows the output so far: {view}");

    // Resuming after tick1's event: tick2, not tick1.
    let again = curl_stream(&e, &root, &id, tick1_id.as_deref());
    let mut got = String::new();
    while let Ok((_, line)) = again.recv_timeout(Duration::from_secs(30)) {
        got.push_str(&line);
        got.push('\n');
        if line.starts_with("event: end") {
            break;
        }
    }
    assert!(got.contains("data: tick2"), "{got}");
    assert!(!got.contains("data: tick1"), "{got}");
}

#[tokio::test]
async fn the_long_poll_answers_within_a_second_of_the_end() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let root = e.svc.root_token.clone();
    let id = submit(&e, &who, "live-wait", "sleep 3", &[]);
    let started = Instant::now();
    let view = tokio::task::spawn_blocking({
        let path = format!("/v1/api/job/{id}?wait=30s");
        move || curl_json(&e, &root, &path)
    })
    .await
    .unwrap();
    let answered = time::OffsetDateTime::now_utc();
    assert_eq!(view["status"], "success", "{view}");
    let ended =
        time::OffsetDateTime::parse(view["ended"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    let late = answered - ended;
    assert!(late < time::Duration::seconds(1), "answered {late} after the end");
    assert!(started.elapsed() >= Duration::from_secs(2), "it did wait");
}

#[tokio::test]
async fn run_shows_output_live_and_keeps_stdout_on_stdout_whatever_the_status() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let run = serde_json::to_string(&["sh", "-c", "echo tick1; sleep 4; echo tick2"]).unwrap();
    let mut child = e
        .command(&who, &["-image", &e.svc.image, "-run", &run])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut all = Vec::new();
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    let _ = tx.send((Instant::now(), String::from_utf8_lossy(&all).into_owned()));
                }
            }
        }
    });
    let mut tick1_at = None;
    let mut last = String::new();
    while let Ok((at, so_far)) = rx.recv_timeout(Duration::from_secs(60)) {
        if tick1_at.is_none() && so_far.contains("tick1") {
            tick1_at = Some(at);
        }
        last = so_far;
    }
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let ended = Instant::now();
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert_eq!(last, "tick1\ntick2\n");
    let ahead = ended - tick1_at.expect("tick1 on stdout");
    assert!(ahead >= Duration::from_secs(3), "tick1 reached stdout only {ahead:?} before the end");

    let run = serde_json::to_string(&["sh", "-c", "echo 100% out; echo to-err >&2; exit 4"]).unwrap();
    let out = e.client(&who, &["-image", &e.svc.image, "-run", &run]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "100% out\n");
    let err = text(&out.stderr);
    assert!(err.contains("to-err\n") && err.ends_with("[failed]\n"), "{err}");
}

#[tokio::test]
async fn a_job_printing_its_secret_and_token_stores_neither() {
    let Some(e) = env() else { return };
    let who = Who::Token(e.requestor_token().await);
    let root = e.svc.root_token.clone();
    // The secret on stdout, split by a pause mid-value; the token on stderr.
    let id = submit(
        &e,
        &who,
        "live-mask",
        "v=$(sed -n 's/^v2: //p' /secrets.yml); printf '%s' \"${v%???}\"; sleep 1; echo \"${v#??????} $v\"; echo \"tok=$VAULT_TOKEN\" >&2",
        &["-secret-refs", r#"["v2@kv/data/my-secret.my-value"]"#],
    );
    let view =
        tokio::task::spawn_blocking(move || curl_json(&e, &root, &format!("/v1/api/job/{id}?wait=60s"))).await.unwrap();
    let out = view["output"].as_str().unwrap();
    let err = view["stderr"].as_str().unwrap();
    assert_eq!(view["status"], "success", "{view}");
    assert!(!out.contains("s3cr3t-v2") && !err.contains("s3cr3t-v2"), "{view}");
    assert!(out.contains("[MASKED]"), "{out:?}");
    assert!(err.starts_with("tok=[MASKED]"), "the job token is masked: {err:?}");
}
