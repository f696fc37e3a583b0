//! Timestamps kept as milliseconds since the Unix epoch and shown as the original did.

use std::fmt;

/// A UTC instant with millisecond precision; `Timestamp::ZERO` means "unset" and shows as
/// `0001-01-01T00:00:00Z` (docs/design.md §2.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Unset.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The current time.
    pub fn now() -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// From milliseconds since the epoch (0 = unset).
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch (0 = unset).
    pub fn millis(&self) -> i64 {
        self.0
    }

    /// Whether this is the unset value.
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    /// Parses an RFC 3339 instant (e.g. Vault's `creation_time`, nanoseconds and offsets
    /// allowed); `None` when it is not one.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let dt = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
        i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok().map(Self)
    }

    /// This instant plus `secs` seconds (saturating).
    pub fn plus_seconds(&self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// Whole seconds since the epoch, for ids.
    pub fn unix_seconds(&self) -> u32 {
        (self.0 / 1000).clamp(0, u32::MAX as i64) as u32
    }

    /// RFC 3339 UTC with `Z`, milliseconds with trailing zeros dropped.
    pub fn to_rfc3339(&self) -> String {
        if self.0 == 0 {
            return "0001-01-01T00:00:00Z".to_string();
        }
        let Ok(dt) = time::OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000) else {
            return "0001-01-01T00:00:00Z".to_string();
        };
        let base = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        let ms = dt.millisecond();
        if ms == 0 {
            format!("{base}Z")
        } else {
            let frac = format!("{ms:03}");
            format!("{base}.{}Z", frac.trim_end_matches('0'))
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_original() {
        assert_eq!(Timestamp::ZERO.to_rfc3339(), "0001-01-01T00:00:00Z");
        // 2018-08-10T09:15:31.014Z
        assert_eq!(Timestamp::from_millis(1_533_892_531_014).to_rfc3339(), "2018-08-10T09:15:31.014Z");
        assert_eq!(Timestamp::from_millis(1_533_892_531_010).to_rfc3339(), "2018-08-10T09:15:31.01Z");
        assert_eq!(Timestamp::from_millis(1_533_892_531_000).to_rfc3339(), "2018-08-10T09:15:31Z");
    }

    #[test]
    fn parses_vault_creation_times() {
        let t = Timestamp::parse_rfc3339("2018-08-10T09:15:31.014123456Z").expect("nanoseconds");
        assert_eq!(t, Timestamp::from_millis(1_533_892_531_014));
        assert_eq!(
            Timestamp::parse_rfc3339("2018-08-10T11:15:31+02:00"),
            Some(Timestamp::from_millis(1_533_892_531_000))
        );
        assert_eq!(t.plus_seconds(2).millis(), 1_533_892_533_014);
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Timestamp::parse_rfc3339(""), None);
    }
}
