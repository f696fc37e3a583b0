//! Several `gostint` nodes on one PostgreSQL, each running real Docker jobs: the queue
//! invariants across nodes, a node lost to SIGKILL, a kill posted to another node, and a
//! job's live output streamed from a node that does not run it.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{ms, spawn_app_with, Node, Sse, TestApp};

/// A fresh database on the test PostgreSQL; its URL.
fn fresh_database(base: &str, name: &str) -> String {
    let out =
        Command::new("psql").arg(base).args(["-qc", &format!("CREATE DATABASE {name}")]).output().expect("psql runs");
    assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
    let (prefix, _) = base.rsplit_once('/').expect("database URL with a path");
    format!("{prefix}/{name}")
}

async fn cluster(nodes: usize, extra: &[(&str, &str)]) -> Option<(TestApp, Vec<Node>, String)> {
    let helper = spawn_app_with(&[]).await?;
    let Some(base) = helper.svc.database_url.clone() else {
        return gostint_test_support::missing("postgres", "GOSTINT_TEST_DATABASE_URL is not set (scripts/services up)");
    };
    let db = fresh_database(&base, &format!("gostint_cluster_{}_{}", std::process::id(), rand_suffix()));
    let mut started = Vec::new();
    for _ in 0..nodes {
        started.push(Node::start(&helper, &db, extra).await);
    }
    Some((helper, started, db))
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

async fn wait_final(node: &Node, token: &str, id: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let j = node.job(token, id).await;
        if ["success", "failed", "notauthorised", "unknown"].contains(&j["status"].as_str().unwrap_or_default()) {
            return j;
        }
        assert!(start.elapsed() < limit, "job {id} still {} after {limit:?}", j["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_nodes_run_200_jobs_over_20_queues_one_at_a_time_per_queue() {
    let Some((helper, nodes, _db)) = cluster(3, &[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let mut submitted: Vec<(String, String)> = Vec::new();
    for i in 0..200 {
        let q = format!("q{:02}", i % 20);
        let node = &nodes[i % nodes.len()];
        let id = node
            .submit(&helper, &token, json!({"qname": q, "container_image": helper.svc.image, "run": ["true"]}))
            .await;
        submitted.push((q, id));
    }
    let mut by_queue: HashMap<String, Vec<Value>> = HashMap::new();
    let mut owners: HashMap<String, usize> = HashMap::new();
    for (q, id) in &submitted {
        let j = wait_final(&nodes[0], &token, id, Duration::from_secs(300)).await;
        assert_eq!(j["status"], "success", "{j}");
        *owners.entry(j["node_uuid"].as_str().unwrap().to_string()).or_default() += 1;
        by_queue.entry(q.clone()).or_default().push(j);
    }
    for (q, jobs) in &by_queue {
        // In submit order, each job starts after the previous one ended: FIFO, never two at once.
        for pair in jobs.windows(2) {
            assert!(
                ms(&pair[0]["ended"]) <= ms(&pair[1]["started"]),
                "queue {q} overlapped or reordered: {} then {}",
                pair[0],
                pair[1]
            );
        }
    }
    assert!(owners.len() >= 2, "work spread over the nodes: {owners:?}");
    eprintln!("jobs per node: {owners:?}");
    for n in nodes {
        n.signal("-TERM");
        n.wait_exit(Duration::from_secs(30));
    }
    helper.stop().await;
}

#[tokio::test]
async fn a_node_lost_to_sigkill_has_its_jobs_turn_unknown_and_its_queue_moves_on() {
    let Some((helper, nodes, _db)) = cluster(2, &[("GOSTINT_STALE_AFTER", "3s")]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let id = nodes[0]
        .submit(&helper, &token, json!({"qname": "lost", "container_image": helper.svc.image, "run": ["sleep", "60"]}))
        .await;
    let next = nodes[0]
        .submit(
            &helper,
            &token,
            json!({"qname": "lost", "container_image": helper.svc.image, "run": ["echo", "moved on"]}),
        )
        .await;
    nodes[0].wait_status(&token, &id, "running").await;
    let owner = nodes[0].job(&token, &id).await["node_uuid"].as_str().unwrap().to_string();
    let mut nodes = nodes;
    let mut victim = None;
    for (i, n) in nodes.iter().enumerate() {
        if n.health("node_uuid").await.as_deref() == Some(owner.as_str()) {
            victim = Some(i);
        }
    }
    let victim = nodes.remove(victim.expect("the owner is one of the nodes"));
    victim.signal("-KILL");
    victim.wait_exit(Duration::from_secs(10));
    let survivor = &nodes[0];
    let j = wait_final(survivor, &token, &id, Duration::from_secs(30)).await;
    assert_eq!(j["status"], "unknown", "{j}");
    assert_eq!(j["output"], format!("gostint node {owner} stopped reporting; outcome unknown"));
    let n = wait_final(survivor, &token, &next, Duration::from_secs(30)).await;
    assert_eq!(n["output"], "moved on\n", "{n}");
    // The lost node's container is gone (both nodes share this engine).
    let left =
        Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=gostint.job_id={id}")]).output().unwrap();
    assert!(left.stdout.is_empty(), "the lost node's container was removed");
    for n in nodes {
        n.signal("-TERM");
        n.wait_exit(Duration::from_secs(30));
    }
    helper.stop().await;
}

#[tokio::test]
async fn a_kill_posted_to_one_node_stops_a_job_running_on_another() {
    let Some((helper, nodes, _db)) = cluster(2, &[("GOSTINT_KILL_GRACE", "1s")]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let id = nodes[0]
        .submit(
            &helper,
            &token,
            json!({"container_image": helper.svc.image, "run": ["sh", "-c", "echo begun; sleep 60"]}),
        )
        .await;
    nodes[0].wait_status(&token, &id, "running").await;
    // The job has begun once its first line shows in the live view (the container id alone
    // is set at create, before the start).
    let start = Instant::now();
    while nodes[0].job(&token, &id).await["output"] != "begun\n" {
        assert!(start.elapsed() < Duration::from_secs(30), "the job never printed its first line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let owner = nodes[0].job(&token, &id).await["node_uuid"].as_str().unwrap().to_string();
    let mut other = None;
    for n in &nodes {
        if n.health("node_uuid").await.as_deref() != Some(owner.as_str()) {
            other = Some(n);
        }
    }
    let other = other.expect("a node that does not own the job");
    let posted = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/api/job/kill/{id}", other.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The owner hears of it through LISTEN/NOTIFY within a second and starts stopping.
    let mut stopping_after = None;
    while posted.elapsed() < Duration::from_secs(10) {
        let st = nodes[0].job(&token, &id).await["status"].as_str().unwrap().to_string();
        if st == "stopping" || st == "failed" {
            stopping_after = Some(posted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = stopping_after.expect("the owner acted on the kill");
    assert!(after < Duration::from_secs(1), "kill reached the owner in {after:?}");
    let j = wait_final(&nodes[0], &token, &id, Duration::from_secs(20)).await;
    assert_eq!((j["status"].as_str(), j["output"].as_str()), (Some("failed"), Some("begun\n")), "{j}");
    for n in nodes {
        n.signal("-TERM");
        n.wait_exit(Duration::from_secs(30));
    }
    helper.stop().await;
}

#[tokio::test]
async fn a_job_running_on_one_node_streams_live_from_another() {
    // Node A starts alone, so the job can only be claimed by A; node B joins once it runs.
    let Some((helper, mut nodes, db)) = cluster(1, &[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let a = nodes.remove(0);
    let id = a
        .submit(
            &helper,
            &token,
            json!({"container_image": helper.svc.image, "run": ["sh", "-c", "sleep 6; echo tick1; sleep 5; echo tick2"]}),
        )
        .await;
    a.wait_status(&token, &id, "running").await;
    let b = Node::start(&helper, &db, &[]).await;
    let (a_uuid, b_uuid) = (a.health("node_uuid").await.unwrap(), b.health("node_uuid").await.unwrap());
    assert_ne!(a_uuid, b_uuid);
    let view = b.job(&token, &id).await;
    assert_eq!(view["node_uuid"], a_uuid.as_str(), "node A runs the job: {view}");
    assert_eq!(view["output"], "", "the stream opens before tick1 is written: {view}");

    let http = reqwest::Client::new();
    let mut stream = Sse::open(&http, &b.url, &token, &id).await;
    let first = stream.next().await.expect("a first event");
    assert_eq!((first.name.as_str(), first.data.as_str()), ("status", "running"), "{first:?}");
    let mut tick1 = None;
    let mut end = None;
    let mut stdout = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline.into(), stream.next()).await {
        match ev.name.as_str() {
            "stdout" => {
                stdout.push_str(&ev.data);
                if tick1.is_none() && stdout.contains("tick1") {
                    tick1 = Some(ev.at);
                }
            }
            "end" => {
                end = Some(ev);
                break;
            }
            _ => {}
        }
    }
    let tick1 = tick1.expect("tick1 came on node B's stream");
    let end = end.expect("the stream ended with an end event");
    let lead = end.at.duration_since(tick1);
    eprintln!("tick1 on node B's stream {lead:?} before the end");
    assert!(lead >= Duration::from_secs(3), "tick1 came only {lead:?} before the end: not live");
    assert_eq!(stdout, "tick1\ntick2\n", "the stream's stdout");
    let last: Value = serde_json::from_str(&end.data).expect("the end event is the final view");
    assert_eq!(last["status"], "success", "{last}");
    assert_eq!(last["output"], "tick1\ntick2\n", "{last}");
    assert_eq!(last["node_uuid"], a_uuid.as_str(), "{last}");
    assert!(stream.next().await.is_none(), "the stream closes after end");
    for n in [a, b] {
        n.signal("-TERM");
        n.wait_exit(Duration::from_secs(30));
    }
    helper.stop().await;
}

#[tokio::test]
async fn a_stream_and_a_long_poll_of_a_queued_job_on_another_node_end_when_it_is_deleted() {
    let Some((helper, nodes, _db)) = cluster(2, &[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    // A long job holds the queue, so the second stays queued.
    let blocker = nodes[0]
        .submit(&helper, &token, json!({"qname": "held", "container_image": helper.svc.image, "run": ["sleep", "30"]}))
        .await;
    let queued = nodes[0]
        .submit(&helper, &token, json!({"qname": "held", "container_image": helper.svc.image, "run": ["true"]}))
        .await;
    nodes[0].wait_status(&token, &blocker, "running").await;
    assert_eq!(nodes[1].job(&token, &queued).await["status"], "queued");
    let http = reqwest::Client::new();
    let mut stream = Sse::open(&http, &nodes[1].url, &token, &queued).await;
    assert_eq!(stream.next().await.expect("status event").data, "queued");
    let poll = {
        let (http, url, token, queued) = (http.clone(), nodes[1].url.clone(), token.clone(), queued.clone());
        tokio::spawn(async move {
            let r = http
                .get(format!("{url}/v1/api/job/{queued}?wait=30s"))
                .header("X-Auth-Token", &token)
                .send()
                .await
                .unwrap();
            (Instant::now(), r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Deleted through node A: node B hears it through NOTIFY.
    let deleted = Instant::now();
    let r = http
        .delete(format!("{}/v1/api/job/{queued}", nodes[0].url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream of the deleted job ended within 5 s")
        .expect("an end event");
    assert_eq!((ev.name.as_str(), ev.data.as_str()), ("end", "{}"), "{ev:?}");
    let took = ev.at.duration_since(deleted);
    eprintln!("stream of the deleted queued job ended {took:?} after the delete");
    assert!(took < Duration::from_secs(2), "the stream ended only after {took:?}");
    let (answered, code) =
        tokio::time::timeout(Duration::from_secs(5), poll).await.expect("long-poll answered").unwrap();
    assert_eq!(code, 404, "the long-poll of a deleted job");
    assert!(answered.duration_since(deleted) < Duration::from_secs(2), "long-poll ended late");
    let _ =
        http.post(format!("{}/v1/api/job/kill/{blocker}", nodes[0].url)).header("X-Auth-Token", &token).send().await;
    for n in nodes {
        n.signal("-TERM");
        n.wait_exit(Duration::from_secs(30));
    }
    helper.stop().await;
}

// ---------------------------------------------------------------- tenants across nodes

/// Two nodes on one fresh PostgreSQL with the two test tenants (`GOSTINT_APPROLES`).
async fn tenant_cluster(extra: &[(&str, &str)]) -> Option<(TestApp, Vec<Node>, String)> {
    let svc = gostint_test_support::services()?;
    let Some(approles) = svc.approles.clone() else {
        return gostint_test_support::missing("vault", "GOSTINT_TEST_APPROLES unset: run scripts/services up");
    };
    let mut all: Vec<(&str, &str)> = vec![("GOSTINT_APPROLES", approles.as_str())];
    all.extend_from_slice(extra);
    cluster(2, &all).await
}

/// POSTs `job` to `node` with a fresh wrapped secret-id of `tenant`'s AppRole (the secure
/// flow of tenants.rs); returns the job id.
async fn submit_as(node: &Node, app: &TestApp, token: &str, tenant: &str, mut job: Value) -> String {
    job["wrap_secret_id"] = json!(app.req.wrapped_secret_id_for(tenant).await);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/api/job", node.url))
        .header("X-Auth-Token", token)
        .body(job.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(code, 200, "submit as {tenant} answered {body}");
    body["_id"].as_str().unwrap().to_string()
}

/// Whether two finished jobs ran at the same time (their [started, ended) intervals meet).
fn overlap(a: &Value, b: &Value) -> bool {
    ms(&a["started"]) < ms(&b["ended"]) && ms(&b["started"]) < ms(&a["ended"])
}

/// No two of `jobs` ran at the same time.
fn assert_serial(what: &str, jobs: &[Value]) {
    for (i, a) in jobs.iter().enumerate() {
        for b in &jobs[i + 1..] {
            assert!(!overlap(a, b), "{what}: two ran at once: {a} and {b}");
        }
    }
}

/// The final views of `ids`, in order.
async fn wait_all(node: &Node, token: &str, ids: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(wait_final(node, token, id, Duration::from_secs(120)).await);
    }
    out
}

fn tenant_sleeper(app: &TestApp, qname: &str) -> Value {
    json!({ "qname": qname, "container_image": app.svc.image, "run": ["sleep", "1.5"] })
}

#[tokio::test]
async fn two_nodes_run_one_qname_of_two_tenants_in_parallel_but_each_tenant_queue_serially() {
    let Some((helper, nodes, _db)) = tenant_cluster(&[]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..4 {
        // Each tenant's submissions alternate between the nodes.
        a.push(submit_as(&nodes[i % 2], &helper, &token, "tenant-a", tenant_sleeper(&helper, "q")).await);
        b.push(submit_as(&nodes[(i + 1) % 2], &helper, &token, "tenant-b", tenant_sleeper(&helper, "q")).await);
    }
    let a = wait_all(&nodes[0], &token, &a).await;
    let b = wait_all(&nodes[0], &token, &b).await;
    let mut owners = std::collections::HashSet::new();
    for (tenant, jobs) in [("tenant-a", &a), ("tenant-b", &b)] {
        for j in jobs {
            assert_eq!((j["status"].as_str(), j["tenant"].as_str()), (Some("success"), Some(tenant)), "{j}");
            owners.insert(j["node_uuid"].as_str().unwrap().to_string());
        }
        // FIFO and one at a time per tenant's queue, whichever node ran each job.
        for pair in jobs.windows(2) {
            assert!(ms(&pair[0]["ended"]) <= ms(&pair[1]["started"]), "{tenant}'s queue q overlapped or reordered");
        }
        assert_serial(tenant, jobs);
    }
    let parallel = a.iter().any(|x| b.iter().any(|y| overlap(x, y)));
    assert!(parallel, "tenant-a's q and tenant-b's q never ran at the same time: {a:?} {b:?}");
    assert!(owners.len() == 2, "both nodes ran jobs: {owners:?}");
    for n in nodes {
        n.signal("-TERM");
        n.wait_exit(Duration::from_secs(30));
    }
    helper.stop().await;
}

#[tokio::test]
async fn tenant_max_running_holds_across_two_nodes_and_spares_the_other_tenant() {
    let Some((helper, nodes, _db)) = tenant_cluster(&[("GOSTINT_TENANT_MAX_RUNNING", "1")]).await else { return };
    let token = helper.req.token(None, &["default"]).await;
    let mut a = Vec::new();
    for i in 0..6 {
        a.push(submit_as(&nodes[i % 2], &helper, &token, "tenant-a", tenant_sleeper(&helper, &format!("a{i}"))).await);
    }
    let mut b = Vec::new();
    for i in 0..2 {
        b.push(submit_as(&nodes[i % 2], &helper, &token, "tenant-b", tenant_sleeper(&helper, &format!("b{i}"))).await);
    }
    let a_jobs = wait_all(&nodes[1], &token, &a).await;
    let b_jobs = wait_all(&nodes[1], &token, &b).await;
    let mut owners = std::collections::HashSet::new();
    for j in a_jobs.iter().chain(&b_jobs) {
        assert_eq!(j["status"], "success", "{j}");
        owners.insert(j["node_uuid"].as_str().unwrap().to_string());
    }
    // Six queues of tenant A, two nodes with free slots: still one A job at a time.
    assert_serial("tenant-a under GOSTINT_TENANT_MAX_RUNNING=1", &a_jobs);
    assert_serial("tenant-b under GOSTINT_TENANT_MAX_RUNNING=1", &b_jobs);
    // Tenant B does not wait behind A's backlog: its jobs ran while A's were running.
    let last_a_start = a_jobs.iter().map(|j| ms(&j["started"])).max().unwrap();
    assert!(ms(&b_jobs[0]["started"]) < last_a_start, "tenant-b waited for tenant-a's backlog");
    assert!(b_jobs.iter().any(|y| a_jobs.iter().any(|x| overlap(x, y))), "tenant-b never ran beside tenant-a");
    assert!(owners.len() == 2, "both nodes ran jobs: {owners:?}");
    for n in nodes {
        n.signal("-TERM");
        n.wait_exit(Duration::from_secs(30));
    }
    helper.stop().await;
}
