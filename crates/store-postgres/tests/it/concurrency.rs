//! Three nodes (three stores on one database) claiming and finishing at once, while jobs
//! keep arriving: no queue ever has two active jobs, every queue runs in FIFO order, and
//! every job is claimed exactly once (docs/design.md §5.2).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gostint_core::{JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Outcome, Owner, Timestamp};

use crate::TestDb;

const NODES: usize = 3;
const LOOPS_PER_NODE: usize = 4;
const QUEUES: usize = 20;
const JOBS: usize = 200;

fn job(q: usize, submitted: i64) -> NewJob {
    let qname = format!("q{q:02}");
    NewJob {
        id: JobId::new(1_700_000_000),
        qname: qname.clone(),
        owner: Owner::new("entity-load"),
        submitted: Timestamp::from_millis(submitted),
        definition: JobDefinition { qname, container_image: "busybox".into(), ..Default::default() },
        wrap_secret_id: "w".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

/// One claimed job as a claim loop saw it: held from `start` (the claim returned) to `end`
/// (just before `finish` was sent), a sub-interval of the time the store held it active.
struct Held {
    qname: String,
    id: JobId,
    start: Instant,
    end: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_claiming_at_once_keep_one_active_job_per_queue_in_fifo_order() {
    let Some(db) = TestDb::create().await else { return };
    let mut stores = Vec::new();
    for _ in 0..NODES {
        stores.push(db.store().await);
    }

    // Half the jobs are there before claiming starts; the rest arrive while it runs. Each
    // queue's jobs get non-decreasing `submitted` values, three at a time equal (ties).
    let mut expected: HashMap<String, Vec<JobId>> = HashMap::new();
    let mut arrivals = Vec::new();
    for i in 0..JOBS / QUEUES {
        for q in 0..QUEUES {
            let j = job(q, 1_000 + (i / 3) as i64);
            expected.entry(j.qname.clone()).or_default().push(j.id);
            arrivals.push(j);
        }
    }
    let late = arrivals.split_off(JOBS / 2);
    for j in arrivals {
        stores[0].enqueue(j).await.unwrap();
    }
    let enqueuer = {
        let store = stores[1].clone();
        tokio::spawn(async move {
            for j in late {
                store.enqueue(j).await.unwrap();
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        })
    };

    let held = Arc::new(Mutex::new(Vec::<Held>::new()));
    let claims = Arc::new(Mutex::new(HashMap::<JobId, usize>::new()));
    let started = Instant::now();
    let mut loops = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        for l in 0..LOOPS_PER_NODE {
            let store = store.clone();
            let node = NodeId::new(format!("node-{n}"));
            let (held, claims) = (held.clone(), claims.clone());
            loops.push(tokio::spawn(async move {
                let mut rng = (n * 31 + l * 7) as u64;
                while claims.lock().unwrap().len() < JOBS {
                    let got = store.claim(&node, 3, Timestamp::from_millis(5_000)).await.unwrap();
                    let start = Instant::now();
                    if got.is_empty() {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    for j in &got {
                        *claims.lock().unwrap().entry(j.id).or_default() += 1;
                    }
                    // Hold the jobs a moment, so an overlap would show.
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    tokio::time::sleep(Duration::from_micros(rng >> 54)).await;
                    for j in got {
                        let end = Instant::now();
                        held.lock().unwrap().push(Held { qname: j.qname.clone(), id: j.id, start, end });
                        let outcome = Outcome::message(JobStatus::Success, "");
                        assert!(store.finish(&j.id, &node, outcome, Timestamp::from_millis(6_000)).await.unwrap());
                    }
                }
            }));
        }
    }
    let all = futures::future::join_all(loops);
    for r in tokio::time::timeout(Duration::from_secs(120), all).await.expect("claim loops took over 120 s") {
        r.expect("claim loop panicked");
    }
    enqueuer.await.unwrap();
    eprintln!(
        "{JOBS} jobs over {QUEUES} queues by {} claim loops on {NODES} nodes in {:?}",
        NODES * LOOPS_PER_NODE,
        started.elapsed()
    );

    {
        let claims = claims.lock().unwrap();
        assert_eq!(claims.len(), JOBS, "every job claimed");
        assert!(claims.values().all(|&n| n == 1), "a job was claimed twice: {claims:?}");
    }

    let mut by_queue: HashMap<String, Vec<Held>> = HashMap::new();
    for h in held.lock().unwrap().drain(..) {
        by_queue.entry(h.qname.clone()).or_default().push(h);
    }
    for (qname, mut runs) in by_queue {
        runs.sort_by_key(|h| h.start);
        for pair in runs.windows(2) {
            assert!(
                pair[0].end <= pair[1].start,
                "queue {qname}: {} held until {:?} but {} claimed at {:?}",
                pair[0].id,
                pair[0].end - started,
                pair[1].id,
                pair[1].start - started
            );
        }
        let order: Vec<JobId> = runs.iter().map(|h| h.id).collect();
        assert_eq!(Some(&order), expected.get(&qname), "FIFO order of {qname}");
    }

    let counts = stores[2].count_by_status().await.unwrap();
    assert_eq!(counts.get(&JobStatus::Success).copied(), Some(JOBS as u64), "{counts:?}");
}
