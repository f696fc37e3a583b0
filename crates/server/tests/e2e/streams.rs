//! Live output at scale and at its edges: 100 SSE streams on one real `gostint` process
//! (its resident memory while they are open), and the stream and long-poll of a queued
//! job that is deleted (SQLite: the store's in-process signal; PostgreSQL is in cluster.rs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{rss_bytes, spawn_app, spawn_app_with, Node, Sse};

/// Streams opened at once.
const STREAMS: usize = 100;
/// The resident-set ceiling with them open.
const RSS_LIMIT: u64 = 100 * 1024 * 1024;

/// What one stream saw: events, stdout bytes, whether it ended with `end`.
struct Seen {
    events: usize,
    stdout: usize,
    ended: bool,
}

#[tokio::test]
async fn a_hundred_streams_on_one_node_hold_its_rss_under_100_mib() {
    let Some(helper) = spawn_app_with(&[]).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/gostint.db", dir.path().display());
    // Every stream is one caller's: the per-caller cap (default 10) is lifted for the test.
    let node = Node::start(&helper, &db, &[("GOSTINT_MAX_STREAMS_PER_CALLER", "0")]).await;
    let token = helper.req.token(None, &["default"]).await;
    // Four jobs printing a line every 0.1 s for about 12 s, and behind each a queued one.
    let steady = "i=0; while [ $i -lt 120 ]; do echo \"line $i of a steady job\"; i=$((i+1)); sleep 0.1; done";
    let mut running = Vec::new();
    let mut queued = Vec::new();
    for q in 0..4 {
        let qname = format!("steady{q}");
        running.push(
            node.submit(
                &helper,
                &token,
                json!({"qname": qname, "container_image": helper.svc.image, "run": ["sh", "-c", steady]}),
            )
            .await,
        );
        queued.push(
            node.submit(
                &helper,
                &token,
                json!({"qname": qname, "container_image": helper.svc.image, "run": ["echo", "done"]}),
            )
            .await,
        );
    }
    for id in &running {
        node.wait_status(&token, id, "running").await;
    }
    let pid = node.pid();
    let before = rss_bytes(pid).expect("the node's VmRSS");

    let http = reqwest::Client::builder().pool_max_idle_per_host(STREAMS).build().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        // Four in five follow a running job, one in five a queued one.
        let id = if i % 5 == 4 { queued[i % 4].clone() } else { running[i % 4].clone() };
        let (http, url, token, open) = (http.clone(), node.url.clone(), token.clone(), open.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = Sse::open(&http, &url, &token, &id).await;
            open.fetch_add(1, Ordering::SeqCst);
            let mut seen = Seen { events: 0, stdout: 0, ended: false };
            while let Some(ev) = s.next().await {
                seen.events += 1;
                match ev.name.as_str() {
                    "stdout" => seen.stdout += ev.data.len(),
                    "end" => {
                        seen.ended = true;
                        break;
                    }
                    _ => {}
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
            seen
        }));
    }
    // Sample the node's RSS every 100 ms while the streams run.
    let (mut peak, mut peak_open, mut all_open_samples) = (before, 0, 0);
    let start = Instant::now();
    while !tasks.iter().all(|t| t.is_finished()) {
        assert!(start.elapsed() < Duration::from_secs(120), "the streams did not end within 120 s");
        let now_open = open.load(Ordering::SeqCst);
        if let Some(rss) = rss_bytes(pid) {
            peak = peak.max(rss);
        }
        peak_open = peak_open.max(now_open);
        if now_open == STREAMS {
            all_open_samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("a stream task"));
    }
    let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
    eprintln!(
        "gostint RSS: {:.1} MiB before the streams, peak {:.1} MiB with up to {peak_open} of {STREAMS} open \
         ({all_open_samples} samples with all open)",
        mib(before),
        mib(peak)
    );
    assert_eq!(peak_open, STREAMS, "all streams were open at once");
    assert!(all_open_samples >= 5, "all {STREAMS} were open for at least half a second");
    for (i, s) in seen.iter().enumerate() {
        assert!(s.ended, "stream {i} ended without an end event");
        if i % 5 != 4 {
            // 120 lines of at least 20 bytes each reached every follower of a running job.
            assert!(s.stdout >= 120 * 20, "stream {i} got only {} stdout bytes in {} events", s.stdout, s.events);
        }
    }
    assert!(peak < RSS_LIMIT, "peak RSS {:.1} MiB with {STREAMS} streams open", mib(peak));
    node.signal("-TERM");
    node.wait_exit(Duration::from_secs(30));
    helper.stop().await;
}

#[tokio::test]
async fn a_stream_and_a_long_poll_of_a_queued_job_end_when_it_is_deleted() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let blocker =
        app.submit(&token, json!({"qname": "held", "container_image": app.svc.image, "run": ["sleep", "30"]})).await;
    let queued = app.submit(&token, json!({"qname": "held", "container_image": app.svc.image, "run": ["true"]})).await;
    app.wait_status(&token, &blocker, "running").await;
    let mut stream = Sse::open(&app.http, &app.url, &token, &queued).await;
    assert_eq!(stream.next().await.expect("status event").data, "queued");
    let poll = {
        let (http, url, token, queued) = (app.http.clone(), app.url.clone(), token.clone(), queued.clone());
        tokio::spawn(async move {
            let r = http
                .get(format!("{url}/v1/api/job/{queued}?wait=20s"))
                .header("X-Auth-Token", &token)
                .send()
                .await
                .unwrap();
            (Instant::now(), r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleted = Instant::now();
    let r = app.http.delete(format!("{}/v1/api/job/{queued}", app.url)).header("X-Auth-Token", &token).send().await;
    assert_eq!(r.unwrap().status(), 200);
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream of the deleted job ended within 5 s")
        .expect("an end event");
    assert_eq!((ev.name.as_str(), ev.data.as_str()), ("end", "{}"), "{ev:?}");
    let took = ev.at.duration_since(deleted);
    eprintln!("stream of the deleted queued job ended {took:?} after the delete");
    assert!(took < Duration::from_secs(1), "the stream ended only after {took:?}");
    let (answered, code) =
        tokio::time::timeout(Duration::from_secs(5), poll).await.expect("long-poll answered").unwrap();
    assert_eq!(code, 404, "the long-poll of a deleted job");
    assert!(answered.duration_since(deleted) < Duration::from_secs(1), "long-poll ended late");
    let (code, _) = app.get(Some(&token), &format!("/v1/api/job/{queued}")).await;
    assert_eq!(code, 404);
    let _ = app.http.post(format!("{}/v1/api/job/kill/{blocker}", app.url)).header("X-Auth-Token", &token).send().await;
    app.wait(&token, &blocker).await;
    app.stop().await;
}
