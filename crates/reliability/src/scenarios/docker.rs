//! A job's container killed or removed from outside gostint (`docker kill`, `docker rm -f`).

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::Scenario;
use crate::api::short;
use crate::ctx::Ctx;
use crate::figures::Figures;
use crate::load::{queues, sh_job, submit};
use crate::rig::Rig;

/// `gostint_worker::pipeline::REMOVED_FROM_OUTSIDE`.
const REMOVED: &str = "container removed from outside gostint; exit status unknown";

/// The Docker scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "docker-kill",
            quick: true,
            root: false,
            promise: "`docker kill` of a running job's container: the job ends `failed` with 137 and its output so far; the jobs queued behind it run",
            run: docker_kill,
        },
        Scenario {
            name: "docker-rm",
            quick: true,
            root: false,
            promise: "`docker rm -f` of a running job's container: the job ends `failed`, -1, its output so far and \"container removed from outside gostint\"; the jobs queued behind it run",
            run: docker_rm,
        },
    ]
}

fn docker_kill(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(outside(ctx, "docker-kill", &["kill"]))
}

fn docker_rm(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(outside(ctx, "docker-rm", &["rm", "-f"]))
}

/// Two queues, each a long job then three short ones; the long jobs' containers get
/// `docker <verb>` once their first line is stored.
async fn outside(ctx: &Ctx, name: &str, verb: &[&str]) -> anyhow::Result<Figures> {
    let mut f = Figures::new(name);
    let rig = Rig::sqlite(ctx, &[]).await?;
    let qs = queues(name, 2);
    let image = ctx.svc.image.clone();
    let sub = submit(&rig.api, 8, &qs, 1, move |q, i| {
        sh_job(&image, q, if i < 2 { "echo begun; sleep 120" } else { "echo next" })
    })
    .await;
    f.check(sub.refused.is_empty(), format!("submissions refused: {:?}", sub.refused.first()));
    let victims: Vec<String> = sub.accepted.iter().take(2).map(|a| a.id.clone()).collect();
    let mut hit = None;
    for id in &victims {
        let j = rig
            .api
            .wait_until(id, Duration::from_secs(90), |j| j["output"] == "begun\n" && j["container_id"] != "")
            .await?;
        let cid = j["container_id"].as_str().unwrap_or_default().to_string();
        let out = tokio::process::Command::new("docker").args(verb).arg(&cid).output().await?;
        anyhow::ensure!(out.status.success(), "docker {verb:?}: {}", String::from_utf8_lossy(&out.stderr));
        hit.get_or_insert_with(Instant::now);
    }
    // Time until both victims are final.
    for id in &victims {
        rig.api.wait_final(id, Duration::from_secs(60)).await?;
    }
    f.recover_s = hit.map(|t| t.elapsed().as_secs_f64());
    let a = rig.finish(&mut f, &sub.accepted, Duration::from_secs(120)).await;
    let removed = verb[0] == "rm";
    for id in &victims {
        let Some(j) = a.job(id) else { continue };
        let out = j["output"].as_str().unwrap_or_default();
        if removed {
            f.check(
                j["status"] == "failed" && j["return_code"] == -1 && out == format!("begun\n\n{REMOVED}"),
                format!("after docker rm -f: {}", short(j)),
            );
        } else {
            f.check(
                j["status"] == "failed" && j["return_code"] == 137 && out.starts_with("begun\n"),
                format!("after docker kill: {}", short(j)),
            );
        }
    }
    let rest_ok = sub.accepted[2..].iter().filter(|x| a.job(&x.id).is_some_and(|j| j["status"] == "success")).count();
    f.check(rest_ok == 6, format!("{rest_ok} of the 6 jobs queued behind ended success"));
    Ok(f)
}
