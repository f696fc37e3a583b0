//! gostint's worker: the dispatcher that claims queue heads the moment a job arrives or a
//! queue frees, and the per-job pipeline of docs/design.md §4 and §5.3 (unwrap → AppRole login →
//! decrypt → layer → validate → pull → create → secrets → copy → start → wait → logs →
//! record → remove → revoke).
//!
//! It talks only to the port traits of `gostint-core`; start reading at [`Worker::run`]
//! and [`pipeline`].
#![warn(missing_docs)]

mod dispatcher;
pub mod image_gc;
mod job_files;
pub mod live;
pub mod pipeline;
mod tenant_metrics;

pub use dispatcher::{NodeState, Worker, WorkerConfig, ORPHAN_MESSAGE};
pub use job_files::{ImageFiles, JobDir, JobFiles};
