//! `gostint-bench`: gostint against its physical limits, each figure beside a baseline
//! measured in the same run and printed as a ratio (issue 6). Run it with `scripts/bench`,
//! which starts the services and builds in release mode.
//!
//! 1. per-job overhead vs `docker run --rm`; 2. parallel throughput vs 50 `docker run --rm`;
//! 3. dispatch delay; 4. submission throughput vs OpenBao's own `lookup-self` rate;
//! 5. queue scale (enqueue rate, claim latency from 100 to 100,000 queued, server RSS);
//! 6. 4 and 5 on PostgreSQL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures::StreamExt;
use gostint_core::{JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Outcome, Owner, Timestamp};
use gostint_test_support::{Requestor, Services};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(about = "gostint benchmark suite (see BENCHMARKS.md)")]
struct Args {
    /// Fewer runs and a smaller queue-scale test (a smoke check, not figures to quote).
    #[arg(long)]
    quick: bool,
    /// Only these figures (1-6), e.g. --only 1 --only 4.
    #[arg(long)]
    only: Vec<u8>,
    /// Queued jobs for figure 5/6 (default 100000; --quick 10000).
    #[arg(long)]
    scale: Option<usize>,
}

// ------------------------------------------------------------------ statistics and report

#[derive(Clone, Copy, Debug)]
struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
    p99: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    assert!(!v.is_empty(), "no samples");
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Stats { median: q(0.5), p10: q(0.1), p90: q(0.9), p99: q(0.99) }
}

struct Row {
    figure: String,
    measured: String,
    baseline: String,
    ratio: Option<f64>,
    target: String,
    pass: Option<bool>,
}

fn print_rows(rows: &[Row]) {
    println!();
    println!("| figure | gostint | baseline | ratio | target | result |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let ratio = r.ratio.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        let res = match r.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "info",
        };
        println!("| {} | {} | {} | {} | {} | {} |", r.figure, r.measured, r.baseline, ratio, r.target, res);
    }
}

// ------------------------------------------------------------------ the server under test

struct Bench {
    svc: Services,
    req: Requestor,
    http: reqwest::Client,
    url: String,
    server: gostint_server::Server,
    token: String,
    _dir: tempfile::TempDir,
}

fn settings(svc: &Services, dir: &Path, dburl: &str) -> anyhow::Result<gostint_config::Settings> {
    let mut m: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("VAULT_ADDR", svc.vault_addr.clone()),
        ("GOSTINT_ROLEID", svc.role_id.clone()),
        ("GOSTINT_ROLENAME", svc.role_name.clone()),
        ("GOSTINT_BIND", "127.0.0.1".into()),
        ("GOSTINT_PORT", "0".into()),
        ("GOSTINT_SSL_SELF_SIGNED", "1".into()),
        ("GOSTINT_SSL_CERT", dir.join("cert.pem").to_string_lossy().into_owned()),
        ("GOSTINT_SSL_KEY", dir.join("key.pem").to_string_lossy().into_owned()),
        ("GOSTINT_STATE_DIR", dir.join("state").to_string_lossy().into_owned()),
        ("GOSTINT_DBURL", dburl.to_string()),
    ] {
        m.insert(k.into(), v);
    }
    Ok(gostint_config::Settings::from_source(&m)?)
}

impl Bench {
    async fn start(svc: &Services, dburl: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = dburl.map(str::to_string).unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
        let server = gostint_server::start(&settings(svc, dir.path(), &db)?).await?;
        let pem = std::fs::read(dir.path().join("cert.pem"))?;
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
            .pool_max_idle_per_host(64)
            .build()?;
        let req = Requestor::new(svc);
        let token = req.token(None, &["default"]).await;
        Ok(Self { svc: svc.clone(), req, http, url: server.url(), server, token, _dir: dir })
    }

