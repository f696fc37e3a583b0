//! Keeping the API token (and the AppRole login token, its parent) alive while `run` waits:
//! renewed before half its TTL has passed, so a job longer than `--api-token-ttl` does not
//! leave the client unable to ask for its outcome.

use std::convert::Infallible;
use std::time::Duration;

use crate::output::Diag;
use crate::session::Session;

/// Never renew more often than this (a tiny TTL must not turn into a busy loop).
const MIN_PAUSE: Duration = Duration::from_millis(500);

/// Seconds of a Vault duration: `90`, `90s`, `15m`, `1h30m`, `2d`; `None` if not one.
pub fn ttl_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let n: u64 = std::mem::take(&mut digits).parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    digits.is_empty().then_some(total).filter(|t| *t > 0)
}

/// Renews the session's API token every half TTL, for as long as it is polled (the caller
/// drops it when the wait ends). A refused renewal is a warning, and renewing stops.
pub async fn keep_alive(session: &Session, ttl: &str, diag: &Diag) -> Infallible {
    let mut pause = ttl_seconds(ttl).map_or(MIN_PAUSE, |s| Duration::from_millis(s * 500)).max(MIN_PAUSE);
    loop {
        tokio::time::sleep(pause).await;
        match session.renew(ttl).await {
            Ok(Some(secs)) => pause = Duration::from_millis(secs * 500).max(MIN_PAUSE),
            Ok(None) => pause = MIN_PAUSE, // not made yet
            Err(e) => {
                diag.warn(&format!("{e:#}; the job's outcome may not be readable once the API token expires"));
                return std::future::pending().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ttl_seconds;

    #[test]
    fn vault_durations_are_read() {
        assert_eq!(ttl_seconds("1h"), Some(3600));
        assert_eq!(ttl_seconds("1h30m"), Some(5400));
        assert_eq!(ttl_seconds("45"), Some(45));
        assert_eq!(ttl_seconds("3s"), Some(3));
        assert_eq!(ttl_seconds("2d"), Some(172_800));
        assert_eq!(ttl_seconds("1x"), None);
        assert_eq!(ttl_seconds("h"), None);
        assert_eq!(ttl_seconds("10m5"), None);
    }
}
