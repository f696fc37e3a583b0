//! A scenario's usual kit: a directory, a node, its client, a `docker events` reader and a
//! resource sampler, and the closing audit.

use std::time::{Duration, Instant};

use crate::api::{is_final, Api};
use crate::audit::{audit, Accepted, Audit};
use crate::ctx::Ctx;
use crate::events::{containers_of, remove_containers_of, Starts};
use crate::figures::Figures;
use crate::node::{Node, NodeOpts};
use crate::sample::Sampler;

/// One node under test and what watches it.
pub struct Rig {
    /// The node's directory (removed at drop).
    pub dir: tempfile::TempDir,
    /// The node.
    pub node: Node,
    /// Its client.
    pub api: Api,
    /// Container starts per job.
    pub starts: Starts,
    /// RSS and descriptors.
    pub sampler: Sampler,
}

impl Rig {
    /// A node on SQLite in a fresh directory, with these extra settings.
    pub async fn sqlite(ctx: &Ctx, env: &[(&str, &str)]) -> anyhow::Result<Rig> {
        let dir = tempfile::Builder::new().prefix("gostint-rel-").tempdir()?;
        let mut opts = NodeOpts::sqlite(dir.path())?;
        for (k, v) in env {
            opts = opts.set(k, *v);
        }
        Self::with_opts(ctx, dir, opts).await
    }

    /// A node started with `opts` (its directory `dir`).
    pub async fn with_opts(ctx: &Ctx, dir: tempfile::TempDir, opts: NodeOpts) -> anyhow::Result<Rig> {
        let starts = Starts::start().await?;
        let node = Node::start(ctx, opts).await?;
        let api = node.api(ctx)?;
        let sampler = Sampler::start(node.pid());
        Ok(Rig { dir, node, api, starts, sampler })
    }

    /// Starts the node again after it exited; the sampler follows the new process.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.node.restart().await?;
        self.sampler.follow(self.node.pid());
        Ok(())
    }

    /// Audits the accepted jobs (`limit` for them to end), records the audit, the codes and
    /// the resources into `f`, stops the node, checks that no ended job kept a container and
    /// removes any container of these jobs left.
    pub async fn finish(mut self, f: &mut Figures, accepted: &[Accepted], limit: Duration) -> Audit {
        let a = audit(&self.api, accepted, Some(&self.starts), limit).await;
        f.absorb(&a);
        // The "after" sample a moment after the last job ended.
        tokio::time::sleep(Duration::from_secs(1)).await;
        f.codes_from(&self.api.codes);
        f.resources(self.sampler.finish());
        if let Err(e) = self.node.stop(Duration::from_secs(60)).await {
            f.failures.push(format!("stopping the node: {e:#}"));
        }
        let ended: Vec<String> =
            accepted.iter().filter(|j| a.job(&j.id).is_some_and(is_final)).map(|j| j.id.clone()).collect();
        no_containers_left(f, &ended).await;
        let ids: Vec<String> = accepted.iter().map(|a| a.id.clone()).collect();
        remove_containers_of(&ids).await;
        a
    }
}

/// No container of these (ended) jobs is left on the engine (15 s allowed for removals).
pub async fn no_containers_left(f: &mut Figures, jobs: &[String]) {
    let t0 = Instant::now();
    loop {
        let mut left = Vec::new();
        for j in jobs {
            if let Ok(cs) = containers_of(j).await {
                if !cs.is_empty() {
                    left.push(j.clone());
                }
            }
        }
        if left.is_empty() {
            return;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            f.failures.push(format!("containers left for {} ended jobs: {:?}", left.len(), left.first()));
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