    async fn post(&self, job: &Value) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!("{}/v1/api/job", self.url))
            .header("X-Auth-Token", &self.token)
            .body(job.to_string())
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST answered {status}: {v}");
        }
        Ok(v["_id"].as_str().context("no _id")?.to_string())
    }

    async fn wait(&self, id: &str, every: Duration) -> anyhow::Result<Value> {
        loop {
            let j: Value = self
                .http
                .get(format!("{}/v1/api/job/{id}", self.url))
                .header("X-Auth-Token", &self.token)
                .send()
                .await?
                .json()
                .await?;
            let st = j["status"].as_str().unwrap_or_default();
            if matches!(st, "success" | "failed" | "notauthorised" | "unknown") {
                if st != "success" {
                    bail!("job {id} ended {st}: {}", j["output"]);
                }
                return Ok(j);
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn wraps(&self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.req.wrapped_secret_id().await);
        }
        out
    }

    fn trivial(&self, qname: &str, wrap: String) -> Value {
        json!({"qname": qname, "container_image": self.svc.image, "run": ["true"], "wrap_secret_id": wrap})
    }
}

async fn docker_run(image: &str) -> anyhow::Result<()> {
    let st = tokio::process::Command::new("docker")
        .args(["run", "--rm", image, "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    if !st.success() {
        bail!("docker run failed");
    }
    Ok(())
}

fn ms(v: &Value) -> f64 {
    let t = v.as_str().unwrap_or_default();
    // RFC 3339 with optional millisecond fraction, always UTC `Z`.
    let odt = time_parse(t);
    odt as f64
}

/// Milliseconds since the epoch of the API's timestamps (`YYYY-MM-DDTHH:MM:SS[.fff]Z`).
fn time_parse(t: &str) -> i64 {
    let p = |a: usize, b: usize| t.get(a..b).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (y, mo, d, h, mi, s) = (p(0, 4), p(5, 7), p(8, 10), p(11, 13), p(14, 16), p(17, 19));
    let frac = t.get(19..).and_then(|r| r.strip_prefix('.')).map(|r| r.trim_end_matches('Z')).unwrap_or("");
    let frac_ms = format!("{frac:0<3}").get(..3).and_then(|f| f.parse::<i64>().ok()).unwrap_or(0);
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + frac_ms
}

// ------------------------------------------------------------------ figures 1-3

async fn fig1(b: &Bench, runs: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 1. per-job overhead: {runs} sequential trivial jobs, gostint vs docker run --rm (interleaved)");
    let wraps = b.wraps(runs + 2).await;
    let mut g = Vec::new();
    let mut d = Vec::new();
    for (i, wrap) in wraps.into_iter().enumerate() {
        let t = Instant::now();
        let id = b.post(&b.trivial("overhead", wrap)).await?;
        b.wait(&id, Duration::from_millis(5)).await?;
        let gostint = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        docker_run(&b.svc.image).await?;
        let docker = t.elapsed().as_secs_f64() * 1000.0;
        if i >= 2 {
            g.push(gostint);
            d.push(docker);
        }
    }
    let (gs, ds) = (stats(g), stats(d));
    println!(
        "   gostint ms: median {:.0} p10 {:.0} p90 {:.0}; docker run ms: median {:.0} p10 {:.0} p90 {:.0}",
        gs.median, gs.p10, gs.p90, ds.median, ds.p10, ds.p90
    );
    let ratio = gs.median / ds.median;
    rows.push(Row {
        figure: "1. per-job overhead (median ms)".into(),
        measured: format!("{:.0} (p10 {:.0}, p90 {:.0})", gs.median, gs.p10, gs.p90),
        baseline: format!("docker run --rm {:.0} (p10 {:.0}, p90 {:.0})", ds.median, ds.p10, ds.p90),
        ratio: Some(ratio),
        target: "≤ 1.3".into(),
        pass: Some(ratio <= 1.3),
    });
    Ok(())
}

async fn fig2(b: &Bench, n: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 2. parallel throughput: {n} trivial jobs over {n} queues vs {n} concurrent docker run --rm");
    let wraps = b.wraps(n).await;
    let t = Instant::now();
    let ids = futures::future::try_join_all(
        wraps.into_iter().enumerate().map(|(i, w)| async move { b.post(&b.trivial(&format!("par-{i}"), w)).await }),
    )
    .await?;
    futures::future::try_join_all(ids.iter().map(|id| b.wait(id, Duration::from_millis(20)))).await?;
    let g = t.elapsed().as_secs_f64();
    let t = Instant::now();
    futures::future::try_join_all((0..n).map(|_| docker_run(&b.svc.image))).await?;
    let d = t.elapsed().as_secs_f64();
    let ratio = g / d;
    println!(
        "   gostint {g:.2} s ({:.1} jobs/s); docker run {d:.2} s ({:.1} containers/s)",
        n as f64 / g,
        n as f64 / d
    );
    rows.push(Row {
        figure: format!("2. {n} parallel jobs (wall s)"),
        measured: format!("{g:.2} s"),
        baseline: format!("{n}× docker run --rm {d:.2} s"),
        ratio: Some(ratio),
        target: "≤ 1.3".into(),
        pass: Some(ratio <= 1.3),
    });
    Ok(())
}

async fn fig3(b: &Bench, pairs: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 3. dispatch delay: {pairs} queues with 2 jobs each; docker events give container creation times");
    let mut events = tokio::process::Command::new("docker")
        .args([
            "events",
            "--filter",
            "event=create",
            "--filter",
            "label=gostint.job_id",
            "--format",
            "{{.TimeNano}} {{index .Actor.Attributes \"gostint.job_id\"}}",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = events.stdout.take().context("docker events stdout")?;
    let created: Arc<std::sync::Mutex<HashMap<String, f64>>> = Arc::default();
    let sink = created.clone();
    let reader = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((ns, id)) = line.split_once(' ') {
                if let Ok(ns) = ns.parse::<f64>() {
                    sink.lock().expect("not poisoned").insert(id.to_string(), ns / 1e6);
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut freed_claim = Vec::new();
    let mut freed_create = Vec::new();
    let mut idle_claim = Vec::new();
    let mut idle_create = Vec::new();
    for i in 0..pairs {
        let w = b.wraps(2).await;
        let q = format!("delay-{i}");
        let mut it = w.into_iter();
        let a = b.post(&b.trivial(&q, it.next().context("wrap")?)).await?;
        let c = b.post(&b.trivial(&q, it.next().context("wrap")?)).await?;
        let ja = b.wait(&a, Duration::from_millis(10)).await?;
        let jc = b.wait(&c, Duration::from_millis(10)).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let map = created.lock().expect("not poisoned").clone();
        idle_claim.push(ms(&ja["started"]) - ms(&ja["submitted"]));
        freed_claim.push(ms(&jc["started"]) - ms(&ja["ended"]));
        if let (Some(ca), Some(cc)) = (map.get(&a), map.get(&c)) {
            idle_create.push(ca - ms(&ja["submitted"]));
            freed_create.push(cc - ms(&ja["ended"]));
        }
    }
    drop(events);
    reader.abort();
    let (fc, ic) = (stats(freed_claim), stats(idle_claim));
    println!("   queue freed → next job claimed: median {:.1} ms p99 {:.1} ms", fc.median, fc.p99);
    println!("   job arriving at an idle node → claimed: median {:.1} ms p99 {:.1} ms", ic.median, ic.p99);
    rows.push(Row {
        figure: "3. queue freed → next claimed (ms)".into(),
        measured: format!("median {:.1}, p99 {:.1}", fc.median, fc.p99),
        baseline: "original: 1 s poll (≈500 median)".into(),
        ratio: Some(fc.median / 500.0),
        target: "median < 20 ms".into(),
        pass: Some(fc.median < 20.0),
    });
    rows.push(Row {
        figure: "3. idle node: job posted → claimed (ms)".into(),
        measured: format!("median {:.1}, p99 {:.1}", ic.median, ic.p99),
        baseline: "original: 1 s poll".into(),
        ratio: Some(ic.median / 500.0),
        target: "median < 20 ms".into(),
        pass: Some(ic.median < 20.0),
    });
    if !freed_create.is_empty() {
        let (fcr, icr) = (stats(freed_create), stats(idle_create));
        println!(
            "   queue freed → container created: median {:.1} ms p99 {:.1} ms (unwrap, login, secrets, create)",
            fcr.median, fcr.p99
        );
        rows.push(Row {
            figure: "3. queue freed → container created (ms)".into(),
            measured: format!("median {:.1}, p99 {:.1}", fcr.median, fcr.p99),
            baseline: "includes Vault unwrap + login + create".into(),
            ratio: None,
            target: "info".into(),
            pass: None,
        });
        rows.push(Row {
            figure: "3. idle node: posted → container created (ms)".into(),
            measured: format!("median {:.1}, p99 {:.1}", icr.median, icr.p99),
            baseline: "includes Vault unwrap + login + create".into(),
            ratio: None,
            target: "info".into(),
            pass: None,
        });
    }
    Ok(())
}

// ------------------------------------------------------------------ figure 4

async fn fig4(b: &Bench, label: &str, n: usize, conc: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!(
        "== 4. submission throughput ({label}): {n} plain-mode POSTs, {conc} concurrent, node draining (nothing runs)"
    );
    b.server.state.drain();
    let vault_http = reqwest::Client::new();
    let lookup = |_| {
        let c = vault_http.clone();
        let url = format!("{}/v1/auth/token/lookup-self", b.svc.vault_addr);
        let tok = b.token.clone();
        async move {
            let t = Instant::now();
            let r = c.get(url).header("X-Vault-Token", tok).send().await?;
            anyhow::ensure!(r.status().is_success(), "lookup-self {}", r.status());
            let _ = r.bytes().await?;
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let post = |i: usize| {
        let job = json!({"qname": format!("sub-{}", i % 100), "container_image": b.svc.image, "run": ["true"], "wrap_secret_id": "never-used"});
        async move {
            let t = Instant::now();
            b.post(&job).await?;
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    // Warm both paths, then measure OpenBao alone, then gostint.
    let _: Vec<_> = futures::stream::iter(0..200).map(lookup).buffer_unordered(conc).collect().await;
    let _: Vec<_> = futures::stream::iter(0..200).map(post).buffer_unordered(conc).collect().await;
    let t = Instant::now();
    let bl: Vec<f64> = futures::stream::iter(0..n)
        .map(lookup)
        .buffer_unordered(conc)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let bao_rate = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gl: Vec<f64> = futures::stream::iter(0..n)
        .map(post)
        .buffer_unordered(conc)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let g_rate = n as f64 / t.elapsed().as_secs_f64();
    let (gs, bs) = (stats(gl), stats(bl));
    println!("   gostint {g_rate:.0}/s (p50 {:.1} ms, p99 {:.1} ms); OpenBao lookup-self {bao_rate:.0}/s (p50 {:.1}, p99 {:.1})", gs.median, gs.p99, bs.median, bs.p99);
    let ratio = g_rate / bao_rate;
    rows.push(Row {
        figure: format!("4. POST /v1/api/job rate ({label})"),
        measured: format!("{g_rate:.0}/s, p50 {:.1} ms, p99 {:.1} ms", gs.median, gs.p99),
        baseline: format!("OpenBao lookup-self {bao_rate:.0}/s, p99 {:.1} ms", bs.p99),
        ratio: Some(ratio),
        target: "≥ 0.8".into(),
        pass: Some(ratio >= 0.8),
    });
    Ok(())
}

// ------------------------------------------------------------------ figure 5

fn new_job(i: usize, queues: usize, now: Timestamp) -> NewJob {
    NewJob {
        id: JobId::new(now.unix_seconds()),
        qname: format!("scale-{}", i % queues),
        owner: Owner::new("bench"),
        submitted: Timestamp::from_millis(now.millis() + i as i64),
        definition: JobDefinition {
            container_image: "gostint-test/busybox:latest".into(),
            run: vec!["true".into()],
            ..Default::default()
        },
        wrap_secret_id: "never-used".into(),
        payload: None,
    }
}

/// Median time of one `claim(max=1)` (each claimed job is then finished).
async fn claim_latency(store: &dyn JobStore, node: &NodeId, samples: usize) -> anyhow::Result<f64> {
    let mut v = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let got = store.claim(node, 1, Timestamp::now()).await?;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        for j in got {
            store.finish(&j.id, node, Outcome::message(JobStatus::Success, ""), Timestamp::now()).await?;
        }
    }
    Ok(stats(v).median)
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The release `gostint` binary beside this one.
fn gostint_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.parent().context("exe dir")?.join("gostint");
    anyhow::ensure!(bin.exists(), "{} not built (cargo build --release --bin gostint)", bin.display());
    Ok(bin)
}

struct Child {
    child: tokio::process::Child,
    url: String,
}

async fn start_child(svc: &Services, dburl: &str, state: &Path) -> anyhow::Result<Child> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(gostint_bin()?)
        .arg("serve")
        .env("VAULT_ADDR", &svc.vault_addr)
        .env("GOSTINT_ROLEID", &svc.role_id)
        .env("GOSTINT_ROLENAME", &svc.role_name)
        .env("GOSTINT_BIND", "127.0.0.1")
        .env("GOSTINT_PORT", port.to_string())
        .env("GOSTINT_PLAIN_HTTP", "1")
        .env("GOSTINT_DBURL", dburl)
        .env("GOSTINT_STATE_DIR", state)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let c = Child { child, url: format!("http://127.0.0.1:{port}") };
    let t = Instant::now();
    while c.health("state").await.is_none() {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "gostint child did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(c)
}

impl Child {
    async fn health(&self, k: &str) -> Option<String> {
        let r = reqwest::get(format!("{}/v1/api/health?k={k}", self.url)).await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }
    fn rss(&self) -> f64 {
        self.child.id().and_then(rss_mib).unwrap_or(f64::NAN)
    }
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

async fn fig5(svc: &Services, label: &str, dburl: &str, total: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let queues = (total / 10).max(1);
    println!("== 5. queue scale ({label}): {total} queued jobs over {queues} queues");
    let state = tempfile::tempdir()?;
    // Idle RSS of a fresh server on an empty store.
    let c = start_child(svc, dburl, state.path()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = c.rss();
    c.stop().await;

    let store: Arc<dyn JobStore> = if dburl.starts_with("postgres") {
        Arc::new(gostint_store_postgres::PgJobStore::connect(dburl).await?)
    } else {
        Arc::new(gostint_store_sqlite::SqliteJobStore::open(dburl).await?)
    };
    let node = NodeId::new(format!("bench-{}", uuid::Uuid::new_v4()));
    let now = Timestamp::now();
    let mut lat = Vec::new();
    let mut enq_time = Duration::ZERO;
    let mut done = 0usize;
    for size in [100usize, 1_000, 10_000, 100_000] {
        if size > total {
            break;
        }
        let t = Instant::now();
        let batch: Vec<usize> = (done..size).collect();
        futures::stream::iter(batch)
            .map(|i| {
                let s = store.clone();
                async move { s.enqueue(new_job(i, queues, now)).await }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        enq_time += t.elapsed();
        done = size;
        let l = claim_latency(store.as_ref(), &node, 21).await?;
        println!("   {size:>7} queued: claim(1) median {l:.2} ms");
        lat.push((size, l));
    }
    let enq_rate = done as f64 / enq_time.as_secs_f64();
    println!("   enqueue rate (store, 16 concurrent): {enq_rate:.0} jobs/s");
    store.deregister(&node).await.ok();
    drop(store);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The real server over that many queued jobs: RSS at start, peak while it drains them
    // (fake wrapping tokens: each ends `notauthorised` after one Vault call, no container).
    let c = start_child(svc, dburl, state.path()).await?;
    let queued_at_start = c.health("queued_jobs").await.unwrap_or_default();
    let start_rss = c.rss();
    let mut peak = start_rss;
    let t = Instant::now();
    let limit = Duration::from_secs(900);
    loop {
        peak = peak.max(c.rss());
        let q: usize = c.health("queued_jobs").await.and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
        let r: usize = c.health("running_jobs").await.and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
        if q == 0 && r == 0 {
            break;
        }
        if t.elapsed() > limit {
            println!("   drain not finished after {limit:?} ({q} still queued)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drain_s = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_rss = c.rss();
    c.stop().await;
    println!("   server RSS: idle {idle_rss:.1} MiB, with {queued_at_start} queued {start_rss:.1} MiB, peak while draining {peak:.1} MiB, after {after_rss:.1} MiB (drained in {drain_s:.0} s)");

    let (first, last) = (lat.first().copied().unwrap_or((0, f64::NAN)), lat.last().copied().unwrap_or((0, f64::NAN)));
    let growth = last.1 / first.1;
    rows.push(Row {
        figure: format!("5. claim latency {}→{} queued ({label})", first.0, last.0),
        measured: format!("{:.2} ms → {:.2} ms", first.1, last.1),
        baseline: format!("at {} queued", first.0),
        ratio: Some(growth),
        target: "≤ 2 (flat)".into(),
        pass: Some(growth <= 2.0),
    });
    rows.push(Row {
        figure: format!("5. enqueue rate, store ({label})"),
        measured: format!("{enq_rate:.0} jobs/s"),
        baseline: "-".into(),
        ratio: None,
        target: "info".into(),
        pass: None,
    });
    rows.push(Row {
        figure: format!("5. server RSS at {queued_at_start} queued ({label})"),
        measured: format!("{start_rss:.1} MiB (peak draining {peak:.1}, after {after_rss:.1})"),
        baseline: format!("idle {idle_rss:.1} MiB"),
        ratio: Some(start_rss / idle_rss),
        target: if label == "SQLite" { "< 200 MiB".into() } else { "info".into() },
        pass: (label == "SQLite").then_some(start_rss < 200.0),
    });
    Ok(())
}

// ------------------------------------------------------------------ main

fn fresh_pg_database(base: &str) -> anyhow::Result<String> {
    let name = format!("gostint_bench_{}", uuid::Uuid::new_v4().simple());
    let out =
        std::process::Command::new("psql").arg(base).args(["-qc", &format!("CREATE DATABASE {name}")]).output()?;
    anyhow::ensure!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
    let (prefix, _) = base.rsplit_once('/').context("database URL without a path")?;
    Ok(format!("{prefix}/{name}"))
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string()))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let docker = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpus} cores, {mem:.1} GiB, Docker engine {docker}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let want = |n: u8| args.only.is_empty() || args.only.contains(&n);
    let svc = gostint_test_support::services().context("services missing: run scripts/services up")?;
    let (runs, par, pairs, subs) = if args.quick { (8, 20, 8, 500) } else { (30, 50, 30, 3000) };
    let scale = args.scale.unwrap_or(if args.quick { 10_000 } else { 100_000 });
    println!(
        "gostint-bench on {} ({}), release build, job image cached locally",
        machine(),
        if args.quick { "quick" } else { "full" }
    );
    let mut rows = Vec::new();
    if want(1) || want(2) || want(3) || want(4) {
        let b = Bench::start(&svc, None).await?;
        // Warm-up: image in the page cache, connections open.
        let w = b.wraps(2).await;
        for wrap in w {
            let id = b.post(&b.trivial("warm", wrap)).await?;
            b.wait(&id, Duration::from_millis(10)).await?;
        }
        docker_run(&svc.image).await?;
        if want(1) {
            fig1(&b, runs, &mut rows).await?;
        }
        if want(2) {
            fig2(&b, par, &mut rows).await?;
        }
        if want(3) {
            fig3(&b, pairs, &mut rows).await?;
        }
        if want(4) {
            fig4(&b, "SQLite", subs, 32, &mut rows).await?;
        }
        b.server.shutdown().await;
    }
    if want(5) {
        let dir = tempfile::tempdir()?;
        fig5(&svc, "SQLite", &format!("sqlite://{}/scale.db", dir.path().display()), scale, &mut rows).await?;
    }
    if want(6) {
        match &svc.database_url {
            None => println!("== 6. skipped: no GOSTINT_TEST_DATABASE_URL"),
            Some(base) => {
                let db = fresh_pg_database(base)?;
                let b = Bench::start(&svc, Some(&db)).await?;
                fig4(&b, "PostgreSQL", subs, 32, &mut rows).await?;
                b.server.shutdown().await;
                let db = fresh_pg_database(base)?;
                fig5(&svc, "PostgreSQL", &db, scale, &mut rows).await?;
            }
        }
    }
    print_rows(&rows);
    Ok(())
}
