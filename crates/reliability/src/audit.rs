//! The end-of-scenario audit of accepted jobs: lost (404), stuck (not final by the limit),
//! duplicated (container started twice) and FIFO order within each queue.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use crate::api::{is_final, ms, Api};
use crate::events::Starts;

/// A job the API accepted.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// Its id.
    pub id: String,
    /// Its queue.
    pub qname: String,
}

/// What the audit found.
#[derive(Debug, Default)]
pub struct Audit {
    /// How many jobs were audited.
    pub accepted: usize,
    /// Final views by id.
    pub jobs: HashMap<String, Value>,
    /// 404 for an accepted job.
    pub lost: Vec<String>,
    /// Not final at the limit.
    pub stuck: Vec<String>,
    /// Started more than once.
    pub duplicated: Vec<String>,
    /// Started before an earlier job of its queue, or while another of its queue was active.
    pub out_of_order: Vec<String>,
    /// Final statuses, status → count.
    pub statuses: BTreeMap<String, u64>,
}

impl Audit {
    /// The final view of a job.
    pub fn job(&self, id: &str) -> Option<&Value> {
        self.jobs.get(id)
    }
}

/// Polls every accepted job until all are final or `limit` passes, then judges them.
pub async fn audit(api: &Api, accepted: &[Accepted], starts: Option<&Starts>, limit: Duration) -> Audit {
    let t0 = Instant::now();
    let mut views: HashMap<String, Option<Value>> = HashMap::new();
    let mut gone: Vec<String> = Vec::new();
    let mut pending: Vec<String> = accepted.iter().map(|a| a.id.clone()).collect();
    loop {
        let results: Vec<(String, Option<(u16, Value)>)> = futures::stream::iter(pending.clone())
            .map(|id| async move {
                let r = api.get(&id).await.ok();
                (id, r)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        pending.clear();
        for (id, r) in results {
            match r {
                Some((404, _)) => gone.push(id),
                Some((200, v)) if is_final(&v) => {
                    views.insert(id, Some(v));
                }
                Some((200, v)) => {
                    views.insert(id.clone(), Some(v));
                    pending.push(id);
                }
                _ => pending.push(id),
            }
        }
        if pending.is_empty() || t0.elapsed() > limit {
            break;
        }
        // Fewer polls while many jobs are pending (each round GETs every pending job).
        tokio::time::sleep(Duration::from_millis(300 + 10 * pending.len() as u64)).await;
    }
    let mut a = Audit { accepted: accepted.len(), lost: gone, stuck: pending, ..Audit::default() };
    for (id, v) in views {
        if let Some(v) = v {
            if is_final(&v) {
                *a.statuses.entry(v["status"].as_str().unwrap_or_default().to_string()).or_default() += 1;
            }
            a.jobs.insert(id, v);
        }
    }
    if let Some(s) = starts {
        a.duplicated = accepted.iter().filter(|j| s.count(&j.id) > 1).map(|j| j.id.clone()).collect();
    }
    a.out_of_order = fifo_violations(accepted.iter().filter_map(|j| a.jobs.get(&j.id)));
    a.stuck.sort();
    a.lost.sort();
    a
}

/// Jobs that broke their queue's order: sorted by claim time, a job claimed while the
/// previous one of its queue was still active (its claim before that one's end), or one
/// submitted strictly later than the next claimed. Jobs never claimed are left out.
pub fn fifo_violations<'a>(jobs: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut queues: HashMap<String, Vec<(i64, i64, i64, String)>> = HashMap::new();
    for j in jobs {
        let started = ms(&j["started"]);
        if started == 0 {
            continue;
        }
        let key = format!("{}/{}", j["tenant"].as_str().unwrap_or_default(), j["qname"].as_str().unwrap_or_default());
        queues.entry(key).or_default().push((
            started,
            ms(&j["submitted"]),
            ms(&j["ended"]),
            j["_id"].as_str().unwrap_or_default().to_string(),
        ));
    }
    let mut bad = Vec::new();
    for q in queues.values_mut() {
        q.sort();
        for w in q.windows(2) {
            let (prev, next) = (&w[0], &w[1]);
            let overlap = prev.2 != 0 && next.0 < prev.2;
            let reordered = next.1 < prev.1;
            if overlap || reordered {
                bad.push(next.3.clone());
            }
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn j(id: &str, sub: &str, st: &str, end: &str) -> Value {
        json!({"_id": id, "qname": "q", "tenant": "t", "submitted": sub, "started": st, "ended": end})
    }

    #[test]
    fn fifo_flags_overlap_and_reordering_only() {
        let ok = [
            j("a", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"),
            j("b", "2026-01-01T00:00:00.5Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"),
            j("never", "2026-01-01T00:00:00.1Z", "0001-01-01T00:00:00Z", "2026-01-01T00:00:03Z"),
        ];
        assert!(fifo_violations(ok.iter()).is_empty());
        let overlap = [
            j("a", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:05Z"),
            j("b", "2026-01-01T00:00:00.5Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:06Z"),
        ];
        assert_eq!(fifo_violations(overlap.iter()), vec!["b".to_string()]);
        let reordered = [
            j("a", "2026-01-01T00:00:03Z", "2026-01-01T00:00:04Z", "2026-01-01T00:00:05Z"),
            j("b", "2026-01-01T00:00:01Z", "2026-01-01T00:00:06Z", "2026-01-01T00:00:07Z"),
        ];
        assert_eq!(fifo_violations(reordered.iter()), vec!["b".to_string()]);
    }
}
