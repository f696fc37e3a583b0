//! How the secrets file and the patched `/etc/passwd` reach a job's container, and what the
//! node remembers of each image so that it does not read the same files again.
//!
//! Two ways (`GOSTINT_JOB_FILES`):
//!
//! - **bind** (default): the files are written to a private directory of this node (mode
//!   0700, on tmpfs by default, so secrets never reach a disk) and bound read-only into the
//!   container at create time; the files are unlinked as soon as the container has started
//!   (the mount keeps them readable inside). No archive calls: on Docker each archive call
//!   mounts the container's filesystem and re-executes the daemon, which is most of what
//!   gostint used to add to a job's run time.
//! - **copy**: the original's way, one `PUT /containers/{id}/archive` before start.
//!
//! Bind needs the engine to see this node's directory at the same path (a local engine and
//! gostint not in a container of its own, or the directory shared at the same path). When
//! a create with the binds fails and the same create without them succeeds, the node falls
//! back to copy for good and says so once.
//!
//! `/gostint_image.yml` and `/etc/passwd` of an image are read once per image id (content
//! addressed, so what was read stays true) and kept for the node's lifetime, up to
//! [`MAX_IMAGES`] images.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gostint_core::{BindFile, JobId};
use tracing::{debug, warn};

/// Images remembered; past that the memory starts again (image ids change rarely).
pub(crate) const MAX_IMAGES: usize = 256;
/// A metadata file bigger than this is read again for every job rather than kept.
const MAX_REMEMBERED_FILE: usize = 1 << 20;

/// What gostint reads from an image before a job runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFiles {
    /// `/gostint_image.yml`, if the image has one.
    pub gostint_image: Option<Vec<u8>>,
    /// `/etc/passwd`, if the image has one.
    pub passwd: Option<Vec<u8>>,
}

/// The node's job-file directory and image memory (one per node, shared by its jobs).
#[derive(Debug)]
pub struct JobFiles {
    dir: Option<tempfile::TempDir>,
    bind: AtomicBool,
    images: Mutex<HashMap<String, Arc<ImageFiles>>>,
}

impl JobFiles {
    /// Copy mode: every job's files go in through the archive API.
    pub fn copy() -> Self {
        Self { dir: None, bind: AtomicBool::new(false), images: Mutex::default() }
    }

    /// Bind mode: a new private directory (`gostint-XXXXXX`, mode 0700) in `base`.
    ///
    /// # Errors
    /// `base` does not exist or is not writable.
    pub fn bind_in(base: &Path) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("gostint-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(base)?;
        Ok(Self { dir: Some(dir), bind: AtomicBool::new(true), images: Mutex::default() })
    }

    /// The private directory, in bind mode.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Whether jobs' files are bound (not yet fallen back to copy).
    pub fn binding(&self) -> bool {
        self.bind.load(Ordering::Relaxed)
    }

    /// Falls back to copy for the rest of the node's life; warns once with the engine's words.
    pub fn stop_binding(&self, engine_said: &str) {
        if self.bind.swap(false, Ordering::Relaxed) {
            warn!(
                dir = %self.dir().map(|d| d.display().to_string()).unwrap_or_default(),
                error = %engine_said,
                "the container engine cannot bind this node's job-file directory: copying files in instead \
                 (slower; share GOSTINT_JOB_FILES_DIR with the engine at the same path, or set GOSTINT_JOB_FILES=copy)"
            );
        }
    }

