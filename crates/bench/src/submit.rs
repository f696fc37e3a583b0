//! Figure 4 (and 6's first half): plain-mode POSTs per second with `X-Auth-Token`, against
//! OpenBao's own `lookup-self` rate at the same concurrency, with the CPU each process spent.

use std::future::Future;
use std::time::Instant;

use futures::StreamExt;
use gostint_test_support::Services;
use serde_json::json;

use crate::cpu::{self, Usage};
use crate::perf::Perf;
use crate::pin::{bao_pid, Pins};
use crate::report::{stats, Row, Stats};
use crate::target::{Child, InProcess, Target};

/// `n` calls of `f`, `conc` at a time: (calls per second, latencies in ms).
async fn drive<F, Fut>(n: usize, conc: usize, f: F) -> anyhow::Result<(f64, Vec<f64>)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let t = Instant::now();
    let lat: Vec<f64> = futures::stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move {
                let s = Instant::now();
                fut.await?;
                Ok::<f64, anyhow::Error>(s.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(conc)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok((n as f64 / t.elapsed().as_secs_f64(), lat))
}

struct Phase {
    rate: f64,
    lat: Stats,
    cpu: Usage,
}

async fn lookups(svc: &Services, token: &str, n: usize, conc: usize) -> anyhow::Result<Phase> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let url = format!("{}/v1/auth/token/lookup-self", svc.vault_addr);
    let f = |_| {
        let r = http.get(&url).header("X-Vault-Token", token).send();
        async move {
            let r = r.await?;
            anyhow::ensure!(r.status().is_success(), "lookup-self {}", r.status());
            let _ = r.bytes().await?;
            Ok(())
        }
    };
    let snap = cpu::snap();
    let (rate, lat) = drive(n, conc, f).await?;
    Ok(Phase { rate, lat: stats(lat), cpu: snap.since(None) })
}

async fn gets(t: &Target, path: &str, auth: bool, n: usize, conc: usize, server: Option<u32>) -> anyhow::Result<Phase> {
    let url = format!("{}{path}", t.url);
    let f = |_| {
        let mut r = t.http.get(&url);
        if auth {
            r = r.header("X-Auth-Token", &t.token);
        }
        async move {
            let r = r.send().await?;
            anyhow::ensure!(r.status().is_success() || r.status() == 404, "GET answered {}", r.status());
            let _ = r.bytes().await?;
            Ok(())
        }
    };
    let snap = cpu::snap();
    let (rate, lat) = drive(n, conc, f).await?;
    Ok(Phase { rate, lat: stats(lat), cpu: snap.since(server) })
}

async fn posts(t: &Target, image: &str, n: usize, conc: usize, server: Option<u32>) -> anyhow::Result<Phase> {
    let f = |i: usize| {
        let job = json!({"qname": format!("sub-{}", i % 100), "container_image": image, "run": ["true"], "wrap_secret_id": "never-used"});
        async move { t.post(&job).await.map(|_| ()) }
    };
    let snap = cpu::snap();
    let (rate, lat) = drive(n, conc, f).await?;
    Ok(Phase { rate, lat: stats(lat), cpu: snap.since(server) })
}

fn show(name: &str, p: &Phase) {
    println!(
        "   {name:<44} {:>6.0}/s  p50 {:>5.1} ms  p99 {:>5.1} ms | {}",
        p.rate,
        p.lat.median,
        p.lat.p99,
        p.cpu.describe(p.rate * p.cpu.wall, "req")
    );
}

