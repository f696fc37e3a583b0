//! Claim cost with thousands of queues (docs/design.md §5.2: every queue is considered at each claim).
//! Times are printed, not asserted: a loaded CI machine must not turn them into failures.

use std::collections::HashSet;
use std::time::Instant;

use futures::StreamExt;
use gostint_core::{JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Outcome, Owner, Timestamp};

use crate::TestDb;

const JOBS: usize = 10_000;
const QUEUES: usize = 2_000;

fn job(qname: String, submitted: Timestamp) -> NewJob {
    NewJob {
        id: JobId::new(submitted.unix_seconds()),
        qname: qname.clone(),
        owner: Owner::new("entity-load"),
        submitted,
        definition: JobDefinition { qname, container_image: "busybox".into(), ..Default::default() },
        wrap_secret_id: "w".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_jobs_over_two_thousand_queues_claim_quickly() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let t0 = 1_700_000_000_000;
    let started = Instant::now();
    futures::stream::iter(0..JOBS)
        .map(|i| {
            let store = store.clone();
            async move {
                let j = job(format!("queue-{:04}", i % QUEUES), Timestamp::from_millis(t0 + i as i64));
                store.enqueue(j).await.unwrap();
            }
        })
        .buffer_unordered(5)
        .collect::<Vec<()>>()
        .await;
    eprintln!("enqueued {JOBS} jobs over {QUEUES} queues in {:?}", started.elapsed());

    let plan = store.explain_claim(false).await.unwrap();
    eprintln!("claim query plan:\n  {}", plan.join("\n  "));
    assert!(!plan.iter().any(|step| step.contains("Seq Scan on jobs")), "the claim scans the table: {plan:?}");

    let node = NodeId::new("load-node");
    let now = Timestamp::from_millis(t0 + 1_000_000);
    let mut seen = HashSet::new();
    let whole = Instant::now();
    for round in 0..JOBS / QUEUES {
        let t = Instant::now();
        let mut jobs = store.claim(&node, 1, now).await.unwrap();
        let one = t.elapsed();
        let t = Instant::now();
        jobs.extend(store.claim(&node, usize::MAX, now).await.unwrap());
        let rest = t.elapsed();
        let t = Instant::now();
        assert!(store.claim(&node, usize::MAX, now).await.unwrap().is_empty());
        let busy = t.elapsed();

        assert_eq!(jobs.len(), QUEUES, "one head per queue");
        assert_eq!(jobs.iter().map(|j| j.qname.as_str()).collect::<HashSet<_>>().len(), QUEUES);
        futures::stream::iter(jobs)
            .map(|j| {
                assert!(seen.insert(j.id), "{} claimed twice", j.id);
                let (store, node) = (store.clone(), node.clone());
                async move {
                    let outcome = Outcome::message(JobStatus::Success, "");
                    assert!(store.finish(&j.id, &node, outcome, now).await.unwrap());
                }
            })
            .buffer_unordered(5)
            .collect::<Vec<()>>()
            .await;
        eprintln!(
            "round {round}: claim max=1 of {QUEUES} free queues {one:?}; claim of the other {} heads {rest:?}; \
             claim with all {QUEUES} queues busy {busy:?}",
            QUEUES - 1
        );
    }
    assert_eq!(seen.len(), JOBS);
    eprintln!("claimed and finished all {JOBS} jobs in {:?}", whole.elapsed());

    // Thousands of idle queues (only ended jobs) cost nothing: one new job is found at once.
    let fresh = job("fresh".into(), now);
    let id = fresh.id;
    store.enqueue(fresh).await.unwrap();
    let t = Instant::now();
    let got = store.claim(&node, usize::MAX, now).await.unwrap();
    eprintln!("claim of 1 queued job beside {QUEUES} idle queues ({JOBS} ended jobs) {:?}", t.elapsed());
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    let t = Instant::now();
    assert!(store.claim(&node, usize::MAX, now).await.unwrap().is_empty());
    eprintln!("claim with nothing queued beside {QUEUES} idle queues {:?}", t.elapsed());
}
