//! Claim cost with thousands of queues (docs/design.md §5.2: every queue is considered at each claim).
//! Times are printed, not asserted: a loaded CI machine must not turn them into failures.

use std::collections::HashSet;
use std::time::Instant;

use gostint_core::{JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Outcome, Owner, Timestamp};

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
    let (store, _dir) = crate::fresh_store().await;
    let t0 = 1_700_000_000_000;
    let started = Instant::now();
    for i in 0..JOBS {
        store.enqueue(job(format!("queue-{:04}", i % QUEUES), Timestamp::from_millis(t0 + i as i64))).await.unwrap();
    }
    eprintln!("enqueued {JOBS} jobs over {QUEUES} queues in {:?}", started.elapsed());

    let plan = store.explain_claim().await.unwrap();
    eprintln!("claim query plan:\n  {}", plan.join("\n  "));
    assert!(!plan.iter().any(|step| step.starts_with("SCAN j")), "the claim scans the table: {plan:?}");

    let node = NodeId::new("load-node");
    let now = Timestamp::from_millis(t0 + 1_000_000);
    let mut seen = HashSet::new();
    let whole = Instant::now();
    for round in 0..JOBS / QUEUES {
        // Every queue free, the oldest head wanted.
        let t = Instant::now();
        let mut jobs = store.claim(&node, 1, now).await.unwrap();
        let one = t.elapsed();
        // Every other queue's head in one statement.
        let t = Instant::now();
        jobs.extend(store.claim(&node, usize::MAX, now).await.unwrap());
        let rest = t.elapsed();
        // Every queue busy: nothing to take (the fallback sweep's common case).
        let t = Instant::now();
        assert!(store.claim(&node, usize::MAX, now).await.unwrap().is_empty());
        let busy = t.elapsed();

        assert_eq!(jobs.len(), QUEUES, "one head per queue");
        assert_eq!(jobs.iter().map(|j| j.qname.as_str()).collect::<HashSet<_>>().len(), QUEUES);
        for job in &jobs {
            assert!(seen.insert(job.id), "{} claimed twice", job.id);
            assert!(store.finish(&job.id, &node, Outcome::message(JobStatus::Success, ""), now).await.unwrap());
        }
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
}