/// `dburl` for the in-process server and a second (fresh) one for the child; `None` = SQLite
/// in temp dirs. `fig` labels the rows (4 for SQLite, 6 for PostgreSQL).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fig4(
    svc: &Services,
    label: &str,
    fig: u8,
    dburls: Option<(String, String, String)>,
    n: usize,
    conc: usize,
    perf: bool,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    println!("== {fig}. submission throughput ({label}): {n} plain-mode POSTs, {conc} concurrent, node draining (nothing runs) vs OpenBao lookup-self alone");
    let b = InProcess::start(svc, dburls.as_ref().map(|d| d.0.as_str())).await?;
    b.server.state.drain();
    let token = b.t.token.clone();
    println!("   gostint in-process over HTTPS ({}), OpenBao over plain HTTP/1.1", b.t.version().await);
    // Warm both paths (connections, TLS sessions, page cache), then alternate.
    lookups(svc, &token, 300, conc).await?;
    posts(&b.t, &svc.image, 300, conc, None).await?;
    let bao_a = lookups(svc, &token, n, conc).await?;
    show("OpenBao lookup-self alone (A)", &bao_a);
    let inproc = posts(&b.t, &svc.image, n, conc, None).await?;
    show("gostint in-process, HTTPS", &inproc);
    let bao_b = lookups(svc, &token, n, conc).await?;
    show("OpenBao lookup-self alone (B)", &bao_b);
    b.server.shutdown().await;

    // The release binary as a child: its own CPU time. Over HTTPS, the POST beside two
    // cheaper routes that isolate the serving cost (`vault/info`: no Vault call, no store) and
    // the lookup (`GET /job/{id}` of an absent id: lookup-self and one indexed read); then the
    // POST over plain HTTP (the TLS share).
    let mut child_phases = Vec::new();
    for (i, https) in [true, false].into_iter().enumerate() {
        let dir = tempfile::tempdir()?;
        let db = match &dburls {
            Some(d) => {
                if i == 0 {
                    d.1.clone()
                } else {
                    d.2.clone()
                }
            }
            None => format!("sqlite://{}/child.db", dir.path().display()),
        };
        let mut c = Child::start(svc, &db, dir.path(), https, &[]).await?;
        c.drain().await?;
        c.t.token = token.clone();
        posts(&c.t, &svc.image, 300, conc, c.pid()).await?;
        let scheme = if https { "HTTPS" } else { "plain HTTP" };
        if https {
            let info = gets(&c.t, "/v1/api/vault/info", false, n, conc, c.pid()).await?;
            show("gostint child, HTTPS: GET vault/info", &info);
            let absent = gets(&c.t, "/v1/api/job/000000000000000000000000", true, n, conc, c.pid()).await?;
            show("gostint child, HTTPS: GET job/{absent id}", &absent);
            let health = gets(&c.t, "/v1/api/health?k=state", false, (n / 10).max(100), conc, c.pid()).await?;
            show("gostint child, HTTPS: GET health?k=state", &health);
            child_phases.push(("HTTPS, GET /v1/api/health?k=state (counts + docker info)".to_string(), health));
            child_phases.push(("HTTPS, GET /v1/api/vault/info (no Vault, no store)".to_string(), info));
            child_phases.push(("HTTPS, GET /v1/api/job/{absent} (lookup-self + read)".to_string(), absent));
        }
        let p = Perf::start(
            perf,
            c.pid(),
            &format!("fig{fig}-{}-{}", label.to_lowercase(), if https { "https" } else { "http" }),
        );
        let ph = posts(&c.t, &svc.image, n, conc, c.pid()).await?;
        show(&format!("gostint child, {scheme}: POST job"), &ph);
        if let Some(p) = p {
            p.report("comm,dso,sym").await;
        }
        c.stop().await;
        child_phases.push((format!("{scheme}, POST /v1/api/job"), ph));
    }
    let bao_c = lookups(svc, &token, n, conc).await?;
    show("OpenBao lookup-self alone (C)", &bao_c);

    // The same with OpenBao on a core of its own, as when Vault has its own machine: then the
    // question is only whether gostint (with the client beside it) keeps up with OpenBao.
    let cores = crate::pin::online_count();
    let pinned = match bao_pid() {
        Some(bao) if cores >= 2 => {
            let last = format!("1-{}", cores - 1);
            let mut pins = vec![(bao, "0"), (std::process::id(), last.as_str())];
            let pg = if dburls.is_some() { crate::pin::postgres_pids() } else { Vec::new() };
            pins.extend(pg.iter().map(|p| (*p, last.as_str())));
            println!(
                "   -- OpenBao pinned to CPU 0; this benchmark, the gostint child{} to CPU {last}",
                if pg.is_empty() { "" } else { " and PostgreSQL" }
            );
            let _pins = Pins::apply(&pins)?;
            let alone_d = lookups(svc, &token, n, conc).await?;
            show("OpenBao lookup-self alone, pinned (D)", &alone_d);
            let dir = tempfile::tempdir()?;
            let db = match &dburls {
                Some(d) => d.1.clone(),
                None => format!("sqlite://{}/pinned.db", dir.path().display()),
            };
            let mut c = Child::start(svc, &db, dir.path(), true, &[]).await?;
            c.drain().await?;
            c.t.token = token.clone();
            posts(&c.t, &svc.image, 300, conc, c.pid()).await?;
            let ph = posts(&c.t, &svc.image, n, conc, c.pid()).await?;
            show("gostint child, HTTPS, pinned: POST job", &ph);
            c.stop().await;
            let alone_e = lookups(svc, &token, n, conc).await?;
            show("OpenBao lookup-self alone, pinned (E)", &alone_e);
            Some((ph, (alone_d.rate + alone_e.rate) / 2.0, alone_d.lat.p99))
        }
        _ => {
            println!("   (no pinned run: needs 2 cores and OpenBao's pid from scripts/services)");
            None
        }
    };

    let https_post = &child_phases
        .iter()
        .find(|(n, _)| n.starts_with("HTTPS, POST"))
        .ok_or_else(|| anyhow::anyhow!("no HTTPS POST phase"))?
        .1;
    let base = (bao_a.rate + bao_b.rate) / 2.0;
    let ratio = inproc.rate / base;
    let per_req = |p: &Phase, g: &str| p.cpu.get(g) * 1000.0 / (p.rate * p.cpu.wall);
    println!(
        "   OpenBao CPU per lookup: {:.3} ms alone, {:.3} ms inside a POST; gostint server CPU per POST (child, HTTPS): {:.3} ms",
        per_req(&bao_a, "OpenBao"),
        per_req(https_post, "OpenBao"),
        per_req(https_post, "gostint (child)")
    );
    let own = |p: &Phase| p.cpu.own() * 1000.0 / (p.rate * p.cpu.wall);
    println!(
        "   CPU per request of the benchmark's own processes (client, gostint, OpenBao, PostgreSQL): lookup-self {:.2} ms, POST in-process {:.2} ms, POST child {:.2} ms; on saturated cores the rate ratio cannot exceed {:.2} (in-process) / {:.2} (child)",
        own(&bao_a),
        own(&inproc),
        own(https_post),
        own(&bao_a) / own(&inproc),
        own(&bao_a) / own(https_post)
    );
    if ratio < 0.8 {
        println!("   MISS: {:.0}% under the target", (1.0 - ratio / 0.8) * 100.0);
    }
    if let Some((ph, base, p99)) = &pinned {
        let ratio = ph.rate / base;
        rows.push(Row {
            figure: format!("{fig}. POST /v1/api/job rate, {conc} concurrent, OpenBao on its own core ({label})"),
            measured: format!("{:.0}/s, p50 {:.1} ms, p99 {:.1} ms", ph.rate, ph.lat.median, ph.lat.p99),
            baseline: format!("OpenBao lookup-self on that core {base:.0}/s; p99 {p99:.1} ms"),
            ratio: Some(ratio),
            target: "≥ 0.8".into(),
            pass: Some(ratio >= 0.8),
        });
    }
    rows.push(Row {
        figure: format!("{fig}. POST /v1/api/job rate, {conc} concurrent, all on shared cores ({label})"),
        measured: format!("{:.0}/s, p50 {:.1} ms, p99 {:.1} ms", inproc.rate, inproc.lat.median, inproc.lat.p99),
        baseline: format!(
            "OpenBao lookup-self {:.0}/s, {:.0}/s (before, after); p99 {:.1} ms",
            bao_a.rate, bao_b.rate, bao_a.lat.p99
        ),
        ratio: Some(ratio),
        target: "≥ 0.8".into(),
        pass: Some(ratio >= 0.8),
    });
    for (name, p) in &child_phases {
        rows.push(Row {
            figure: format!("{fig}. gostint binary as a child, {name} ({label})"),
            measured: format!(
                "{:.0}/s, p99 {:.1} ms; server CPU {:.2} ms/req",
                p.rate,
                p.lat.p99,
                per_req(p, "gostint (child)")
            ),
            baseline: format!(
                "lookup-self {:.0}/s; OpenBao CPU {:.2} ms/lookup",
                bao_c.rate,
                per_req(&bao_c, "OpenBao")
            ),
            ratio: Some(p.rate / ((bao_b.rate + bao_c.rate) / 2.0)),
            target: "info".into(),
            pass: None,
        });
    }
    Ok(())
}
