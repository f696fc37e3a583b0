//! Figure 9: memory given back after a burst, by allocator (issue 16 item 11).
//!
//! The same burst runs against glibc's malloc with its defaults, glibc's malloc as gostint
//! tunes it at start (two arenas, a 128 KiB trim threshold: `tune_malloc` in the server's
//! `main.rs`), and `gostint-mimalloc` beside this binary (built with the server's `mimalloc`
//! feature; `scripts/bench` makes it). The burst: 16 jobs that each print 3 MB are read back whole by 32 concurrent
//! callers (20 views each), with 8 list pages and 4 refused 6 MB bodies each in between. RSS
//! is read before (after the jobs, idle), at its peak (sampled every 50 ms) and 2 s and 15 s
//! after the burst. A build that keeps what the burst took shows an `after` near its peak.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gostint_test_support::{Requestor, Services};
use serde_json::json;

use crate::report::Row;
use crate::target::{gostint_bin, rss_mib, Child};

/// One allocator set-up: a name, a binary, extra environment.
struct Variant {
    name: String,
    bin: PathBuf,
    env: Vec<(&'static str, String)>,
}

fn variants() -> anyhow::Result<Vec<Variant>> {
    let main = gostint_bin()?;
    // Any `glibc.malloc.` tunable stops gostint's own tuning (see its `tune_malloc`); perturb=0
    // is glibc's default, so this runs glibc's malloc as it comes.
    let defaults = ("GLIBC_TUNABLES", "glibc.malloc.perturb=0".to_string());
    let mut out = vec![
        Variant { name: "glibc malloc, defaults".into(), bin: main.clone(), env: vec![defaults] },
        Variant { name: "glibc malloc as gostint tunes it".into(), bin: main.clone(), env: vec![] },
    ];
    let mimalloc = main.with_file_name("gostint-mimalloc");
    if mimalloc.exists() {
        out.push(Variant { name: "mimalloc (--features mimalloc)".into(), bin: mimalloc, env: vec![] });
    }
    Ok(out)
}

/// RSS before, peak, 2 s after, 15 s after (MiB).
struct Memory {
    before: f64,
    peak: f64,
    after_2s: f64,
    after_15s: f64,
}

async fn burst(svc: &Services, v: &Variant, quick: bool) -> anyhow::Result<Memory> {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite://{}/alloc.db", dir.path().display());
    let mut c = Child::start_bin(&v.bin, svc, &db, dir.path(), false, &v.env).await?;
    let req = Requestor::new(svc);
    c.t.token = req.token(None, &["default"]).await;
    let pid = c.pid().context("child pid")?;

    let jobs = if quick { 6 } else { 16 };
    let mut ids = Vec::new();
    for i in 0..jobs {
        let job = json!({
            "qname": format!("alloc{i}"),
            "container_image": svc.image,
            "run": ["sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 3000000"],
            "wrap_secret_id": req.wrapped_secret_id().await,
        });
        ids.push(c.t.post(&job).await?);
    }
    for id in &ids {
        c.t.wait(id, Duration::from_millis(100)).await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = rss_mib(pid).unwrap_or(f64::NAN);

    let peak = Arc::new(AtomicU64::new(before.to_bits()));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some(now) = rss_mib(pid) {
                    if now > f64::from_bits(peak.load(Ordering::Relaxed)) {
                        peak.store(now.to_bits(), Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let junk = Arc::new(vec![b'x'; 6 << 20]);
    let callers = if quick { 8 } else { 32 };
    let mut tasks = Vec::new();
    for n in 0..callers {
        let (t, ids, junk) = (c.t.clone(), ids.clone(), junk.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0..20 {
                let id = &ids[(n + k) % ids.len()];
                let r =
                    t.http.get(format!("{}/v1/api/job/{id}", t.url)).header("X-Auth-Token", &t.token).send().await?;
                anyhow::ensure!(r.status().is_success(), "view answered {}", r.status());
                r.bytes().await?;
                if k % 5 == 0 {
                    let r = t
                        .http
                        .post(format!("{}/v1/api/job", t.url))
                        .header("X-Auth-Token", &t.token)
                        .body(junk.as_ref().clone())
                        .send()
                        .await?;
                    anyhow::ensure!(r.status().is_client_error(), "junk body answered {}", r.status());
                }
                if k % 3 == 0 {
                    let r = t.http.get(format!("{}/v1/api/job", t.url)).header("X-Auth-Token", &t.token).send().await?;
                    r.bytes().await?;
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_2s = rss_mib(pid).unwrap_or(f64::NAN);
    tokio::time::sleep(Duration::from_secs(13)).await;
    let after_15s = rss_mib(pid).unwrap_or(f64::NAN);
    sampling.abort();
    let peak = f64::from_bits(peak.load(Ordering::Relaxed));
    c.stop().await;
    Ok(Memory { before, peak, after_2s, after_15s })
}

pub(crate) async fn fig9(svc: &Services, quick: bool, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    println!("== 9. memory given back after a burst (3 MB job views read by concurrent callers), by allocator");
    let all = variants()?;
    if all.len() == 2 {
        println!("   no gostint-mimalloc beside gostint: build it to compare (scripts/bench does)");
    }
    for v in &all {
        let m = burst(svc, v, quick).await.with_context(|| format!("burst against {}", v.name))?;
        let kept = (m.after_15s - m.before) / (m.peak - m.before).max(0.1) * 100.0;
        println!(
            "   {:<42} RSS before {:>6.1} MiB, peak {:>6.1}, after 2 s {:>6.1}, after 15 s {:>6.1} ({kept:.0}% of the burst kept) [{}]",
            v.name,
            m.before,
            m.peak,
            m.after_2s,
            m.after_15s,
            display(&v.bin)
        );
        rows.push(Row::info(
            format!("9. RSS after a burst: {}", v.name),
            format!("{:.0} → peak {:.0} → {:.0} MiB after 15 s ({kept:.0}% kept)", m.before, m.peak, m.after_15s),
            "-",
        ));
    }
    Ok(())
}

fn display(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
