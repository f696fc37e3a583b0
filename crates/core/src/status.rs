//! The job state machine of docs/design.md §5.1, in one place.

use std::fmt;
use std::str::FromStr;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Stored, waiting in its queue.
    Queued,
    /// Claimed by a node; being prepared or running.
    Running,
    /// A kill is in progress.
    Stopping,
    /// The container exited 0.
    Success,
    /// A pipeline error, a non-zero exit, a kill or a timeout.
    Failed,
    /// The job could not become the job AppRole (unwrap or login failed).
    NotAuthorised,
    /// The node that owned it vanished.
    Unknown,
}

/// What moves a job from one status to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// A node claimed the job.
    Claim,
    /// A kill reached a queued job, or a running job began stopping.
    Kill,
    /// The run ended with this terminal status.
    Finish(JobStatus),
    /// The owning node stopped heartbeating.
    NodeLost,
}

/// A transition that the state machine does not allow.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("job status {from} does not allow {event:?}")]
pub struct InvalidTransition {
    /// The status the job had.
    pub from: JobStatus,
    /// What was attempted.
    pub event: JobEvent,
}

impl JobStatus {
    /// Every status, in the order the health map lists them.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Stopping,
        JobStatus::Success,
        JobStatus::Failed,
        JobStatus::NotAuthorised,
        JobStatus::Unknown,
    ];

    /// The wire and store spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Stopping => "stopping",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::NotAuthorised => "notauthorised",
            JobStatus::Unknown => "unknown",
        }
    }

    /// Whether clients stop polling at this status.
    pub fn is_final(&self) -> bool {
        matches!(self, JobStatus::Success | JobStatus::Failed | JobStatus::NotAuthorised | JobStatus::Unknown)
    }

    /// Whether the job holds its queue (at most one active job per qname).
    pub fn is_active(&self) -> bool {
        matches!(self, JobStatus::Running | JobStatus::Stopping)
    }

    /// Applies `event`, or says why it is not allowed.
    pub fn transition(self, event: JobEvent) -> Result<JobStatus, InvalidTransition> {
        use JobStatus::*;
        let next = match (self, event) {
            (Queued, JobEvent::Claim) => Some(Running),
            (Queued, JobEvent::Kill) => Some(Failed),
            (Running, JobEvent::Kill) => Some(Stopping),
            (Running, JobEvent::Finish(end @ (Success | Failed | NotAuthorised))) => Some(end),
            (Stopping, JobEvent::Finish(Failed)) => Some(Failed),
            // The owning node may come back and replace `unknown` with the real outcome.
            (Unknown, JobEvent::Finish(end @ (Success | Failed | NotAuthorised))) => Some(end),
            (Running | Stopping, JobEvent::NodeLost) => Some(Unknown),
            _ => None,
        };
        next.ok_or(InvalidTransition { from: self, event })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of the seven status words.
#[derive(Debug, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    #[test]
    fn every_pair_follows_the_contract() {
        let events = [
            JobEvent::Claim,
            JobEvent::Kill,
            JobEvent::NodeLost,
            JobEvent::Finish(Queued),
            JobEvent::Finish(Running),
            JobEvent::Finish(Stopping),
            JobEvent::Finish(Success),
            JobEvent::Finish(Failed),
            JobEvent::Finish(NotAuthorised),
            JobEvent::Finish(Unknown),
        ];
        let allowed: &[(JobStatus, JobEvent, JobStatus)] = &[
            (Queued, JobEvent::Claim, Running),
            (Queued, JobEvent::Kill, Failed),
            (Running, JobEvent::Kill, Stopping),
            (Running, JobEvent::Finish(Success), Success),
            (Running, JobEvent::Finish(Failed), Failed),
            (Running, JobEvent::Finish(NotAuthorised), NotAuthorised),
            (Stopping, JobEvent::Finish(Failed), Failed),
            (Unknown, JobEvent::Finish(Success), Success),
            (Unknown, JobEvent::Finish(Failed), Failed),
            (Unknown, JobEvent::Finish(NotAuthorised), NotAuthorised),
            (Running, JobEvent::NodeLost, Unknown),
            (Stopping, JobEvent::NodeLost, Unknown),
        ];
        for from in JobStatus::ALL {
            for event in events {
                let expected = allowed.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to);
                assert_eq!(from.transition(event).ok(), expected, "{from} + {event:?}");
            }
        }
    }

    #[test]
    fn status_words_round_trip() {
        for st in JobStatus::ALL {
            assert_eq!(st.as_str().parse::<JobStatus>().unwrap(), st);
        }
        assert!("done".parse::<JobStatus>().is_err());
    }
}
