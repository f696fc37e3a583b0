//! PostgreSQL scenarios (node SIGKILL with two nodes, restarts and stops under load, a
//! connection cut after a claim), on the private services of [`crate::fixtures`]: each one
//! runs its own PostgreSQL cluster ([`PgCluster`]), so stopping it disturbs nobody else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::Scenario;
use crate::api::{is_final, short, Api};
use crate::audit::{audit, Accepted, Audit};
use crate::ctx::Ctx;
use crate::events::{remove_containers_of, Starts};
use crate::figures::Figures;
use crate::fixtures::pg::PgCluster;
use crate::fixtures::proxy::Proxy;
use crate::load::{queues, sh_job, submit};
use crate::node::{Node, NodeOpts};
use crate::rig::{no_containers_left, Rig};
use crate::sample::Sampler;

/// The message a job gets when its claim's answer was lost (issue 16 item 1).
const LOST_TRACK: &str = "gostint lost track of this job";

/// The PostgreSQL scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "pg-sigkill",
            quick: true,
            root: false,
            promise: "SIGKILL of one of two nodes on PostgreSQL under load: the other node reaps it (GOSTINT_STALE_AFTER 6 s), the dead node's running jobs end `unknown`, nothing lost or stuck, queues strictly serial, the rest runs on the survivor",
            run: pg_sigkill,
        },
        Scenario {
            name: "pg-restart",
            quick: true,
            root: false,
            promise: "a fast PostgreSQL restart under steady load: every accepted job ends `success`, nothing lost or stuck",
            run: pg_restart,
        },
        Scenario {
            name: "pg-stop-15",
            quick: false,
            root: false,
            promise: "PostgreSQL stopped 15 s under steady load: the API answers 503 `store unavailable` within GOSTINT_STORE_TIMEOUT (2 s) and readyz says the store is down; after, every accepted job ends, nothing stuck `running`",
            run: pg_stop_15,
        },
        Scenario {
            name: "pg-stop-60",
            quick: false,
            root: false,
            promise: "PostgreSQL stopped 60 s under steady load: as pg-stop-15, for a minute",
            run: pg_stop_60,
        },
        Scenario {
            name: "pg-cut-after-claim",
            quick: true,
            root: false,
            promise: "the store connection cut right after a claim committed (its answer lost; 3 targeted cuts) and every 300 ms under load: no job stuck `running`, each queue moves on",
            run: pg_cut_after_claim,
        },
    ]
}

/// A node on a private cluster, in a fresh directory.
async fn pg_rig(ctx: &Ctx, db: String, env: &[(&str, &str)]) -> anyhow::Result<Rig> {
    let dir = tempfile::Builder::new().prefix("gostint-rel-").tempdir()?;
    let mut opts = NodeOpts::with_db(dir.path(), db)?;
    for (k, v) in env {
        opts = opts.set(k, *v);
    }
    Rig::with_opts(ctx, dir, opts).await
}

/// One POST of the steady load.
struct Post {
    at: Instant,
    took: Duration,
    result: Result<Accepted, String>,
}

/// A job posted every `every` over `qs` until stopped (one POST at a time: an outage slows it).
struct Steady {
    stop: Arc<AtomicBool>,
    posts: Arc<Mutex<Vec<Post>>>,
    task: JoinHandle<()>,
}

