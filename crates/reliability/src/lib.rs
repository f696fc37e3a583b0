//! The reliability suite (issue 16, RELIABILITY.md): scenarios that drive the real `gostint`
//! binary, OpenBao, Docker and PostgreSQL through faults and load, and print their figures.
//!
//! The pieces: [`node::Node`] (the real binary as a child process), [`api::Api`] (a small
//! client that counts every HTTP code it sees), [`load`] (N jobs over Q queues at
//! concurrency C), [`sample::Sampler`] (RSS and descriptors before / peak / after),
//! [`events::Starts`] (container starts per job, from `docker events`: a job started twice
//! is a duplicate), [`audit`] (lost, stuck, duplicated, out of order) and
//! [`figures::Figures`] (one line per scenario and the table). [`scenarios::all`] lists the
//! scenarios; the `gostint-reliability` binary and `tests/quick.rs` run them.

pub mod api;
pub mod audit;
pub mod ctx;
pub mod events;
pub mod figures;
pub mod fixtures;
pub mod load;
pub mod node;
pub mod rig;
pub mod sample;
pub mod scenarios;

pub use ctx::Ctx;
pub use figures::Figures;
pub use scenarios::{all, run_all, Scenario};
