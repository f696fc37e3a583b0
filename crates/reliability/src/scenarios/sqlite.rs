//! Node faults on SQLite: SIGKILL and restart on the same database, a SIGTERM drain with a
//! short and a long limit, and a full disk under the database.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::Value;

use super::Scenario;
use crate::api::{ms, short};
use crate::audit::Accepted;
use crate::ctx::Ctx;
use crate::figures::Figures;
use crate::load::{queues, sh_job, submit};
use crate::rig::Rig;

/// The line a job recovered from a dead node's exited container ends with
/// (`gostint_server::RECOVERED_NOTE`, start of it).
const RECOVERED: &str = "gostint node restarted after a crash";

/// The SQLite scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "sigkill-sqlite",
        quick: true,
        root: false,
        promise: "SIGKILL of a node on SQLite with jobs running and queued, restart on the same database: every accepted job ends (running ones `unknown` or their recovered outcome, with an end time), queued ones run in order, nothing lost or stuck, no container left",
        run: sigkill_sqlite,
    },
    Scenario {
        name: "drain-short",
        quick: true,
        root: false,
        promise: "SIGTERM with GOSTINT_DRAIN_TIMEOUT=4s (kill grace 30 s) while jobs run: the process exits after about 4 s, not 4 + 30; a job that finishes in the drain keeps its real outcome, one that outlives it ends `failed` / shutting down; queued jobs stay queued and run after the restart",
        run: drain_short,
    },
    Scenario {
        name: "drain-long",
        quick: false,
        root: false,
        promise: "as drain-short with GOSTINT_DRAIN_TIMEOUT=30s",
        run: drain_long,
    },
    Scenario {
        name: "disk-full",
        quick: true,
        root: true,
        promise: "the SQLite database on a small tmpfs filled up while jobs are posted and print large output: POSTs are refused (503) rather than lost, and once space is freed the same process recovers: every accepted job ends, none lost or stuck, new jobs run",
        run: disk_full,
    }]
}

