//! The load driver: N jobs over Q queues at concurrency C, each job posted with a fresh
//! wrapped secret id; what was accepted and what was refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::Api;
use crate::audit::Accepted;

/// What a load run submitted.
#[derive(Debug, Default)]
pub struct Submitted {
    /// Accepted jobs, in the order their POST was answered.
    pub accepted: Vec<Accepted>,
    /// POSTs not accepted (error text).
    pub refused: Vec<String>,
    /// Wall time of the submissions.
    pub took: Duration,
}

/// A job of the test image running `sh -c <script>` in queue `qname`.
pub fn sh_job(image: &str, qname: &str, script: &str) -> Value {
    json!({"qname": qname, "container_image": image, "run": ["sh", "-c", script]})
}

/// Unique queue names for a scenario: `<tag>-<i>-<random>`.
pub fn queues(tag: &str, n: usize) -> Vec<String> {
    let salt: u32 = rand::random();
    (0..n).map(|i| format!("{tag}-{i}-{salt:08x}")).collect()
}

/// Posts `n` jobs, job `i` in `queues[i % len]` built by `job(qname, i)`, `conc` at a time.
pub async fn submit(
    api: &Api,
    n: usize,
    queues: &[String],
    conc: usize,
    job: impl Fn(&str, usize) -> Value + Send + Sync + 'static,
) -> Submitted {
    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Submitted::default()));
    let job = Arc::new(job);
    let queues = Arc::new(queues.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (api, next, out, job, queues) = (api.clone(), next.clone(), out.clone(), job.clone(), queues.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let q = &queues[i % queues.len()];
                let r = api.submit(job(q, i)).await;
                if let Ok(mut o) = out.lock() {
                    match r {
                        Ok(id) => o.accepted.push(Accepted { id, qname: q.clone() }),
                        Err(e) => o.refused.push(format!("{e:#}")),
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut s = std::mem::take(&mut *out.lock().unwrap_or_else(|e| e.into_inner()));
    s.took = t0.elapsed();
    s
}
