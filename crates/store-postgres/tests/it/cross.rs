//! Two handles on one database, as two nodes: events cross between them.

use std::sync::Arc;
use std::time::Duration;

use gostint_core::{EventSink, JobStore, StoreEvent};
use gostint_store_contract::cross::{
    events_reach_a_listener_on_another_handle, tenant_max_queued_holds_across_handles, Listening,
};

use crate::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_a_listener_on_another_node() {
    let Some(db) = TestDb::create().await else { return };
    let listener = db.store().await;
    let writer = db.store().await;
    events_reach_a_listener_on_another_handle(listener, writer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_max_queued_holds_across_two_nodes() {
    let Some(db) = TestDb::create().await else { return };
    let one = db.store().await;
    let two = db.store().await;
    tenant_max_queued_holds_across_handles(one, two).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_when_its_connection_is_killed() {
    let Some(db) = TestDb::create().await else { return };
    let listener = db.store().await;
    let writer = db.store().await;
    let mut heard = Listening::start(listener.clone(), Duration::from_millis(500)).await;

    // The server ends every LISTEN session (a failover, an admin, a network cut).
    let admin = db.options();
    let mut conn = sqlx::ConnectOptions::connect(&admin).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "one listening session");

    // The reconnect itself announces a possible gap; then real events flow again.
    heard.expect(StoreEvent::Claimable, "reconnect").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    heard.drain();
    let job = gostint_core::NewJob {
        id: gostint_core::JobId::new(1),
        qname: "q".into(),
        owner: gostint_core::Owner::new("o"),
        submitted: gostint_core::Timestamp::from_millis(1),
        definition: Default::default(),
        wrap_secret_id: "w".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    };
    writer.enqueue(job).await.unwrap();
    heard.expect(StoreEvent::Claimable, "enqueue after reconnect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_returns_when_the_store_is_closed() {
    let Some(db) = TestDb::create().await else { return };
    let store = db.store().await;
    let sink: EventSink = Arc::new(|_| {});
    let task = tokio::spawn({
        let store = store.clone();
        async move { store.listen(sink).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished());
    store.close().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), task).await.expect("listen ends at close");
    ended.unwrap().unwrap();
}
