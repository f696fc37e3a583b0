//! The process lock that makes one database file belong to one gostint process (docs/design.md §5.6).
//!
//! `flock(2)` (std's `File::try_lock`, stable since Rust 1.89, the workspace's
//! `rust-version`) on `<db>.lock`: the kernel drops the lock when the process dies, so a
//! crash never leaves a stale lock behind (a pid file would), and the lock sits on a file of
//! its own, so SQLite's own POSIX locks on the database are not disturbed (closing any
//! descriptor of a file drops every POSIX lock the process holds on it). gostint runs where
//! Docker does, so Unix only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::OpenError;

/// An exclusive `flock` held for as long as this value lives.
#[derive(Debug)]
pub(crate) struct ProcessLock {
    // Never read: holding the descriptor open is what keeps the lock.
    _file: File,
}

impl ProcessLock {
    /// Takes the lock on `<db>.lock`, or says which process holds it.
    pub(crate) fn acquire(db: &Path) -> Result<Self, OpenError> {
        let path = lock_path(db);
        let io_err = |source| OpenError::Io { path: path.clone(), source };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the pid is only there to help the operator.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(OpenError::Locked {
                    db: db.to_path_buf(),
                    lock: path,
                    holder: if holder.is_empty() { "unknown".into() } else { format!("pid {holder}") },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // Record who holds it, for the message a second process prints.
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(Self { _file: file })
    }
}

/// `<db>.lock` beside the database file.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
