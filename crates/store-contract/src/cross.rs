//! Checks for stores shared by several processes (PostgreSQL): two handles on one database,
//! as two gostint nodes would hold, and the [`StoreEvent`]s one node's writes must deliver
//! to the other's [`JobStore::listen`] (docs/design.md §5.2, §5.4: wake-ups within milliseconds,
//! not the 1 s fallback sweep).
//!
//! A single-process store (SQLite) has no second handle and skips these.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gostint_core::{JobStatus, JobStore, NodeId, StoreEvent, Visibility};
use tokio::sync::mpsc;

use crate::{alice, at, new_job, node_a, node_b};

/// How long an event may take to arrive.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(1);

/// A running [`JobStore::listen`] on one handle, and what it has delivered.
pub struct Listening {
    events: mpsc::UnboundedReceiver<StoreEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// Spawns `store.listen`, waits until it has surely subscribed (`settle`), and throws
    /// away what it delivered so far (a store may announce itself at connect).
    pub async fn start(store: Arc<dyn JobStore>, settle: Duration) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let sink: gostint_core::EventSink = Arc::new(move |event| {
            let _ = tx.send(event);
        });
        let task = tokio::spawn(async move {
            store.listen(sink).await.expect("listen");
        });
        tokio::time::sleep(settle).await;
        let mut me = Self { events, task };
        me.drain();
        me
    }

    /// Forgets the events delivered so far.
    pub fn drain(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Waits up to [`EVENT_DEADLINE`] for `wanted` (other events are skipped) and returns
    /// how long it took.
    ///
    /// # Panics
    /// If it does not come in time.
    pub async fn expect(&mut self, wanted: StoreEvent, after: &str) -> Duration {
        let start = Instant::now();
        loop {
            let left = EVENT_DEADLINE.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) if event == wanted => return start.elapsed(),
                Ok(Some(_other)) => continue,
                Ok(None) => panic!("listen ended while waiting for {wanted:?} after {after}"),
                Err(_) => panic!("no {wanted:?} within {EVENT_DEADLINE:?} after {after}"),
            }
        }
    }

    /// Whether `listen` is still running.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes on `writer` that may let another node claim (enqueue, a finish that frees a
/// queue, a kill or delete of a queued job, a lost node) deliver `Claimable` to a listener
/// on `listener`, within [`EVENT_DEADLINE`]; a kill of an active job delivers
/// `KillRequested`. Both handles must be fresh and share one empty database.
pub async fn events_reach_a_listener_on_another_handle(listener: Arc<dyn JobStore>, writer: Arc<dyn JobStore>) {
    let mut heard = Listening::start(listener.clone(), Duration::from_millis(500)).await;

    let first = new_job("q", &alice(), at(1));
    let first_id = first.id;
    writer.enqueue(first).await.expect("enqueue");
    let took = heard.expect(StoreEvent::Claimable, "enqueue").await;
    eprintln!("Claimable after enqueue on another handle: {took:?}");

    // The listener's node claims it, the writer's node kills it: the owner must hear.
    let claimed = listener.claim(&node_a(), 10, at(2)).await.expect("claim");
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![first_id]);
    heard.drain();
    let killed = writer.request_kill(&first_id, Visibility::All, at(3)).await.expect("request_kill");
    assert_eq!(killed.map(|k| k.previous), Some(JobStatus::Running));
    let took = heard.expect(StoreEvent::KillRequested, "request_kill of a running job").await;
    eprintln!("KillRequested after request_kill on another handle: {took:?}");

    // A finish frees the queue.
    let second = new_job("q", &alice(), at(4));
    let second_id = second.id;
    writer.enqueue(second).await.expect("enqueue");
    heard.drain();
    assert!(listener.mark_stopping(&first_id).await.expect("mark_stopping"));
    let outcome = gostint_core::Outcome::message(JobStatus::Failed, "job killed");
    assert!(writer.finish(&first_id, &node_a(), outcome, at(5)).await.expect("finish"));
    heard.expect(StoreEvent::Claimable, "finish").await;

    // A kill of a queued job, and a delete of one.
    let claimed = writer.claim(&node_b(), 10, at(6)).await.expect("claim");
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![second_id]);
    let third = new_job("q", &alice(), at(7));
    let third_id = third.id;
    writer.enqueue(third).await.expect("enqueue");
    let fourth = new_job("q", &alice(), at(8));
    let fourth_id = fourth.id;
    writer.enqueue(fourth).await.expect("enqueue");
    heard.drain();
    let killed = writer.request_kill(&third_id, Visibility::All, at(9)).await.expect("request_kill");
    assert_eq!(killed.map(|k| k.previous), Some(JobStatus::Queued));
    heard.expect(StoreEvent::Claimable, "request_kill of a queued job").await;
    heard.drain();
    let deleted = writer.delete(&fourth_id, Visibility::All).await.expect("delete");
    assert_eq!(deleted, gostint_core::DeleteOutcome::Deleted);
    heard.expect(StoreEvent::Claimable, "delete of a queued job").await;

    // A lost node frees its queues.
    heard.drain();
    let other = NodeId::new("7d9c8f4e-0000-4000-8000-00000000000c");
    assert_eq!(writer.mark_node_lost(&node_b(), at(10)).await.expect("mark_node_lost"), 1);
    heard.expect(StoreEvent::Claimable, "mark_node_lost").await;
    assert!(writer.reap_stale_nodes(at(10), at(11), &other).await.expect("reap").is_empty());

    // Live output and status changes wake the followers on other nodes (docs/design.md §12).
    let fifth = new_job("live", &alice(), at(12));
    let fifth_id = fifth.id;
    writer.enqueue(fifth).await.expect("enqueue");
    heard.drain();
    let claimed = writer.claim(&node_b(), 10, at(13)).await.expect("claim");
    assert!(claimed.iter().any(|j| j.id == fifth_id));
    heard.expect(StoreEvent::JobChanged(fifth_id), "claim (status change)").await;
    heard.drain();
    assert!(writer.append_output(&fifth_id, &node_b(), "tick1\n", "", false).await.expect("append"));
    heard.expect(StoreEvent::JobChanged(fifth_id), "append_output").await;

    assert!(heard.is_running(), "listen keeps running");
}

/// `GOSTINT_TENANT_MAX_QUEUED` over two handles (two nodes) on one database: 20 simultaneous
/// enqueues of one tenant, alternating over the handles, with a cap of 5 on both, queue
/// exactly 5. Both handles must be fresh and share one empty database.
pub async fn tenant_max_queued_holds_across_handles(one: Arc<dyn JobStore>, two: Arc<dyn JobStore>) {
    one.set_tenant_max_queued(5);
    two.set_tenant_max_queued(5);
    let stores = [one.clone(), two];
    assert_eq!(crate::enqueue_burst(&stores, "a", 20, 5).await, (5, 15));
    assert_eq!(one.count_queued("a").await.expect("count"), 5);
}
