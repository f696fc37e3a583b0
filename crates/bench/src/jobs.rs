//! Figures 1–3: jobs through containers (per-job overhead, parallel throughput, dispatch
//! delay), and the job path's engine and Vault calls timed one by one.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gostint_core::{ContainerRuntime, ContainerSpec, JobVault};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cpu::{self, Usage};
use crate::events::Events;
use crate::report::{median, now_ms, over, stats, Row};
use crate::stamps;
use crate::target::{trivial, InProcess, FINAL};

/// A job stamp of the API (`…T…Z`, millisecond precision) in ms since the epoch.
fn api_ms(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e6)
        .unwrap_or(f64::NAN)
}

/// `docker run --rm` of the test image running `true`, the CLI timed as a whole process.
async fn docker_run(image: &str, label: &str) -> anyhow::Result<()> {
    let st = tokio::process::Command::new("docker")
        .args(["run", "--rm", "--label", &format!("gostint.bench={label}"), image, "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    if !st.success() {
        bail!("docker run failed");
    }
    Ok(())
}

/// Named samples, printed as medians in insertion order.
#[derive(Default)]
struct Phases(Vec<(&'static str, Vec<f64>)>);

impl Phases {
    fn push(&mut self, name: &'static str, v: f64) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, s)) => s.push(v),
            None => self.0.push((name, vec![v])),
        }
    }
    fn print(&self, title: &str) {
        println!("   {title} (medians, ms):");
        for (n, v) in &self.0 {
            let s = stats(v.clone());
            println!("     {n:<52} {:>7.1}  (p10 {:.1}, p90 {:.1})", s.median, s.p10, s.p90);
        }
    }
}

fn uniq(tag: &str) -> String {
    format!("{tag}-{}", uuid::Uuid::new_v4().simple())
}

// ------------------------------------------------------------------ figure 1

pub(crate) async fn fig1(b: &InProcess, ev: &Events, runs: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 1. per-job overhead: {runs} sequential trivial jobs, gostint vs docker run --rm (interleaved, alternating order)");
    const WARM: usize = 2;
    let wraps = b.wraps(runs + WARM).await;
    let (mut g, mut d) = (Vec::new(), Vec::new());
    let (mut gp, mut dp) = (Phases::default(), Phases::default());
    let (mut gcpu, mut dcpu) = (Usage::default(), Usage::default());
    let q = uniq("overhead");
    for (i, wrap) in wraps.iter().enumerate() {
        let keep = i >= WARM;
        for docker in [i % 2 == 1, i % 2 == 0] {
            if docker {
                let label = uniq("fig1");
                let snap = cpu::snap();
                let t0 = now_ms();
                let t = Instant::now();
                docker_run(&b.svc.image, &label).await?;
                let el = t.elapsed().as_secs_f64() * 1000.0;
                let exit = now_ms();
                let u = snap.since(None);
                if keep {
                    d.push(el);
                    dcpu.add(&u);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Some(c) = ev.bench(&label) {
                        dp.push("CLI spawned → container created", c.t("create") - t0);
                        dp.push("created → started (attach, start)", c.t("start") - c.t("create"));
                        dp.push("started → died (the container runs `true`)", c.t("die") - c.t("start"));
                        dp.push("died → destroyed (--rm)", c.t("destroy") - c.t("die"));
                        dp.push("destroyed → CLI exited", exit - c.t("destroy"));
                    }
                }
            } else {
                let snap = cpu::snap();
                let t0 = now_ms();
                let t = Instant::now();
                let id = b.t.post(&trivial(&b.svc, &q, wrap)).await?;
                let posted = now_ms();
                let j = b.t.wait(&id, Duration::from_millis(5)).await?;
                let el = t.elapsed().as_secs_f64() * 1000.0;
                let seen = now_ms();
                // Not timed: gostint removes the container and revokes the job token after
                // recording the outcome; that must not slow the next measurement.
                ev.settle(std::slice::from_ref(&id), Duration::from_secs(10)).await;
                let u = snap.since(None);
                if keep {
                    g.push(el);
                    gcpu.add(&u);
                    let (sub, st, end) = (api_ms(&j["submitted"]), api_ms(&j["started"]), api_ms(&j["ended"]));
                    gp.push("POST answered (TLS, lookup-self, insert)", posted - t0);
                    gp.push("submitted → claimed", st - sub);
                    if let Some(c) = ev.job(&id) {
                        gp.push("claimed → container created (unwrap, login, image, create)", c.t("create") - st);
                        gp.push("created → started (kill re-read, start)", c.t("start") - c.t("create"));
                        gp.push("started → died (the container runs `true`)", c.t("die") - c.t("start"));
                        gp.push("died → recorded (wait, logs, finish)", end - c.t("die"));
                        gp.push("recorded → seen by the poll (5 ms)", seen - end);
                        gp.push("(after: recorded → container destroyed)", c.t("destroy") - end);
                    }
                }
            }
        }
    }
    let (gs, ds) = (stats(g), stats(d));
    println!(
        "   gostint ms: median {:.0} p10 {:.0} p90 {:.0}; docker run ms: median {:.0} p10 {:.0} p90 {:.0}",
        gs.median, gs.p10, gs.p90, ds.median, ds.p10, ds.p90
    );
    gp.print("gostint job, requestor's view and engine events");
    dp.print("docker run --rm, CLI and engine events");
    println!("   CPU per gostint job (incl. its clean-up): {}", gcpu.describe(gs.n as f64, "job"));
    println!("   CPU per docker run:                      {}", dcpu.describe(ds.n as f64, "run"));
    let ratio = gs.median / ds.median;
    rows.push(Row {
        figure: "1. per-job overhead, trivial job, sequential (median ms)".into(),
        measured: format!("{:.0} (p10 {:.0}, p90 {:.0}; n={})", gs.median, gs.p10, gs.p90, gs.n),
        baseline: format!("docker run --rm {:.0} (p10 {:.0}, p90 {:.0})", ds.median, ds.p10, ds.p90),
        ratio: Some(ratio),
        target: "≤ 1.3".into(),
        pass: Some(ratio <= 1.3),
    });
    if ratio > 1.3 {
        println!("   MISS by {}", over(ratio, 1.3));
    }
    rows.push(Row::info(
        "1. CPU per job, whole machine (ms)",
        format!("{:.0}", gcpu.machine * 1000.0 / gs.n as f64),
        format!("docker run {:.0}", dcpu.machine * 1000.0 / ds.n as f64),
    ));
    Ok(())
}

/// The job path's engine and Vault calls one by one, as the pipeline makes them for a
/// trivial plain-mode job: bound files (the default, once the image is known) and the copy
/// path (the first job of an image, jobs with content, `GOSTINT_JOB_FILES=copy`).
/// Diagnostic for figures 1 and 2.
pub(crate) async fn call_costs(b: &InProcess, n: usize) -> anyhow::Result<()> {
    println!("== 1b. the job path's calls timed one by one ({n} times; same engine and OpenBao)");
    let rt = gostint_runner_docker::DockerRuntime::connect().await.context("docker")?;
    let vault = &b.req.vault;
    let dir = tempfile::tempdir()?;
    let mut t: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    macro_rules! time {
        ($name:expr, $e:expr) => {{
            let s = Instant::now();
            let r = $e;
            t.entry($name).or_default().push(s.elapsed().as_secs_f64() * 1000.0);
            r
        }};
    }
    for i in 0..n {
        let wrap = b.req.wrapped_secret_id().await;
        let data = time!("vault 1 unwrap", vault.unwrap(&wrap).await?);
        let secret_id = data.get("secret_id").and_then(|v| v.as_str()).context("secret_id")?.to_string();
        let token =
            time!("vault 2 approle login", vault.approle_login(&b.svc.role_id, &secret_id).await?).context("token")?;
        time!("vault 0 lookup-self (per API call)", vault.lookup_self(&b.t.token).await?);
        let image = time!("bind 1 image inspect", rt.image_id(&b.svc.image).await?).context("image")?;
        let mut spec = ContainerSpec {
            image: image.clone(),
            cmd: vec!["true".into()],
            user: "2001:2001".into(),
            env: vec![format!("VAULT_TOKEN={token}")],
            labels: vec![("gostint.bench".into(), uniq("calls"))],
            ..Default::default()
        };
        // Bound files: written to a directory the engine sees, bound at create.
        let job_dir = dir.path().join(format!("job{i}"));
        std::fs::create_dir(&job_dir)?;
        for (f, body) in [("f0", "---\n"), ("f1", "root:x:0:0::/:/bin/sh\n")] {
            std::fs::write(job_dir.join(f), body)?;
        }
        spec.files = [("f0", "/secrets.yml"), ("f1", "/etc/passwd")]
            .iter()
            .map(|(f, c)| gostint_core::BindFile {
                host: job_dir.join(f).to_string_lossy().into_owned(),
                container: (*c).into(),
            })
            .collect();
        let id = time!("bind 2 create (2 read-only binds)", rt.create(&spec).await?);
        time!("bind 3 start", rt.start(&id).await?);
        time!("bind 4 wait", rt.wait(&id).await?);
        time!("bind 5 logs", rt.logs(&id, false, 1 << 20).await?);
        time!("bind 6 remove", rt.remove(&id).await?);
        // The copy path: files read from the created container, then copied in.
        spec.files.clear();
        let id = time!("copy 1 create", rt.create(&spec).await?);
        time!("copy 2 archive GET /gostint_image.yml (404) + inspect", rt.read_file(&id, "/gostint_image.yml").await?);
        let pw = time!("copy 3 archive GET /etc/passwd", rt.read_file(&id, "/etc/passwd").await?).unwrap_or_default();
        let tar =
            gostint_core::content::files_tar(&[("secrets.yml", b"---\n", 0o444), ("etc/passwd", &pw, 0o444)], 0, 0);
        time!("copy 4 archive PUT (secrets + passwd)", rt.put_archive(&id, tar).await?);
        time!("copy 5 start", rt.start(&id).await?);
        time!("copy 6 wait", rt.wait(&id).await?);
        time!("copy 7 remove", rt.remove(&id).await?);
        time!("vault 3 revoke-self", vault.revoke_self(&token).await?);
    }
    let (mut bind, mut copy, mut vault_sum) = (0.0, 0.0, 0.0);
    for (k, v) in &t {
        let m = median(v.clone());
        if k.starts_with("bind") {
            bind += m;
        } else if k.starts_with("copy") {
            copy += m;
        } else if !k.contains("lookup") {
            vault_sum += m;
        }
        println!("     {k:<58} {m:>7.1} ms");
    }
    println!(
        "     sum of medians: engine, bound files {bind:.0} ms; engine, copy path {copy:.0} ms (logs not repeated); \
         vault (unwrap, login, revoke) {vault_sum:.0} ms"
    );
    Ok(())
}

// ------------------------------------------------------------------ figure 2

/// Polls the pending jobs round-robin, one request at a time every `every`, so that the
/// polling load stays bounded whatever the number of jobs; returns each job's view.
async fn wait_all(b: &InProcess, ids: &[String], every: Duration) -> anyhow::Result<Vec<Value>> {
    let mut pending: Vec<usize> = (0..ids.len()).collect();
    let mut out = vec![Value::Null; ids.len()];
    let t = Instant::now();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &i in &pending {
            let j: Value =
                b.t.http
                    .get(format!("{}/v1/api/job/{}", b.t.url, ids[i]))
                    .header("X-Auth-Token", &b.t.token)
                    .send()
                    .await?
                    .json()
                    .await?;
            let st = j["status"].as_str().unwrap_or_default();
            if FINAL.contains(&st) {
                if st != "success" {
                    bail!("job {} ended {st}: {}", ids[i], j["output"]);
                }
                out[i] = j;
            } else {
                still.push(i);
            }
            tokio::time::sleep(every).await;
        }
        pending = still;
        anyhow::ensure!(t.elapsed() < Duration::from_secs(300), "jobs not final after 300 s");
    }
    Ok(out)
}

pub(crate) async fn fig2(
    b: &InProcess,
    ev: &Events,
    n: usize,
    repeats: usize,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    println!("== 2. parallel throughput: {n} trivial jobs over {n} queues vs {n} docker run --rm, all at once, {repeats} repeat(s), alternating order");
    let mut ratios = Vec::new();
    let (mut gw, mut dw) = (Vec::new(), Vec::new());
    let (mut gcpu, mut dcpu) = (Usage::default(), Usage::default());
    for r in 0..repeats {
        for docker in [r % 2 == 1, r % 2 == 0] {
            if docker {
                let snap = cpu::snap();
                let t = Instant::now();
                let labels: Vec<String> = (0..n).map(|_| uniq("fig2")).collect();
                futures::future::try_join_all(labels.iter().map(|l| docker_run(&b.svc.image, l))).await?;
                let d = t.elapsed().as_secs_f64();
                dcpu.add(&snap.since(None));
                println!("   docker run ×{n}: {d:.2} s ({:.1} containers/s)", n as f64 / d);
                dw.push(d);
            } else {
                let wraps = b.wraps(n).await;
                let tag = uniq("par");
                let jobs: Vec<Value> =
                    wraps.iter().enumerate().map(|(i, w)| trivial(&b.svc, &format!("{tag}-{i}"), w)).collect();
                let snap = cpu::snap();
                let t0 = now_ms();
                let t = Instant::now();
                let ids = futures::future::try_join_all(jobs.iter().map(|j| b.t.post(j))).await?;
                let views = wait_all(b, &ids, Duration::from_millis(5)).await?;
                let g = t.elapsed().as_secs_f64();
                let last_end = views.iter().map(|j| api_ms(&j["ended"])).fold(f64::NAN, f64::max);
                let settled = ev.settle(&ids, Duration::from_secs(60)).await;
                let u = snap.since(None);
                gcpu.add(&u);
                println!(
                    "   gostint: {g:.2} s ({:.1} jobs/s); last job recorded at {:.2} s; clean-up done: {settled}",
                    n as f64 / g,
                    (last_end - t0) / 1000.0
                );
                gw.push(g);
            }
        }
        ratios.push(gw[gw.len() - 1] / dw[dw.len() - 1]);
    }
    let jobs = (n * repeats) as f64;
    println!("   CPU per gostint job (incl. clean-up): {}", gcpu.describe(jobs, "job"));
    println!("   CPU per docker run:                   {}", dcpu.describe(jobs, "run"));
    let ratio = median(ratios.clone());
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
    rows.push(Row {
        figure: format!("2. {n} trivial jobs over {n} queues at once (wall s)"),
        measured: format!("{} s", list(&gw)),
        baseline: format!("{n}× docker run --rm at once: {} s", list(&dw)),
        ratio: Some(ratio),
        target: "≤ 1.3".into(),
        pass: Some(ratio <= 1.3),
    });
    if ratio > 1.3 {
        println!("   ratios {}; MISS by {}", list(&ratios), over(ratio, 1.3));
    }
    rows.push(Row::info(
        "2. CPU per job, whole machine (ms)",
        format!("{:.0}", gcpu.machine * 1000.0 / jobs),
        format!("docker run {:.0}", dcpu.machine * 1000.0 / jobs),
    ));
    Ok(())
}

// ------------------------------------------------------------------ figure 3

pub(crate) async fn fig3(b: &InProcess, ev: &Events, pairs: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 3. dispatch delay: {pairs} queues with 2 jobs each (job 2 waits for job 1); claim stamps from the store, container creation from docker events");
    let (mut freed_claim, mut freed_create, mut idle_claim, mut idle_create) = (vec![], vec![], vec![], vec![]);
    let (mut destroy_to_claim, mut claim_to_create) = (vec![], vec![]);
    let (mut freed_request, mut idle_request, mut engine_create) = (vec![], vec![], vec![]);
    let tag = uniq("delay");
    for i in 0..pairs {
        let w = b.wraps(2).await;
        let q = format!("{tag}-{i}");
        let a = b.t.post(&trivial(&b.svc, &q, &w[0])).await?;
        let c = b.t.post(&trivial(&b.svc, &q, &w[1])).await?;
        let ja = b.t.wait(&a, Duration::from_millis(10)).await?;
        let jc = b.t.wait(&c, Duration::from_millis(10)).await?;
        ev.settle(&[a.clone(), c.clone()], Duration::from_secs(10)).await;
        let (ea, ec) = (ev.job(&a).unwrap_or_default(), ev.job(&c).unwrap_or_default());
        let a_end = api_ms(&ja["ended"]);
        idle_claim.push(api_ms(&ja["started"]) - api_ms(&ja["submitted"]));
        idle_create.push(ea.t("create") - api_ms(&ja["submitted"]));
        freed_claim.push(api_ms(&jc["started"]) - a_end);
        freed_create.push(ec.t("create") - a_end);
        destroy_to_claim.push(api_ms(&jc["started"]) - ea.t("destroy"));
        claim_to_create.push(ec.t("create") - api_ms(&jc["started"]));
        if let (Some(ra), Some(rc)) = (stamps::create_requested(&a), stamps::create_requested(&c)) {
            idle_request.push(ra - api_ms(&ja["submitted"]));
            freed_request.push(rc - a_end);
            engine_create.push(ea.t("create") - ra);
            engine_create.push(ec.t("create") - rc);
        }
    }
    let (fc, ic, fcr, icr) = (stats(freed_claim), stats(idle_claim), stats(freed_create), stats(idle_create));
    let (dtc, ctc) = (stats(destroy_to_claim), stats(claim_to_create));
    println!("   queue freed → next job claimed:        median {:.1} ms, p99 {:.1} ms", fc.median, fc.p99);
    println!("   queue freed → next container created:  median {:.1} ms, p99 {:.1} ms", fcr.median, fcr.p99);
    println!("   idle node: job posted → claimed:       median {:.1} ms, p99 {:.1} ms", ic.median, ic.p99);
    println!("   idle node: job posted → created:       median {:.1} ms, p99 {:.1} ms", icr.median, icr.p99);
    println!("   why: job 1's container destroyed → job 2 claimed: median {:.1} ms (p10 {:.1}, p90 {:.1}); claimed → created: median {:.1} ms", dtc.median, dtc.p10, dtc.p90, ctc.median);
    let (fr, ir, ec) = (stats(freed_request), stats(idle_request), stats(engine_create));
    println!("   queue freed → create requested:        median {:.1} ms, p99 {:.1} ms (n={})", fr.median, fr.p99, fr.n);
    println!("   idle node: posted → create requested:  median {:.1} ms, p99 {:.1} ms", ir.median, ir.p99);
    println!(
        "   the engine's own create (requested → docker's create event): median {:.1} ms (p10 {:.1}, p90 {:.1})",
        ec.median, ec.p10, ec.p90
    );
    let row = |figure: &str, s: crate::report::Stats, baseline: &str| Row {
        figure: figure.into(),
        measured: format!("median {:.1}, p99 {:.1} (n={})", s.median, s.p99, s.n),
        baseline: baseline.into(),
        ratio: Some(s.median / 500.0),
        target: "median < 20 ms".into(),
        pass: Some(s.median < 20.0),
    };
    rows.push(row(
        "3. queue freed → next container's create requested (ms)",
        fr,
        "the original's 1 s poll: ≈500 median",
    ));
    rows.push(row("3. idle node: posted → create requested (ms)", ir, "≈500"));
    rows.push(row(
        "3. queue freed → next container created (ms)",
        fcr,
        &format!("≈500; the engine's create alone: median {:.1}", ec.median),
    ));
    rows.push(row("3. queue freed → next job claimed (ms)", fc, "≈500"));
    rows.push(row("3. idle node: posted → container created (ms)", icr, "≈500"));
    rows.push(row("3. idle node: posted → claimed (ms)", ic, "≈500"));
    Ok(())
}
