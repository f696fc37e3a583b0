//! docs/design.md §5.6: one process per SQLite file.

use gostint_core::StoreError;
use gostint_store_sqlite::{OpenError, SqliteJobStore};

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db/gostint.db").display());
    let first = SqliteJobStore::open(&url).await.unwrap();

    let err = SqliteJobStore::open(&url).await.unwrap_err();

    let StoreError::Backend(source) = &err else { panic!("unexpected error {err:?}") };
    let open_err = source.downcast_ref::<OpenError>().expect("an OpenError");
    assert!(matches!(open_err, OpenError::Locked { .. }), "{open_err:?}");
    let message = open_err.to_string();
    assert!(message.contains("in use by another gostint process"), "{message}");
    assert!(message.contains(&format!("pid {}", std::process::id())), "names the holder: {message}");
    assert!(message.contains("PostgreSQL"), "says what to do instead: {message}");
    eprintln!("second open: {message}");

    // The same file by another spelling is the same database.
    let bare = dir.path().join("db/gostint.db");
    assert!(SqliteJobStore::open(bare.to_str().unwrap()).await.is_err());

    // Dropping the first store releases the lock.
    first.close().await;
    drop(first);
    let again = SqliteJobStore::open(&url).await.unwrap();
    assert_eq!(again.path(), bare.as_path());
}

#[tokio::test]
async fn open_creates_the_directory_and_reopens_existing_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c.db");
    let url = format!("sqlite:{}", path.display());
    let store = SqliteJobStore::open(&url).await.unwrap();
    assert!(path.exists());
    drop(store);
    // Migrations are idempotent on an existing file.
    SqliteJobStore::open(&url).await.unwrap();
}

#[tokio::test]
async fn in_memory_databases_are_refused() {
    let err = SqliteJobStore::open("sqlite::memory:").await.unwrap_err();
    assert!(err.to_string().contains("not a SQLite database path"), "{err}");
}
