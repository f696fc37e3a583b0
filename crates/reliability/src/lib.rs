//! The reliability suite (issue 16, RELIABILITY.md): scenarios that drive the real `gostint`
//! binary, OpenBao, Docker and PostgreSQL through faults and load, and print their figures.

pub mod fixtures;
