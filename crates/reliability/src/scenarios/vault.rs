//! OpenBao scenarios (stalls with short and long client timeouts), on a private OpenBao of
//! [`crate::fixtures`].

use super::Scenario;

/// The OpenBao scenarios.
pub fn scenarios() -> Vec<Scenario> {
    Vec::new()
}
