//! Exit codes (documented in `--help`, see [`crate::args::AFTER_HELP`]).
//!
//! Job return codes pass through, so the client's own codes are chosen where jobs rarely
//! land: 2 is what docs/design.md §7 fixes for usage/Vault/HTTP errors; 120 and 121 sit below the
//! shell's 126–165 range (not found, not executable, killed by a signal); 130/143 are the
//! shell's own for SIGINT/SIGTERM.

/// The job succeeded; `--wait=false`: submitted; subcommands: done.
pub const SUCCESS: u8 = 0;
/// Usage, Vault, TLS, transport or HTTP error (including a non-200 answer from gostint).
pub const ERROR: u8 = 2;
/// The job ended `notauthorised`.
pub const NOTAUTHORISED: u8 = 120;
/// The job ended `unknown` (its node vanished), or in a status this client does not know.
pub const UNKNOWN: u8 = 121;
/// Interrupted by SIGINT while waiting.
pub const INTERRUPTED: u8 = 130;
/// Interrupted by SIGTERM while waiting.
pub const TERMINATED: u8 = 143;

/// Whether gostint keeps working on a job in this status (the client keeps polling).
pub fn is_active(status: &str) -> bool {
    matches!(status, "queued" | "running" | "stopping")
}

/// The exit code for a job that reached `status` with `return_code`.
pub fn for_job(status: &str, return_code: i64) -> u8 {
    match status {
        "success" => SUCCESS,
        "failed" => match u8::try_from(return_code) {
            // Any code a process can exit with, except 0: a failed job never exits 0.
            Ok(code) if code != 0 => code,
            _ => 1,
        },
        "notauthorised" => NOTAUTHORISED,
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_outcomes_map_to_exit_codes() {
        assert_eq!(for_job("success", 0), 0);
        assert_eq!(for_job("failed", 3), 3);
        assert_eq!(for_job("failed", 0), 1, "killed, timed out or a pipeline failure");
        assert_eq!(for_job("failed", 137), 137);
        assert_eq!(for_job("failed", 255), 255);
        assert_eq!(for_job("failed", -1), 1);
        assert_eq!(for_job("failed", 300), 1);
        assert_eq!(for_job("notauthorised", 0), NOTAUTHORISED);
        assert_eq!(for_job("unknown", 0), UNKNOWN);
        assert_eq!(for_job("some-future-status", 5), UNKNOWN);
    }

    #[test]
    fn only_queued_running_and_stopping_are_waited_for() {
        for s in ["queued", "running", "stopping"] {
            assert!(is_active(s), "{s}");
        }
        for s in ["success", "failed", "notauthorised", "unknown", ""] {
            assert!(!is_active(s), "{s}");
        }
    }
}