fn sigkill_sqlite(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(async move {
        let mut f = Figures::new("sigkill-sqlite");
        let mut rig = Rig::sqlite(ctx, &[]).await?;
        let qs = queues("kill", 4);
        // The first job of queues 0 and 1 outlives the restart (→ `unknown`); the first of
        // queues 2 and 3 exits while the node is down (→ its outcome recovered from the
        // exited container). The rest are queued behind them. Posted one at a time, so job
        // `i` is the `i`-th accepted.
        let image = ctx.svc.image.clone();
        let sub = submit(&rig.api, 20, &qs, 1, move |q, i| {
            let script = match i {
                0 | 1 => "echo begun; sleep 60",
                2 | 3 => "echo begun; sleep 3",
                _ => "echo queued-job; sleep 1",
            };
            sh_job(&image, q, script)
        })
        .await;
        f.check(
            sub.refused.is_empty(),
            format!("{} submissions refused: {:?}", sub.refused.len(), sub.refused.first()),
        );
        anyhow::ensure!(sub.accepted.len() == 20, "only {} of 20 jobs accepted", sub.accepted.len());
        // Wait until the first job of each queue runs and has streamed its first line.
        let first: Vec<Accepted> = sub.accepted[..4].to_vec();
        let mut cids = Vec::new();
        for a in &first {
            let j = rig
                .api
                .wait_until(&a.id, Duration::from_secs(90), |j| j["status"] == "running" && j["output"] == "begun\n")
                .await?;
            cids.push(j["container_id"].as_str().unwrap_or_default().to_string());
        }
        rig.node.kill9().await?;
        let killed = Instant::now();
        // The short ones' containers exit while no node runs.
        for cid in &cids[2..] {
            let t = Instant::now();
            loop {
                let out = tokio::process::Command::new("docker")
                    .args(["inspect", "-f", "{{.State.Running}}", cid])
                    .output()
                    .await?;
                if String::from_utf8_lossy(&out.stdout).trim() == "false" {
                    break;
                }
                anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "container {cid} never exited");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        rig.restart().await?;
        f.note("restart_s", format!("{:.1}", killed.elapsed().as_secs_f64()));
        // Recovered: every job that ran at the kill has a final status.
        for a in &first {
            rig.api.wait_final(&a.id, Duration::from_secs(60)).await?;
        }
        f.recover_s = Some(killed.elapsed().as_secs_f64());
        let a = rig.finish(&mut f, &sub.accepted, Duration::from_secs(240)).await;
        let mut unknown = 0;
        let mut recovered = 0;
        for (i, acc) in first.iter().enumerate() {
            let Some(j) = a.job(&acc.id) else { continue };
            let st = j["status"].as_str().unwrap_or_default();
            let out = j["output"].as_str().unwrap_or_default();
            if st == "unknown" {
                unknown += 1;
            } else if out.contains(RECOVERED) {
                recovered += 1;
                f.check(
                    st == "success" && j["return_code"] == 0,
                    format!("a recovered job exited 0 but ended {}", short(j)),
                );
            } else {
                f.failures.push(format!("a job running at the kill ended neither unknown nor recovered: {}", short(j)));
            }
            if i < 2 {
                f.check(st == "unknown", format!("a job still running at the restart ended {st}, not unknown"));
            } else {
                f.check(
                    out.contains(RECOVERED),
                    format!("a job whose container exited while the node was down: {}", short(j)),
                );
            }
        }
        f.note("unknown", unknown);
        f.note("recovered", recovered);
        let queued_ok = sub
            .accepted
            .iter()
            .filter(|acc| !first.iter().any(|x| x.id == acc.id))
            .filter(|acc| a.job(&acc.id).is_some_and(|j| j["status"] == "success"))
            .count();
        f.check(queued_ok == 16, format!("{queued_ok} of the 16 queued jobs ended success"));
        check_end_times(&mut f, a.jobs.values());
        Ok(f)
    })
}

fn drain_short(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(drain(ctx, "drain-short", 4))
}

fn drain_long(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(drain(ctx, "drain-long", 30))
}

/// `gostint_worker::pipeline::SHUTDOWN_KILLED`.
const SHUTDOWN_KILLED: &str = "gostint node shutting down: job killed";

/// Three queues: a job that ends within the drain limit, one that ignores SIGTERM and
/// outlives it, one that ends in the drain too; two jobs queued behind each.
async fn drain(ctx: &Ctx, name: &str, limit_s: u64) -> anyhow::Result<Figures> {
    let mut f = Figures::new(name);
    let limit = format!("{limit_s}s");
    let mut rig = Rig::sqlite(ctx, &[("GOSTINT_DRAIN_TIMEOUT", &limit), ("GOSTINT_KILL_GRACE", "30s")]).await?;
    let qs = queues(name, 3);
    let image = ctx.svc.image.clone();
    let finishes = (limit_s / 2).max(1);
    let outlives = limit_s * 3;
    let sub = submit(&rig.api, 9, &qs, 1, move |q, i| {
        let script = match i {
            0 | 2 => format!("echo begun; sleep {finishes}; echo done"),
            1 => format!("trap '' TERM; echo begun; i=0; while [ $i -lt {outlives} ]; do sleep 1; i=$((i+1)); done"),
            _ => "echo queued-job".to_string(),
        };
        sh_job(&image, q, &script)
    })
    .await;
    f.check(sub.refused.is_empty(), format!("submissions refused: {:?}", sub.refused.first()));
    let first: Vec<String> = sub.accepted.iter().take(3).map(|a| a.id.clone()).collect();
    for id in &first {
        rig.api.wait_until(id, Duration::from_secs(90), |j| j["output"] == "begun\n").await?;
    }
    let term = Instant::now();
    rig.node.signal("TERM").await?;
    let (status, took) = rig.node.wait_exit(Duration::from_secs(limit_s + 60)).await?;
    let exited_ms = now_ms();
    f.note("exit_s", format!("{:.1}", took.as_secs_f64()));
    f.check(status.success(), format!("exit status {status}"));
    let lo = limit_s as f64 * 0.75;
    let hi = limit_s as f64 + 8.0;
    f.check(
        (lo..hi).contains(&took.as_secs_f64()),
        format!(
            "exited {:.1} s after SIGTERM with a {limit_s} s drain limit (expected {lo:.0}–{hi:.0} s)",
            took.as_secs_f64()
        ),
    );
    rig.restart().await?;
    f.recover_s = Some(term.elapsed().as_secs_f64());
    let a = rig.finish(&mut f, &sub.accepted, Duration::from_secs(180)).await;
    for id in [&first[0], &first[2]] {
        if let Some(j) = a.job(id) {
            f.check(
                j["status"] == "success" && j["output"] == "begun\ndone\n",
                format!("a job that ended within the drain: {}", short(j)),
            );
        }
    }
    if let Some(j) = a.job(&first[1]) {
        f.check(
            j["status"] == "failed" && j["output"].as_str().is_some_and(|o| o.ends_with(SHUTDOWN_KILLED)),
            format!("the job that outlived the drain: {}", short(j)),
        );
    }
    let mut early = 0;
    for acc in &sub.accepted[3..] {
        if let Some(j) = a.job(&acc.id) {
            f.check(j["status"] == "success", format!("a queued job after the restart: {}", short(j)));
            if ms(&j["started"]) < exited_ms - 1000 {
                early += 1;
            }
        }
    }
    f.check(early == 0, format!("{early} queued jobs were claimed during the drain"));
    check_end_times(&mut f, a.jobs.values());
    Ok(f)
}

/// A tmpfs mounted for a scenario, unmounted (lazily) at drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    async fn mount(at: &std::path::Path, size: &str) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        let out = tokio::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .await?;
        anyhow::ensure!(out.status.success(), "mount tmpfs: {}", String::from_utf8_lossy(&out.stderr));
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Free bytes (df).
    fn free(&self) -> u64 {
        let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(&self.0).output();
        out.ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()))
            .unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn disk_full(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(async move {
        let mut f = Figures::new("disk-full");
        let dir = tempfile::Builder::new().prefix("gostint-rel-").tempdir()?;
        let fs = Tmpfs::mount(&dir.path().join("mnt"), "8m").await?;
        let opts = crate::node::NodeOpts::with_db(dir.path(), format!("sqlite://{}/gostint.db", fs.0.display()))?;
        let rig = Rig::with_opts(ctx, dir, opts).await?;
        let pid = rig.node.pid();
        // Leave about 512 KiB.
        let filler = fs.0.join("filler");
        std::fs::write(&filler, vec![0u8; fs.free().saturating_sub(512 << 10) as usize])?;
        let qs = queues("full", 4);
        let image = ctx.svc.image.clone();
        let pad = "p".repeat(64 << 10);
        let sub = submit(&rig.api, 30, &qs, 4, move |q, _| {
            serde_json::json!({
                "qname": q,
                "container_image": image,
                "run": ["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; echo; echo done", pad],
            })
        })
        .await;
        let refused_503 = sub.refused.iter().filter(|r| r.contains("503")).count();
        let other: Vec<&String> = sub.refused.iter().filter(|r| !r.contains("503")).collect();
        f.note("accepted_while_full", sub.accepted.len());
        f.note("refused_503", refused_503);
        f.check(refused_503 > 0, "the disk never filled: no POST was refused");
        f.check(other.is_empty(), format!("POSTs refused otherwise than 503: {:?}", other.first()));
        // The accepted jobs run (and fail to store their output) for a while.
        tokio::time::sleep(Duration::from_secs(5)).await;
        std::fs::remove_file(&filler)?;
        let freed = Instant::now();
        // Recovered: a new job is accepted and ends.
        let image = ctx.svc.image.clone();
        let mut after = Vec::new();
        let t = Instant::now();
        let first_after = loop {
            match rig.api.submit(sh_job(&image, "full-after", "echo after")).await {
                Ok(id) => break id,
                Err(e) if t.elapsed() > Duration::from_secs(60) => {
                    anyhow::bail!("no POST accepted 60 s after freeing space: {e:#}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let j = rig.api.wait_final(&first_after, Duration::from_secs(120)).await?;
        f.recover_s = Some(freed.elapsed().as_secs_f64());
        f.check(j["status"] == "success", format!("the first job after freeing space: {}", short(&j)));
        after.push(Accepted { id: first_after, qname: "full-after".into() });
        let image = ctx.svc.image.clone();
        let sub2 = submit(&rig.api, 8, &qs, 4, move |q, _| sh_job(&image, q, "echo after")).await;
        f.check(sub2.refused.is_empty(), format!("POSTs refused after freeing space: {:?}", sub2.refused.first()));
        after.extend(sub2.accepted);
        f.check(
            rig.node.pid() == pid && crate::sample::sample(pid).is_some(),
            "the node did not keep running through the full disk",
        );
        let mut all = sub.accepted.clone();
        all.extend(after.iter().cloned());
        let a = rig.finish(&mut f, &all, Duration::from_secs(240)).await;
        f.note("statuses", format!("{:?}", a.statuses));
        let after_ok = after.iter().filter(|x| a.job(&x.id).is_some_and(|j| j["status"] == "success")).count();
        f.check(
            after_ok == after.len(),
            format!("{after_ok} of {} jobs posted after freeing space ended success", after.len()),
        );
        check_end_times(&mut f, a.jobs.values());
        drop(fs);
        Ok(f)
    })
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Every final job carries its end time.
pub(crate) fn check_end_times<'a>(f: &mut Figures, jobs: impl Iterator<Item = &'a Value>) {
    let missing: Vec<String> = jobs
        .filter(|j| crate::api::is_final(j) && ms(&j["ended"]) == 0)
        .map(|j| format!("{} ({})", j["_id"].as_str().unwrap_or_default(), j["status"]))
        .collect();
    f.check(missing.is_empty(), format!("{} final jobs without an end time: {:?}", missing.len(), missing.first()));
}
