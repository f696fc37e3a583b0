//! A full disk under the store (a real tmpfs; mounting needs root, so the test says
//! `skipped` without it): once space comes back, every write the store answers ok must be in
//! the file. Before the fix a failed transaction left SQLite's transaction open on the writer
//! for good, so later inserts answered ok and were never committed (RELIABILITY.md: the
//! reliability suite's `disk-full` scenario lost accepted jobs and stuck claims).

use std::path::{Path, PathBuf};
use std::process::Command;

use gostint_core::{JobDefinition, JobId, JobStore, NewJob, NodeId, Owner, StoreError, Timestamp, Visibility};
use gostint_store_sqlite::SqliteJobStore;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn job(n: u32, big: usize) -> NewJob {
    NewJob {
        id: JobId::new(n),
        qname: format!("q{}", n % 4),
        owner: Owner::new("entity-alice"),
        submitted: Timestamp::from_millis(i64::from(n)),
        definition: JobDefinition { run: vec!["x".repeat(big)], ..JobDefinition::default() },
        wrap_secret_id: "w".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: gostint_core::Timestamp::ZERO,
    }
}

/// The ids in the file, read through a connection of its own (what another process sees).
async fn ids_in_file(db: &Path) -> Vec<String> {
    let mut c = SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
    sqlx::query_scalar("SELECT id FROM jobs").fetch_all(&mut c).await.unwrap()
}

#[tokio::test]
async fn after_a_full_disk_every_write_answered_ok_is_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("mnt"), "4m") else {
        println!("skipped: cannot mount a tmpfs (needs root)");
        return;
    };
    let store = SqliteJobStore::open_in(&fs.0).await.unwrap();
    let db = fs.0.join("gostint.db");
    // Leave about 600 KiB free, then fill it with jobs until the store refuses.
    let filler = fs.0.join("filler");
    let free = fs2_free(&fs.0);
    std::fs::write(&filler, vec![0u8; free.saturating_sub(600 << 10)]).unwrap();
    let mut accepted = Vec::new();
    let mut refusals = 0;
    for n in 1..400u32 {
        let j = job(n, 48 << 10);
        let id = j.id.to_hex();
        match store.enqueue(j).await {
            Ok(()) => accepted.push(id),
            Err(StoreError::Unavailable(_)) => refusals += 1,
            Err(e) => panic!("enqueue {n}: {e}"),
        }
        // Transactions of other kinds while full, as the API and the worker run them.
        if refusals > 0 {
            let _ = store.request_kill(&JobId::new(1), Visibility::All, Timestamp::from_millis(1)).await;
            let _ = store.delete(&JobId::new(n + 10_000), Visibility::All).await;
            let _ = store.claim(&NodeId::new("node-a"), 2, Timestamp::from_millis(5)).await;
        }
        if refusals >= 20 {
            break;
        }
    }
    assert!(refusals > 0, "the disk never filled ({} accepted)", accepted.len());

    std::fs::remove_file(&filler).unwrap();
    for n in 1000..1010u32 {
        let j = job(n, 16);
        accepted.push(j.id.to_hex());
        store.enqueue(j).await.expect("space is back: enqueue");
    }
    let claimed = store.claim(&NodeId::new("node-a"), 4, Timestamp::from_millis(9)).await.expect("claim");
    assert!(!claimed.is_empty(), "nothing claimed");

    let in_file = ids_in_file(&db).await;
    let lost: Vec<&String> = accepted.iter().filter(|id| !in_file.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted jobs are not in the file, e.g. {:?}",
        lost.len(),
        accepted.len(),
        &lost[..lost.len().min(3)]
    );
    let mut c = SqliteConnectOptions::new().filename(&db).read_only(true).connect().await.unwrap();
    let running: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'running'").fetch_one(&mut c).await.unwrap();
    assert!(running >= i64::try_from(claimed.len()).unwrap(), "the claim is not in the file: {running} running");
    drop(store);
}

/// Free bytes of the file system at `dir` (`df`, so no unsafe statvfs here).
fn fs2_free(dir: &Path) -> usize {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap()
}
