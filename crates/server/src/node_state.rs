//! This node's state directory: the id of the previous run on this machine, so that a node
//! restarted after a crash ends that run's jobs (`unknown`) and removes its containers at
//! once, instead of waiting `GOSTINT_STALE_AFTER` for the stale-node sweep.
//!
//! The directory is locked for the process's lifetime (`File::try_lock`, released by the
//! kernel when the process dies), so two nodes can never share it and mistake each other
//! for a previous run.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context;
use gostint_core::NodeId;

/// The locked state directory of a running node.
pub(crate) struct NodeStateDir {
    dir: PathBuf,
    _lock: File,
}

impl NodeStateDir {
    /// Creates and locks `dir`.
    pub(crate) fn lock(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("GOSTINT_STATE_DIR: creating {}", dir.display()))?;
        let path = dir.join("node.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("GOSTINT_STATE_DIR: opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { dir: dir.to_path_buf(), _lock: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "GOSTINT_STATE_DIR {} is in use by another gostint process: give each node its own state directory",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("GOSTINT_STATE_DIR: locking {}", path.display()))
            }
        }
    }

    /// Records `current` as this directory's node and returns the one recorded before, if
    /// it differs (the previous run, which did not shut down cleanly if it still owns jobs).
    pub(crate) fn swap_node_id(&self, current: &NodeId) -> anyhow::Result<Option<NodeId>> {
        let path = self.dir.join("node_uuid");
        let previous = std::fs::read_to_string(&path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        std::fs::write(&path, current.as_str()).with_context(|| format!("writing {}", path.display()))?;
        Ok(previous.filter(|p| p != current.as_str()).map(NodeId::new))
    }

    /// Records this run's job-file directory (bind mode) and returns the previous run's, if
    /// it was recorded and differs: a crashed run leaves files there.
    pub(crate) fn swap_job_files_dir(&self, current: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
        let path = self.dir.join("job_files_dir");
        let previous = std::fs::read_to_string(&path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let current = current.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        std::fs::write(&path, &current).with_context(|| format!("writing {}", path.display()))?;
        // Only ever a directory this code made (`gostint-XXXXXX`).
        let ours = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("gostint-"));
        Ok(previous.filter(|p| *p != current).map(PathBuf::from).filter(ours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_dir_holds_one_node_and_remembers_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeStateDir::lock(dir.path()).unwrap();
        assert!(NodeStateDir::lock(dir.path()).is_err(), "a second node is refused");
        assert_eq!(first.swap_node_id(&NodeId::new("a")).unwrap(), None);
        drop(first);
        let second = NodeStateDir::lock(dir.path()).unwrap();
        assert_eq!(second.swap_node_id(&NodeId::new("b")).unwrap(), Some(NodeId::new("a")));
        assert_eq!(second.swap_job_files_dir(Some(Path::new("/dev/shm/gostint-a"))).unwrap(), None);
        assert_eq!(
            second.swap_job_files_dir(Some(Path::new("/dev/shm/gostint-b"))).unwrap(),
            Some(PathBuf::from("/dev/shm/gostint-a"))
        );
        assert_eq!(second.swap_job_files_dir(None).unwrap(), Some(PathBuf::from("/dev/shm/gostint-b")));
        assert_eq!(second.swap_job_files_dir(None).unwrap(), None);
        assert_eq!(second.swap_job_files_dir(Some(Path::new("/etc"))).unwrap(), None);
        assert_eq!(second.swap_job_files_dir(None).unwrap(), None, "never a directory it did not make");
    }
}
