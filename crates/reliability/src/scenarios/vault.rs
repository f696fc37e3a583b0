//! OpenBao scenarios (stalls with short and long client timeouts). The shared OpenBao is never
//! stalled: the node under test talks to it through a [`Proxy`] that stops forwarding, while
//! the requestor side (tokens, wrapped secret ids) talks to the real address.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::Value;

use super::Scenario;
use crate::api::short;
use crate::audit::Accepted;
use crate::ctx::Ctx;
use crate::figures::Figures;
use crate::fixtures::proxy::Proxy;
use crate::load::{queues, sh_job, submit};
use crate::rig::Rig;

/// The failure a job gets when its wrapping token was spent by an unwrap that timed out
/// (issue 16 item 2).
const SPENT: &str = "spent by an earlier unwrap attempt";
/// The failure a job gets when Vault never answered the unwrap.
const NO_ANSWER: &str = "did not answer the unwrap";
/// How long OpenBao is stalled.
const STALL: Duration = Duration::from_secs(20);

/// The OpenBao scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "vault-stall-short",
            quick: true,
            root: false,
            promise: "OpenBao stalled 20 s (connections held, nothing forwarded) while jobs are being prepared, VAULT_CLIENT_TIMEOUT=5s: no job ends `notauthorised`, gostint_interception_alerts_total stays 0, jobs succeed after the stall or fail saying the token was spent by an earlier attempt (not an interception) or that Vault did not answer",
            run: stall_short,
        },
        Scenario {
            name: "vault-stall-long",
            quick: false,
            root: false,
            promise: "the same stall with VAULT_CLIENT_TIMEOUT=60s: the calls wait the stall out, no `notauthorised`, no interception alert",
            run: stall_long,
        },
    ]
}

fn stall_short(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(stall(ctx, "vault-stall-short", "5s"))
}

fn stall_long(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(stall(ctx, "vault-stall-long", "60s"))
}

/// `host:port` of an `http(s)://host:port[/…]` address.
fn authority(addr: &str) -> anyhow::Result<(String, &str)> {
    let (scheme, rest) = addr.split_once("://").ok_or_else(|| anyhow::anyhow!("VAULT_ADDR {addr:?} has no scheme"))?;
    let hostport = rest.split('/').next().unwrap_or_default();
    anyhow::ensure!(hostport.contains(':'), "VAULT_ADDR {addr:?} has no port");
    Ok((hostport.to_string(), scheme))
}

/// The sum of `gostint_interception_alerts_total` on the node's metrics.
async fn interception_alerts(rig: &Rig) -> anyhow::Result<f64> {
    let r = rig.api.http.get(format!("{}/v1/api/metrics", rig.api.url)).send().await?;
    anyhow::ensure!(r.status().is_success(), "/v1/api/metrics answered {}", r.status());
    let text = r.text().await?;
    anyhow::ensure!(text.contains("gostint_"), "/v1/api/metrics carries no gostint metric");
    // A counter none of whose labels was ever incremented has no line: 0.
    Ok(text
        .lines()
        .filter(|l| l.starts_with("gostint_interception_alerts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b))
}

async fn stall(ctx: &Ctx, name: &str, client_timeout: &str) -> anyhow::Result<Figures> {
    let mut f = Figures::new(name);
    let (target, scheme) = authority(&ctx.svc.vault_addr)?;
    let proxy = Proxy::start_to(&target).await?;
    let vault_addr = format!("{scheme}://{}", proxy.addr());
    let rig =
        Rig::sqlite(ctx, &[("VAULT_ADDR", vault_addr.as_str()), ("VAULT_CLIENT_TIMEOUT", client_timeout)]).await?;
    f.check(interception_alerts(&rig).await? == 0.0, "interception alerts before the stall");
    // Four queues: a head job that runs across the start of the stall, then three jobs each
    // that are claimed (and unwrap their secret id) while OpenBao is stalled.
    let qs = queues("vstall", 4);
    let img = ctx.svc.image.clone();
    let heads = submit(&rig.api, qs.len(), &qs, qs.len(), move |q, _| sh_job(&img, q, "sleep 3")).await;
    let img = ctx.svc.image.clone();
    let rest = submit(&rig.api, 12, &qs, 4, move |q, _| sh_job(&img, q, "echo ok")).await;
    f.check(
        heads.refused.is_empty() && rest.refused.is_empty(),
        format!("submissions refused: {:?} {:?}", heads.refused.first(), rest.refused.first()),
    );
    for h in &heads.accepted {
        rig.api.wait_until(&h.id, Duration::from_secs(90), |j| j["status"] == "running").await?;
    }
    proxy.stall(true);
    let stalled = Instant::now();
    tokio::time::sleep(STALL).await;
    proxy.stall(false);
    let resumed = Instant::now();
    f.note("stall_s", format!("{:.1}", resumed.duration_since(stalled).as_secs_f64()));
    // Recovered: a job submitted after the stall, in a queue of its own (not behind the
    // stalled ones), runs.
    let img = ctx.svc.image.clone();
    let after = submit(&rig.api, 1, &queues("vstall-after", 1), 1, move |q, _| sh_job(&img, q, "echo ok")).await;
    let after_id = after
        .accepted
        .first()
        .map(|a| a.id.clone())
        .ok_or_else(|| anyhow::anyhow!("the POST after the stall was refused: {:?}", after.refused.first()))?;
    let j = rig.api.wait_final(&after_id, Duration::from_secs(180)).await?;
    f.recover_s = Some(resumed.elapsed().as_secs_f64());
    f.check(j["status"] == "success", format!("the job submitted after the stall ended {}", short(&j)));
    let accepted: Vec<Accepted> = heads.accepted.iter().chain(&rest.accepted).chain(&after.accepted).cloned().collect();
    let alerts = interception_alerts(&rig).await?;
    f.note("interception_alerts", alerts);
    f.check(alerts == 0.0, format!("gostint_interception_alerts_total = {alerts} after a stall"));
    let a = rig.finish(&mut f, &accepted, Duration::from_secs(240)).await;
    let (mut ok, mut spent, mut no_answer, mut notauth) = (0, 0, 0, 0);
    let mut other: Vec<&Value> = Vec::new();
    for j in a.jobs.values() {
        let out = j["output"].as_str().unwrap_or_default();
        match j["status"].as_str().unwrap_or_default() {
            "success" => ok += 1,
            "notauthorised" => notauth += 1,
            "failed" if out.contains(SPENT) && out.contains("not an interception") => spent += 1,
            "failed" if out.contains(NO_ANSWER) && out.contains("not an interception") => no_answer += 1,
            _ => other.push(j),
        }
    }
    f.note("success", ok);
    f.note("failed_token_spent", spent);
    f.note("failed_no_answer", no_answer);
    f.note("notauthorised", notauth);
    f.check(notauth == 0, format!("{notauth} jobs ended notauthorised after a Vault stall"));
    f.check(other.is_empty(), format!("{} jobs ended otherwise: {:?}", other.len(), other.first().map(|j| short(j))));
    Ok(f)
}
