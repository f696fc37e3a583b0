//! The claim against rows other transactions hold (docs/design.md §5.2): it waits for a locked queue
//! head instead of skipping it, and a queue it could not see as busy makes it return
//! nothing, never an error.

use std::time::Duration;

use gostint_core::{JobDefinition, JobId, JobStatus, JobStore, NewJob, NodeId, Owner, Timestamp};
use sqlx::{ConnectOptions, Connection};

use crate::TestDb;

fn job(qname: &str, submitted: i64) -> NewJob {
    NewJob {
        id: JobId::new(1_700_000_000),
        qname: qname.into(),
        owner: Owner::new("entity-race"),
        submitted: Timestamp::from_millis(submitted),
        definition: JobDefinition::default(),
        wrap_secret_id: "w".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_waits_for_a_locked_queue_head_and_never_takes_the_job_behind_it() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let (head, behind) = (job("q", 1), job("q", 2));
    let (head_id, behind_id) = (head.id, behind.id);
    store.enqueue(head).await.unwrap();
    store.enqueue(behind).await.unwrap();
    let node = NodeId::new("node-a");

    // Another session holds the head (as a kill in progress would).
    let mut other = db.options().connect().await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE").bind(head_id.to_hex()).execute(&mut *tx).await.unwrap();
    let claiming = tokio::spawn({
        let (store, node) = (store.clone(), node.clone());
        async move { store.claim(&node, 10, Timestamp::from_millis(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!claiming.is_finished(), "the claim must wait for the head, not skip it");
    tx.commit().await.unwrap();
    let got = claiming.await.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![head_id], "the head, once free");

    // This time the other session ends the head (a kill of a queued job) while the claim waits.
    assert!(store
        .finish(&head_id, &node, gostint_core::Outcome::message(JobStatus::Success, ""), Timestamp::from_millis(11))
        .await
        .unwrap());
    let third = job("q", 3);
    let third_id = third.id;
    store.enqueue(third).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("UPDATE jobs SET status = 'failed', output = 'job killed' WHERE id = $1")
        .bind(behind_id.to_hex())
        .execute(&mut *tx)
        .await
        .unwrap();
    let claiming = tokio::spawn({
        let (store, node) = (store.clone(), node.clone());
        async move { store.claim(&node, 10, Timestamp::from_millis(12)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!claiming.is_finished(), "the claim must wait for the head");
    tx.commit().await.unwrap();
    let got = claiming.await.unwrap().unwrap();
    assert!(got.is_empty(), "the head it waited for was killed: nothing, not the job behind it: {got:?}");
    let got = store.claim(&node, 10, Timestamp::from_millis(13)).await.unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![third_id], "then the next head");
    other.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_meets_an_active_job_it_could_not_see_returns_nothing() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let visible = job("q", 10);
    let visible_id = visible.id;
    store.enqueue(visible).await.unwrap();
    let free = job("free", 20);
    let free_id = free.id;
    store.enqueue(free).await.unwrap();

    // Another node, uncommitted: an older job of the same queue, already running. The claim's
    // snapshot cannot see it, so the queue looks free; the unique index says otherwise.
    let mut other = db.options().connect().await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO jobs (id, qname, owner, status, node_uuid, submitted, started, definition)
         VALUES ($1, 'q', 'o', 'running', 'node-b', 1, 1, '{}')",
    )
    .bind(JobId::new(1_700_000_000).to_hex())
    .execute(&mut *tx)
    .await
    .unwrap();
    let claiming = tokio::spawn({
        let store = store.clone();
        async move { store.claim(&NodeId::new("node-a"), 10, Timestamp::from_millis(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!claiming.is_finished(), "the unique index makes the claim wait for the other node");
    tx.commit().await.unwrap();

    // The first attempt hit the unique index; the retry sees the queue busy.
    let got = claiming.await.unwrap().expect("a lost race is not an error");
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![free_id], "only the free queue's head");
    assert_eq!(store.get(&visible_id).await.unwrap().unwrap().status, JobStatus::Queued);
    other.close().await.unwrap();
}
