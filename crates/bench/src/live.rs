//! Figures 7 and 8: the client and live output (issue 13).
//!
//! - 7: `gostint-client run` with default flags (submit, then follow the job's SSE stream to
//!   its end) vs `docker run --rm` of the same image and command, paired and alternated in
//!   one session; median wall time of each and the ratio.
//! - 8: stream delivery delay: a job prints lines stamped with its own wall clock
//!   (busybox `adjtimex`: seconds and microseconds; its `date` has no `%N`), an SSE client
//!   on the same machine reads them; delay = arrival − stamp.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::report::{now_ms, over, stats, Row};
use crate::target::{client_bin, InProcess};

/// The trivial command both sides run.
const TRIVIAL: &str = "true";

async fn docker_run(image: &str) -> anyhow::Result<()> {
    let st = tokio::process::Command::new("docker")
        .args(["run", "--rm", "--label", "gostint.bench=fig7", image, TRIVIAL])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await?;
    if !st.success() {
        bail!("docker run failed");
    }
    Ok(())
}

/// `gostint-client --url … --ca-cert … --image IMAGE --run '["true"]'`, a requestor's token
/// in `VAULT_TOKEN` (default flags otherwise: it makes its own wrapped secret id, submits,
/// streams the output and exits with the job's code).
async fn client_run(b: &InProcess, client: &std::path::Path, token: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(client)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VAULT_ADDR", &b.svc.vault_addr)
        .env("VAULT_TOKEN", token)
        .args(["--url", &b.t.url, "--ca-cert"])
        .arg(b.cert())
        .args(["--image", &b.svc.image, "--run", &format!("[\"{TRIVIAL}\"]")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await?;
    if !out.status.success() {
        bail!("gostint-client run exited {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub(crate) async fn fig7(b: &InProcess, runs: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 7. gostint-client run (default flags) vs docker run --rm, {runs} pairs, alternating order");
    let client = client_bin()?;
    let token = b.req.token(None, &["gostint-requestor"]).await;
    const WARM: usize = 2;
    let (mut g, mut d) = (Vec::new(), Vec::new());
    for i in 0..runs + WARM {
        for docker in [i % 2 == 1, i % 2 == 0] {
            let t = Instant::now();
            if docker {
                docker_run(&b.svc.image).await?;
            } else {
                client_run(b, &client, &token).await?;
            }
            let el = t.elapsed().as_secs_f64() * 1000.0;
            if i >= WARM {
                if docker { &mut d } else { &mut g }.push(el);
            }
            // Let gostint remove the container and revoke tokens outside the next timing.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let (gs, ds) = (stats(g), stats(d));
    let ratio = gs.median / ds.median;
    println!(
        "   gostint-client run: median {:.0} ms (p10 {:.0}, p90 {:.0}); docker run --rm: median {:.0} ms (p10 {:.0}, p90 {:.0}); ratio {ratio:.2}",
        gs.median, gs.p10, gs.p90, ds.median, ds.p10, ds.p90
    );
    if ratio > 1.1 {
        println!("   MISS: {} over the 1.1× target", over(ratio, 1.1));
    }
    rows.push(Row {
        figure: "7. gostint-client run (default flags), trivial job, sequential (median ms)".into(),
        measured: format!("{:.0} (p10 {:.0}, p90 {:.0}; n={})", gs.median, gs.p10, gs.p90, gs.n),
        baseline: format!("docker run --rm {:.0} (p10 {:.0}, p90 {:.0})", ds.median, ds.p10, ds.p90),
        ratio: Some(ratio),
        target: "≤ 1.1".into(),
        pass: Some(ratio <= 1.1),
    });
    Ok(())
}

/// The job of figure 8: `lines` lines `T <seconds>.<microseconds>`, `gap` apart.
fn stamping_job(b: &InProcess, lines: usize, gap: &str, wrap: &str) -> serde_json::Value {
    let script = format!(
        "i=0; while [ $i -lt {lines} ]; do adjtimex | awk '/tv_sec/{{s=$2}} /tv_usec/{{u=$2}} END{{printf \"T %s.%06d\\n\", s, u}}'; i=$((i+1)); sleep {gap}; done"
    );
    json!({"qname": format!("fig8-{}", uuid::Uuid::new_v4().simple()), "container_image": b.svc.image,
           "run": ["sh", "-c", script], "wrap_secret_id": wrap})
}

/// Follows job `id`'s stream to its end; each `T` line's delay in ms.
async fn delays(b: &InProcess, id: &str) -> anyhow::Result<Vec<f64>> {
    let mut resp =
        b.t.http.get(format!("{}/v1/api/job/{id}/stream", b.t.url)).header("X-Auth-Token", &b.t.token).send().await?;
    if !resp.status().is_success() {
        bail!("stream answered {}", resp.status());
    }
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut event = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let chunk = tokio::time::timeout_at(deadline.into(), resp.chunk()).await.context("stream too long")??;
        let Some(chunk) = chunk else { bail!("the stream closed without an end event") };
        let arrived = now_ms();
        buf.extend_from_slice(&chunk);
        while let Some(nl) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line[..nl]).into_owned();
            if let Some(name) = line.strip_prefix("event: ") {
                if name == "end" {
                    return Ok(out);
                }
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: T ") {
                if event == "stdout" {
                    let stamp: f64 = data.trim().parse().with_context(|| format!("stamp {data:?}"))?;
                    out.push(arrived - stamp * 1000.0);
                }
            }
        }
    }
}

pub(crate) async fn fig8(b: &InProcess, jobs: usize, lines: usize, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 8. stream delivery delay: {jobs} jobs × {lines} stamped lines 0.3 s apart, read over SSE (HTTPS, SQLite node)");
    let mut all = Vec::new();
    for wrap in b.wraps(jobs).await {
        let id = b.t.post(&stamping_job(b, lines, "0.3", &wrap)).await?;
        let got = delays(b, &id).await?;
        if got.len() != lines {
            bail!("job {id}: {} of {lines} stamped lines came over the stream", got.len());
        }
        all.extend(got);
    }
    let s = stats(all);
    println!(
        "   delay line written → read by the SSE client: median {:.0} ms, p95 {:.0} ms, p10 {:.0}, max-ish p99 {:.0} (n={})",
        s.median, s.p95, s.p10, s.p99, s.n
    );
    rows.push(Row {
        figure: "8. stream delivery delay, job line → SSE client (ms)".into(),
        measured: format!("median {:.0}, p95 {:.0} (n={})", s.median, s.p95, s.n),
        baseline: "append batches ≤ 250 ms".into(),
        ratio: Some(s.median / 300.0),
        target: "median ≤ 300 ms".into(),
        pass: Some(s.median <= 300.0),
    });
    Ok(())
}
