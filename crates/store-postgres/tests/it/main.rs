//! The PostgreSQL store's integration tests, against a real server named by
//! `GOSTINT_TEST_DATABASE_URL` (`scripts/services up` starts one; source `.dev/env`). Each
//! test gets a database of its own, dropped at the end, so they run in parallel. Without the
//! variable every test prints `skipped: no postgres` and passes, unless
//! `GOSTINT_TEST_REQUIRE` names `postgres`.

mod concurrency;
mod contract;
mod cross;
mod race;
mod scale;
mod vault;

use std::sync::Arc;

use gostint_store_contract::Subject;
use gostint_store_postgres::{connect_options, PgJobStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// A database of its own for one test, dropped (connections and all) when this is.
pub(crate) struct TestDb {
    pub(crate) name: String,
    /// The server as the test user, on the maintenance database given in the URL.
    pub(crate) admin: PgConnectOptions,
}

impl TestDb {
    /// A fresh, empty database, or `None` (after saying so) without a test server.
    pub(crate) async fn create() -> Option<Self> {
        let url = test_url()?;
        let admin = connect_options(&url).expect("GOSTINT_TEST_DATABASE_URL");
        let name = format!("gostint_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin.connect().await.expect("connect to GOSTINT_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        conn.close().await.expect("close");
        Some(Self { name, admin })
    }

    /// Options for the test database itself.
    pub(crate) fn options(&self) -> PgConnectOptions {
        self.admin.clone().database(&self.name)
    }

    /// A store on it (migrated at connect).
    pub(crate) async fn store(&self) -> Arc<PgJobStore> {
        Arc::new(PgJobStore::connect_with(self.options(), 5).await.expect("connect the store"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside a runtime: a thread of its own does the
        // async work. FORCE ends connections still open on it (PostgreSQL 13+).
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let mut conn = admin.connect().await?;
                sqlx::query(&sql).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// `GOSTINT_TEST_DATABASE_URL`, or `None` after printing `skipped: no postgres` (a panic if
/// `GOSTINT_TEST_REQUIRE` names postgres).
pub(crate) fn test_url() -> Option<String> {
    match std::env::var("GOSTINT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var("GOSTINT_TEST_REQUIRE").unwrap_or_default();
            assert!(
                !required.split([',', ' ']).any(|s| s.trim() == "postgres"),
                "GOSTINT_TEST_REQUIRE names postgres but GOSTINT_TEST_DATABASE_URL is unset"
            );
            eprintln!("skipped: no postgres");
            None
        }
    }
}

/// Logs to the test output when `TEST_LOG` is set (STYLE §8), once per test binary.
pub(crate) fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "gostint_store_postgres=debug".into()),
            )
            .with_test_writer()
            .try_init();
    }
}

/// A fresh store as the contract suite wants it, or `None` without a server.
pub(crate) async fn fresh_subject() -> Option<Subject> {
    let db = TestDb::create().await?;
    let store = db.store().await;
    // The store goes first (closing its pool), then the database.
    Some(Subject::new(store).delivering_events().keep_alive(db))
}
