//! Group commit: concurrent enqueues share transactions, yet each caller gets its own answer.

use gostint_core::{JobDefinition, JobId, JobStore, NewJob, Owner, Timestamp, Visibility};

fn job(id: JobId, i: usize) -> NewJob {
    let qname = format!("group-{}", i % 7);
    NewJob {
        id,
        qname: qname.clone(),
        owner: Owner::new("entity-group"),
        submitted: Timestamp::now(),
        definition: JobDefinition { qname, container_image: "busybox".into(), ..Default::default() },
        wrap_secret_id: "w".into(),
        payload: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_commit_together_and_a_duplicate_fails_only_itself() {
    let (store, _dir) = crate::fresh_store().await;
    let ids: Vec<JobId> = (0..300).map(|_| JobId::new(1_700_000_000)).collect();
    // Every tenth job reuses an earlier id: it must fail, and only it.
    let tasks: Vec<_> = (0..330)
        .map(|i| {
            let store = store.clone();
            let id = if i < 300 { ids[i] } else { ids[(i - 300) * 10] };
            tokio::spawn(async move { (i, store.enqueue(job(id, i)).await) })
        })
        .collect();
    let mut ok = 0;
    let mut dup = 0;
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                dup += 1;
                assert!(e.to_string().to_lowercase().contains("unique"), "job {i}: {e}");
            }
        }
    }
    assert_eq!((ok, dup), (300, 30), "each id once; the 30 repeats refused");
    let (rows, total) = store.list(Visibility::All, 0, 1000).await.unwrap();
    assert_eq!((rows.len(), total), (300, 300));
    for id in &ids {
        assert!(store.get(id).await.unwrap().is_some(), "{id} committed");
    }
}