impl Steady {
    fn start(api: Api, image: String, qs: Vec<String>, every: Duration, script: &'static str) -> Steady {
        let stop = Arc::new(AtomicBool::new(false));
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let (s, p) = (stop.clone(), posts.clone());
        let task = tokio::spawn(async move {
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                let q = qs[i % qs.len()].clone();
                i += 1;
                let at = Instant::now();
                let r = api.submit(sh_job(&image, &q, script)).await;
                let post = Post {
                    at,
                    took: at.elapsed(),
                    result: r.map(|id| Accepted { id, qname: q }).map_err(|e| format!("{e:#}")),
                };
                if let Ok(mut v) = p.lock() {
                    v.push(post);
                }
                tokio::time::sleep(every).await;
            }
        });
        Steady { stop, posts, task }
    }

    /// The first POST sent at or after `t` that was accepted: (when it was sent, its job).
    fn first_accepted_after(&self, t: Instant) -> Option<(Instant, Accepted)> {
        let v = self.posts.lock().ok()?;
        v.iter().filter(|p| p.at >= t).find_map(|p| p.result.as_ref().ok().map(|a| (p.at, a.clone())))
    }

    async fn finish(mut self) -> Vec<Post> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = (&mut self.task).await;
        std::mem::take(&mut *self.posts.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Steady {
    /// A scenario that fails half-way stops its load with it.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Adds what the POSTs saw to the figures: accepted, refused, and the refusals' reasons.
fn note_posts(f: &mut Figures, posts: &[Post]) -> Vec<Accepted> {
    let accepted: Vec<Accepted> = posts.iter().filter_map(|p| p.result.as_ref().ok().cloned()).collect();
    let refused: Vec<&String> = posts.iter().filter_map(|p| p.result.as_ref().err()).collect();
    f.note("posts", posts.len());
    f.note("refused", refused.len());
    let slowest = posts.iter().map(|p| p.took).max().unwrap_or_default();
    f.note("slowest_post_s", format!("{:.1}", slowest.as_secs_f64()));
    accepted
}

/// Final statuses as `status:count,…`.
fn statuses(a: &Audit) -> String {
    a.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
}

/// Waits until the job ends `success` (the store took work again), `limit` at most.
async fn ran_ok(api: &Api, id: &str, limit: Duration) -> anyhow::Result<()> {
    let j = api.wait_final(id, limit).await?;
    anyhow::ensure!(j["status"] == "success", "the first job accepted after the fault ended {}", short(&j));
    Ok(())
}

fn pg_sigkill(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(async move {
        let mut f = Figures::new("pg-sigkill");
        let pg = PgCluster::init().await?;
        let starts = Starts::start().await?;
        let env = [("GOSTINT_STALE_AFTER", "6s")];
        let dir_a = tempfile::Builder::new().prefix("gostint-rel-a-").tempdir()?;
        let dir_b = tempfile::Builder::new().prefix("gostint-rel-b-").tempdir()?;
        let mut opts_a = NodeOpts::with_db(dir_a.path(), pg.url())?;
        let mut opts_b = NodeOpts::with_db(dir_b.path(), pg.url())?;
        for (k, v) in env {
            opts_a = opts_a.set(k, v);
            opts_b = opts_b.set(k, v);
        }
        // Node A alone first: it claims the head job of every queue, which outlives it.
        let mut a = Node::start(ctx, opts_a).await?;
        let api_a = a.api(ctx)?;
        let qs = queues("pgkill", 6);
        let image = ctx.svc.image.clone();
        let img = image.clone();
        let heads = submit(&api_a, qs.len(), &qs, qs.len(), move |q, _| sh_job(&img, q, "echo begun; sleep 60")).await;
        f.check(heads.refused.is_empty(), format!("heads refused: {:?}", heads.refused.first()));
        let mut node_a = String::new();
        for h in &heads.accepted {
            let j = api_a.wait_until(&h.id, Duration::from_secs(90), |j| j["status"] == "running").await?;
            node_a = j["node_uuid"].as_str().unwrap_or_default().to_string();
        }
        // Node B joins; load goes to both: 36 short jobs behind the heads.
        let b = Node::start(ctx, opts_b).await?;
        let api_b = b.api(ctx)?;
        let sampler = Sampler::start(b.pid());
        let img = image.clone();
        let (ra, rb) = tokio::join!(
            submit(&api_a, 18, &qs, 3, {
                let img = img.clone();
                move |q, _| sh_job(&img, q, "sleep 0.3")
            }),
            submit(&api_b, 18, &qs, 3, move |q, _| sh_job(&img, q, "sleep 0.3"))
        );
        f.check(
            ra.refused.is_empty() && rb.refused.is_empty(),
            format!("load refused: {:?} {:?}", ra.refused.first(), rb.refused.first()),
        );
        // SIGKILL A while its heads run and the rest is queued; B keeps taking load.
        a.kill9().await?;
        let killed = Instant::now();
        let img = image.clone();
        let more = submit(&api_b, 12, &qs, 2, move |q, _| sh_job(&img, q, "sleep 0.3")).await;
        f.check(more.refused.is_empty(), format!("load after the kill refused: {:?}", more.refused.first()));
        // Recovered: every head (A's running jobs) is final.
        for h in &heads.accepted {
            api_b.wait_final(&h.id, Duration::from_secs(60)).await?;
        }
        f.recover_s = Some(killed.elapsed().as_secs_f64());
        let accepted: Vec<Accepted> =
            heads.accepted.iter().chain(&ra.accepted).chain(&rb.accepted).chain(&more.accepted).cloned().collect();
        let au = audit(&api_b, &accepted, Some(&starts), Duration::from_secs(240)).await;
        f.absorb(&au);
        tokio::time::sleep(Duration::from_secs(1)).await;
        f.codes_from(&api_a.codes);
        f.codes_from(&api_b.codes);
        f.resources(sampler.finish());
        f.note("statuses", statuses(&au));
        // A's running jobs (the heads, and any load job A ran at the kill) end `unknown`; no
        // job B ran does.
        let mut heads_unknown = 0;
        for h in &heads.accepted {
            let Some(j) = au.job(&h.id) else { continue };
            if j["status"] == "unknown" {
                heads_unknown += 1;
            } else {
                f.failures.push(format!("a job running on the killed node ended {}", short(j)));
            }
        }
        f.note("dead_node_unknown", heads_unknown);
        for j in au.jobs.values().filter(|j| j["status"] == "unknown") {
            f.check(
                j["node_uuid"] == node_a.as_str(),
                format!("a job of the surviving node ended unknown: {}", short(j)),
            );
        }
        let load_ok = au.jobs.values().filter(|j| j["status"] == "success").count();
        let load_total = accepted.len() - heads.accepted.len();
        f.note("load_success", format!("{load_ok}/{load_total}"));
        let mut b = b;
        if let Err(e) = b.stop(Duration::from_secs(60)).await {
            f.failures.push(format!("stopping node B: {e:#}"));
        }
        let ended: Vec<String> =
            accepted.iter().filter(|j| au.job(&j.id).is_some_and(is_final)).map(|j| j.id.clone()).collect();
        no_containers_left(&mut f, &ended).await;
        let ids: Vec<String> = accepted.iter().map(|a| a.id.clone()).collect();
        remove_containers_of(&ids).await;
        drop((dir_a, dir_b));
        Ok(f)
    })
}

fn pg_restart(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(async move {
        let mut f = Figures::new("pg-restart");
        let pg = PgCluster::init().await?;
        let rig = pg_rig(ctx, pg.url(), &[("GOSTINT_STORE_TIMEOUT", "2s")]).await?;
        let qs = queues("pgrestart", 8);
        let load = Steady::start(rig.api.clone(), ctx.svc.image.clone(), qs, Duration::from_millis(300), "sleep 0.2");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = pg.postmaster_pid();
        let t0 = Instant::now();
        let down = pg.restart().await?;
        f.check(pg.postmaster_pid() != before, "the PostgreSQL server was not replaced by the restart");
        f.note("pg_down_s", format!("{:.1}", down.as_secs_f64()));
        // Recovered: a job posted after the restart is accepted and runs.
        let t_up = Instant::now();
        let (sent, first) = loop {
            if let Some(x) = load.first_accepted_after(t_up) {
                break x;
            }
            anyhow::ensure!(t_up.elapsed() < Duration::from_secs(60), "no POST accepted within 60 s of the restart");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        ran_ok(&rig.api, &first.id, Duration::from_secs(60)).await?;
        f.recover_s = Some(sent.duration_since(t0).as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let posts = load.finish().await;
        let accepted = note_posts(&mut f, &posts);
        let a = rig.finish(&mut f, &accepted, Duration::from_secs(180)).await;
        f.note("statuses", statuses(&a));
        let not_ok: Vec<&Value> = a.jobs.values().filter(|j| is_final(j) && j["status"] != "success").collect();
        f.check(
            not_ok.is_empty(),
            format!("{} accepted jobs did not succeed: {:?}", not_ok.len(), not_ok.first().map(|j| short(j))),
        );
        Ok(f)
    })
}

fn pg_stop_15(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(pg_stop(ctx, "pg-stop-15", Duration::from_secs(15)))
}

fn pg_stop_60(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(pg_stop(ctx, "pg-stop-60", Duration::from_secs(60)))
}

/// `GOSTINT_STORE_TIMEOUT` in the stop scenarios, and the slack allowed on this loaded
/// machine for the answer to come back.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
const ANSWER_SLACK: Duration = Duration::from_millis(1500);

async fn pg_stop(ctx: &Ctx, name: &str, outage: Duration) -> anyhow::Result<Figures> {
    let mut f = Figures::new(name);
    let pg = PgCluster::init().await?;
    let rig = pg_rig(ctx, pg.url(), &[("GOSTINT_STORE_TIMEOUT", "2s")]).await?;
    let qs = queues("pgstop", 4);
    let load = Steady::start(rig.api.clone(), ctx.svc.image.clone(), qs, Duration::from_millis(200), "sleep 0.5");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let probe_id = load
        .first_accepted_after(Instant::now() - Duration::from_secs(4))
        .map(|(_, a)| a.id)
        .ok_or_else(|| anyhow::anyhow!("no job accepted before the outage"))?;
    pg.stop().await?;
    let stopped = Instant::now();
    // During the outage, once a second: a job view and readyz, timed.
    let (mut views, mut views_503, mut slowest) = (0u32, 0u32, Duration::ZERO);
    let (mut ready, mut ready_down) = (0u32, 0u32);
    let mut other: Vec<String> = Vec::new();
    while stopped.elapsed() < outage {
        // A job view and readyz at once, each timed.
        let view = async {
            let t = Instant::now();
            (rig.api.get(&probe_id).await, t.elapsed())
        };
        let readyz = async {
            let t = Instant::now();
            let r = match rig.api.http.get(format!("{}/v1/api/readyz", rig.api.url)).send().await {
                Ok(r) => {
                    let code = r.status().as_u16();
                    Ok((code, r.json::<Value>().await.unwrap_or(Value::Null)))
                }
                Err(e) => Err(e),
            };
            (r, t.elapsed())
        };
        let ((v, v_took), (r, r_took)) = tokio::join!(view, readyz);
        match v {
            Ok((503, body)) if body.to_string().contains("store unavailable") => views_503 += 1,
            Ok((code, body)) => other.push(format!("job view {code}: {body}")),
            Err(e) => other.push(format!("job view: {e:#}")),
        }
        match r {
            Ok((503, body)) if body["store"].as_str().is_some_and(|s| s != "ok") => ready_down += 1,
            Ok((code, body)) => other.push(format!("readyz {code}: {body}")),
            Err(e) => other.push(format!("readyz: {e:#}")),
        }
        views += 1;
        ready += 1;
        slowest = slowest.max(v_took).max(r_took);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pg.start().await?;
    let restarted = Instant::now();
    f.note("outage_s", format!("{:.1}", stopped.elapsed().as_secs_f64() - restarted.elapsed().as_secs_f64()));
    f.note("outage_views_503", format!("{views_503}/{views}"));
    f.note("outage_readyz_store_down", format!("{ready_down}/{ready}"));
    f.note("outage_slowest_answer_s", format!("{:.2}", slowest.as_secs_f64()));
    f.check(other.is_empty(), format!("{} outage answers not 503 store unavailable: {:?}", other.len(), other.first()));
    f.check(
        slowest <= STORE_TIMEOUT + ANSWER_SLACK,
        format!("an outage answer took {:.1} s (GOSTINT_STORE_TIMEOUT 2 s)", slowest.as_secs_f64()),
    );
    // Recovered: a job posted after the start is accepted and runs.
    let (sent, first) = loop {
        if let Some(x) = load.first_accepted_after(restarted) {
            break x;
        }
        anyhow::ensure!(restarted.elapsed() < Duration::from_secs(60), "no POST accepted within 60 s of the start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ran_ok(&rig.api, &first.id, Duration::from_secs(60)).await?;
    f.recover_s = Some(sent.duration_since(restarted).as_secs_f64());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posts = load.finish().await;
    let during = posts.iter().filter(|p| p.at >= stopped && p.at < restarted).count();
    let during_slow = posts.iter().filter(|p| p.at >= stopped && p.at < restarted).map(|p| p.took).max();
    f.note("outage_posts", during);
    if let Some(s) = during_slow {
        f.note("outage_slowest_post_s", format!("{:.2}", s.as_secs_f64()));
    }
    let accepted = note_posts(&mut f, &posts);
    let a = rig.finish(&mut f, &accepted, Duration::from_secs(240)).await;
    f.note("statuses", statuses(&a));
    Ok(f)
}

fn pg_cut_after_claim(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(async move {
        let mut f = Figures::new("pg-cut-after-claim");
        let pg = PgCluster::init().await?;
        let proxy = Proxy::start(pg.addr()).await?;
        let url = format!("postgres://postgres@{}/{}", proxy.addr(), crate::fixtures::pg::DATABASE);
        let rig = pg_rig(ctx, url, &[("GOSTINT_STORE_TIMEOUT", "2s")]).await?;
        let image = ctx.svc.image.clone();
        let mut accepted: Vec<Accepted> = Vec::new();
        // Targeted: the claim of a marked job commits, its answer never arrives.
        let qs = queues("pgcut", 3);
        let mut marked: Vec<(Accepted, Vec<Accepted>)> = Vec::new();
        let salt: u32 = rand::random();
        for (i, q) in qs.iter().enumerate() {
            let marker = format!("cut-marker-{salt:08x}-{i}");
            proxy.cut_on_reply(marker.as_bytes());
            let id = rig.api.submit(sh_job(&image, q, &format!("echo {marker}"))).await?;
            let m = Accepted { id, qname: q.clone() };
            let mut after = Vec::new();
            for _ in 0..2 {
                let id = rig.api.submit(sh_job(&image, q, "echo next")).await?;
                after.push(Accepted { id, qname: q.clone() });
            }
            let t = Instant::now();
            while proxy.reply_trigger_armed() {
                anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "the marked job's claim never came by");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            accepted.push(m.clone());
            accepted.extend(after.iter().cloned());
            marked.push((m, after));
        }
        let t_targeted = Instant::now();
        let mut lost_track = 0;
        for (m, after) in &marked {
            let j = rig.api.wait_final(&m.id, Duration::from_secs(60)).await?;
            if j["output"].as_str().unwrap_or_default().contains(LOST_TRACK) {
                lost_track += 1;
            }
            f.check(
                j["status"] == "failed" && j["output"].as_str().unwrap_or_default().contains(LOST_TRACK)
                    || j["status"] == "success",
                format!("a job whose claim's answer was lost ended {}", short(&j)),
            );
            for n in after {
                let j = rig.api.wait_final(&n.id, Duration::from_secs(60)).await?;
                f.check(
                    j["status"] == "success",
                    format!("the queue did not move on after a lost claim: {}", short(&j)),
                );
            }
        }
        f.recover_s = Some(t_targeted.elapsed().as_secs_f64());
        f.note("targeted_cuts", marked.len());
        f.note("lost_track_failed", lost_track);
        // Repeated: every 300 ms, every store connection is cut while 30 jobs go through.
        let stop = Arc::new(AtomicBool::new(false));
        let cutter = {
            let stop = stop.clone();
            let proxy = &proxy;
            async move {
                let mut cuts = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    proxy.cut();
                    cuts += 1;
                }
                cuts
            }
        };
        let qs2 = queues("pgcutload", 3);
        let img = image.clone();
        let load = async {
            let s = submit(&rig.api, 30, &qs2, 3, move |q, _| sh_job(&img, q, "echo ok")).await;
            // Cut while the last ones run, too.
            tokio::time::sleep(Duration::from_secs(5)).await;
            stop.store(true, Ordering::Relaxed);
            s
        };
        let (cuts, s) = tokio::join!(cutter, load);
        f.note("load_cuts", cuts);
        f.note("load_refused", s.refused.len());
        accepted.extend(s.accepted.iter().cloned());
        let stats = proxy.stats();
        f.note("connections_cut", stats.cut + stats.cut_on_reply);
        let a = rig.finish(&mut f, &accepted, Duration::from_secs(180)).await;
        f.note("statuses", statuses(&a));
        let other: Vec<&Value> = a
            .jobs
            .values()
            .filter(|j| {
                is_final(j)
                    && j["status"] != "success"
                    && !(j["status"] == "failed" && j["output"].as_str().unwrap_or_default().contains(LOST_TRACK))
            })
            .collect();
        f.note("other_failures", other.len());
        for j in other.iter().take(3) {
            eprintln!("pg-cut-after-claim: ended {}", short(j));
        }
        Ok(f)
    })
}
