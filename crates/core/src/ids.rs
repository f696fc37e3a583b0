//! Identifiers: job ids in the original's ObjectId shape, node ids.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

/// A job id: 12 bytes shown as 24 lower-case hex characters, shaped like a MongoDB
/// ObjectId (4-byte big-endian Unix seconds, then 8 random bytes) so that existing
/// clients that validate the id keep working (docs/design.md §2.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId([u8; 12]);

impl JobId {
    /// A fresh id stamped with `unix_seconds`.
    pub fn new(unix_seconds: u32) -> Self {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&unix_seconds.to_be_bytes());
        rand::thread_rng().fill_bytes(&mut bytes[4..]);
        Self(bytes)
    }

    /// The 24-character lower-case hex form.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(24);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// The text is not 24 hex characters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid job ID (not ObjectIdHex)")]
pub struct InvalidJobId;

impl FromStr for JobId {
    type Err = InvalidJobId;

    /// Accepts 24 hex characters in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidJobId);
        }
        let mut bytes = [0u8; 12];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| InvalidJobId)?;
            bytes[i] = u8::from_str_radix(hex, 16).map_err(|_| InvalidJobId)?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.to_hex())
    }
}

/// The id a gostint node mints at each start (a UUID v4 in text form).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// Wraps an id made elsewhere (the server mints a UUID v4).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl NodeId {
    /// The `output` of this node's jobs when it stops heartbeating (docs/design.md §5.6).
    pub fn lost_message(&self) -> String {
        format!("gostint node {} stopped reporting; outcome unknown", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who submitted a job: the Vault token's `entity_id`, or `accessor:<accessor>` for a
/// token without an entity. Never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// Wraps an identity string (see [`crate::vault::TokenInfo::owner`]).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The text form stored with the job.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_round_trips_and_starts_with_the_timestamp() {
        let id = JobId::new(0x5b6d_1a2b);
        let hex = id.to_hex();
        assert_eq!(hex.len(), 24);
        assert!(hex.starts_with("5b6d1a2b"));
        assert_eq!(hex.parse::<JobId>().unwrap(), id);
        assert_eq!(hex.to_uppercase().parse::<JobId>().unwrap(), id);
    }

    #[test]
    fn job_id_rejects_bad_text() {
        for bad in ["", "xyz", "5b6d1a2b5b6d1a2b5b6d1a2", "5b6d1a2b5b6d1a2b5b6d1a2g", "5b6d1a2b5b6d1a2b5b6d1a2bb"] {
            assert_eq!(bad.parse::<JobId>(), Err(InvalidJobId), "{bad}");
        }
    }
}
