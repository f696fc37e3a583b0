//! The SQLite store's integration tests: the whole store contract against a fresh database
//! in a temporary directory, the one-process lock, and claim speed with thousands of queues.

mod contract;
mod diskfull;
mod lock;
mod scale;

use std::sync::Arc;

use gostint_store_contract::Subject;
use gostint_store_sqlite::SqliteJobStore;

/// A fresh store in its own temporary directory.
pub(crate) async fn fresh_store() -> (Arc<SqliteJobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open_in(dir.path()).await.unwrap();
    (Arc::new(store), dir)
}

/// A fresh store as the contract suite wants it.
pub(crate) async fn fresh_subject() -> Subject {
    let (store, dir) = fresh_store().await;
    Subject::new(store).keep_alive(dir)
}