    /// What was read from image `id` before, if anything.
    pub fn image(&self, id: &str) -> Option<Arc<ImageFiles>> {
        self.images.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Remembers what was read from image `id` (unless a file is too big to keep).
    pub fn remember(&self, id: &str, files: ImageFiles) -> Arc<ImageFiles> {
        let files = Arc::new(files);
        let small = |f: &Option<Vec<u8>>| f.as_ref().is_none_or(|b| b.len() <= MAX_REMEMBERED_FILE);
        if small(&files.gostint_image) && small(&files.passwd) {
            let mut images = self.images.lock().unwrap_or_else(|p| p.into_inner());
            if images.len() >= MAX_IMAGES {
                images.clear();
            }
            images.insert(id.to_string(), files.clone());
        }
        files
    }

    /// Writes `files` (container path, bytes) for one job, mode 0444, under the node's
    /// directory; `None` in copy mode.
    ///
    /// # Errors
    /// The directory cannot be written (full tmpfs, removed under the node).
    pub fn write(&self, job: &JobId, files: &[(&str, &[u8])]) -> std::io::Result<Option<JobDir>> {
        let Some(base) = self.dir() else { return Ok(None) };
        let path = base.join(job.to_hex());
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        // From here on a failure removes what was written (JobDir's drop).
        let mut dir = JobDir { path, binds: Vec::with_capacity(files.len()) };
        for (i, (container, bytes)) in files.iter().enumerate() {
            let host = dir.path.join(format!("f{i}"));
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o444).open(&host)?;
            f.write_all(bytes)?;
            dir.binds.push(BindFile { host: host.to_string_lossy().into_owned(), container: (*container).to_string() });
        }
        Ok(Some(dir))
    }
}

/// One job's bound files on the host; removed when dropped.
#[derive(Debug)]
pub struct JobDir {
    path: PathBuf,
    /// What to bind where.
    pub binds: Vec<BindFile>,
}

impl Drop for JobDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => debug!(dir = %self.path.display(), "job files removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(dir = %self.path.display(), error = %e, "could not remove a job's files"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_files_are_private_read_only_and_removed_with_the_job() {
        let base = tempfile::tempdir().unwrap();
        let files = JobFiles::bind_in(base.path()).unwrap();
        let node_dir = files.dir().unwrap().to_path_buf();
        assert_eq!(std::fs::metadata(&node_dir).unwrap().permissions().mode() & 0o777, 0o700);
        let id = JobId::new(1_700_000_000);
        let dir =
            files.write(&id, &[("/secrets.yml", b"---\nTOKEN: x\n"), ("/etc/passwd", b"root\n")]).unwrap().unwrap();
        assert_eq!(dir.binds.len(), 2);
        assert_eq!(dir.binds[0].container, "/secrets.yml");
        let host = PathBuf::from(&dir.binds[0].host);
        assert!(host.starts_with(&node_dir));
        assert_eq!(std::fs::read(&host).unwrap(), b"---\nTOKEN: x\n");
        assert_eq!(std::fs::metadata(&host).unwrap().permissions().mode() & 0o777, 0o444);
        let job_dir = host.parent().unwrap().to_path_buf();
        assert_eq!(std::fs::metadata(&job_dir).unwrap().permissions().mode() & 0o777, 0o700);
        drop(dir);
        assert!(!job_dir.exists(), "the job's files go with it");
        drop(files);
        assert!(!node_dir.exists(), "the node's directory goes with the node");
    }

    #[test]
    fn copy_mode_writes_nothing_and_fallback_is_one_way() {
        let files = JobFiles::copy();
        assert!(!files.binding());
        assert!(files.write(&JobId::new(1), &[("/x", b"y")]).unwrap().is_none());
        let base = tempfile::tempdir().unwrap();
        let files = JobFiles::bind_in(base.path()).unwrap();
        assert!(files.binding());
        files.stop_binding("bind source path does not exist");
        files.stop_binding("again");
        assert!(!files.binding());
    }

    #[test]
    fn image_memory_is_bounded_and_skips_big_files() {
        let files = JobFiles::copy();
        let small = ImageFiles { gostint_image: None, passwd: Some(b"root:x:0:0::/:/bin/sh\n".to_vec()) };
        files.remember("sha256:a", small.clone());
        assert_eq!(files.image("sha256:a").as_deref(), Some(&small));
        let big = ImageFiles { gostint_image: Some(vec![b'#'; MAX_REMEMBERED_FILE + 1]), passwd: None };
        assert_eq!(*files.remember("sha256:b", big.clone()), big, "still returned for this job");
        assert!(files.image("sha256:b").is_none(), "but not kept");
        for i in 0..MAX_IMAGES + 1 {
            files.remember(&format!("sha256:{i}"), small.clone());
        }
        assert!(files.images.lock().unwrap().len() <= MAX_IMAGES);
    }
}
