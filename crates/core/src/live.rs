//! Live output (docs/design.md §12) and secret masking (docs/design.md §11): the streaming [`Masker`]
//! the worker runs every output chunk through, and the in-process [`LiveHub`] that wakes
//! stream and long-poll handlers when a job's output or status changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::JobId;

/// What a masked value is replaced with.
pub const MASK: &str = "[MASKED]";

/// Shorter values are not masked: masking `yes` or `1` would garble ordinary output.
pub const MIN_MASKED_LEN: usize = 6;

/// Replaces every secret value in a byte stream by [`MASK`], also when a value arrives split
/// across chunks. It holds back at most `longest secret − 1` bytes between calls.
#[derive(Clone, Default)]
pub struct Masker {
    /// Longest first, so a value containing another is masked whole.
    secrets: Vec<Vec<u8>>,
    longest: usize,
    pending: Vec<u8>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("Masker").field("secrets", &self.secrets.len()).finish()
    }
}

impl Masker {
    /// A masker for `values`; those shorter than [`MIN_MASKED_LEN`] bytes are ignored.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut secrets: Vec<Vec<u8>> =
            values.into_iter().map(|v| v.as_ref().to_vec()).filter(|v| v.len() >= MIN_MASKED_LEN).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let longest = secrets.first().map_or(0, Vec::len);
        Self { secrets, longest, pending: Vec::new() }
    }

    /// Whether anything is masked at all.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Feeds `chunk`; returns the bytes that are now certain (masked).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        let (out, consumed) = self.scan(false);
        self.pending.drain(..consumed);
        out
    }

    /// Ends the stream: the held-back bytes, masked.
    pub fn finish(&mut self) -> Vec<u8> {
        let (out, _) = self.scan(true);
        self.pending.clear();
        out
    }

    /// Masks `pending`: returns the output and how many input bytes it covers. Unless
    /// `last`, a position is only emitted once no secret can still start there.
    fn scan(&self, last: bool) -> (Vec<u8>, usize) {
        let buf = &self.pending;
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            let rest = &buf[i..];
            // Too little left to tell: a longer secret may still start here. Hold back
            // (always fewer than `longest` bytes).
            if !last
                && rest.len() < self.longest
                && self.secrets.iter().any(|s| s.len() > rest.len() && s.starts_with(rest))
            {
                break;
            }
            if let Some(s) = self.secrets.iter().find(|s| rest.starts_with(s)) {
                out.extend_from_slice(MASK.as_bytes());
                i += s.len();
            } else {
                out.push(buf[i]);
                i += 1;
            }
        }
        (out, i)
    }
}

/// Splits `buf` before an incomplete UTF-8 sequence at its end, so text is only ever cut
/// between characters: returns how many bytes are complete.
pub fn utf8_complete_len(buf: &[u8]) -> usize {
    // A sequence is at most 4 bytes: look at the last 3 for a lead byte whose sequence
    // runs past the end.
    let n = buf.len();
    for back in 1..=3.min(n) {
        let b = buf[n - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte
        }
        let need = if b & 0b1000_0000 == 0 {
            1
        } else if b & 0b1110_0000 == 0b1100_0000 {
            2
        } else if b & 0b1111_0000 == 0b1110_0000 {
            3
        } else if b & 0b1111_1000 == 0b1111_0000 {
            4
        } else {
            1
        };
        return if need > back { n - back } else { n };
    }
    n
}

/// Wakes the handlers that follow jobs (SSE streams, long-polls) when a job's output or
/// status changed on this node (the worker publishes) or on another (the store's
/// LISTEN/NOTIFY delivers [`StoreEvent::JobChanged`](crate::StoreEvent::JobChanged)). It
/// also counts each caller's open streams for the per-caller cap.
#[derive(Debug)]
pub struct LiveHub {
    tx: broadcast::Sender<JobId>,
    streams: Mutex<HashMap<String, usize>>,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveHub {
    /// An empty hub.
    pub fn new() -> Self {
        // A follower that falls behind sees `Lagged` and re-reads its job: nothing is lost.
        let (tx, _) = broadcast::channel(1024);
        Self { tx, streams: Mutex::new(HashMap::new()) }
    }

    /// Job `id` changed (new output, new status).
    pub fn publish(&self, id: JobId) {
        let _ = self.tx.send(id);
    }

    /// A receiver of every later change (subscribe before reading the store, so no change
    /// between the read and the wait is missed).
    pub fn subscribe(&self) -> broadcast::Receiver<JobId> {
        self.tx.subscribe()
    }

    /// Opens a stream for `caller` unless it has `cap` open already (0 = no cap).
    pub fn open_stream(self: &Arc<Self>, caller: &str, cap: usize) -> Option<StreamSlot> {
        let mut streams = self.streams.lock().expect("stream counter lock poisoned");
        let open = streams.entry(caller.to_string()).or_insert(0);
        if cap != 0 && *open >= cap {
            return None;
        }
        *open += 1;
        Some(StreamSlot { hub: self.clone(), caller: caller.to_string() })
    }

    /// Streams `caller` has open.
    pub fn open_streams(&self, caller: &str) -> usize {
        self.streams.lock().expect("stream counter lock poisoned").get(caller).copied().unwrap_or(0)
    }
}

/// One open stream of a caller; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    hub: Arc<LiveHub>,
    caller: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock().expect("stream counter lock poisoned");
        if let Some(open) = streams.get_mut(&self.caller) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_all(m: &mut Masker, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(m.push(c));
        }
        out.extend(m.finish());
        out
    }

    #[test]
    fn a_value_split_at_every_position_is_masked() {
        let secrets = ["s3cr3t-value", "hvs.TOKEN123"];
        let text = b"before s3cr3t-value mid hvs.TOKEN123 after s3cr3t-values";
        let want = b"before [MASKED] mid [MASKED] after [MASKED]s".to_vec();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                let mut m = Masker::new(secrets);
                let got = mask_all(&mut m, &[&text[..a], &text[a..b], &text[b..]]);
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "split at {a},{b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_feeding_masks_and_holds_back_less_than_the_longest_value() {
        let mut m = Masker::new(["abcdefgh"]);
        let text = b"xxabcdefghyyabcdefgzz";
        let mut out = Vec::new();
        for b in text {
            out.extend(m.push(&[*b]));
            assert!(m.pending.len() < 8, "holds back at most longest-1 bytes");
        }
        out.extend(m.finish());
        assert_eq!(out, b"xx[MASKED]yyabcdefgzz");
    }

    #[test]
    fn overlapping_values_mask_the_longest_and_short_values_are_ignored() {
        let mut m = Masker::new(["secret", "secret-longer", "abc"]);
        let out = mask_all(&mut m, &[b"secret-longer secret-long abc"]);
        assert_eq!(out, b"[MASKED] [MASKED]-long abc");
        let mut m = Masker::new(["secret", "secret-longer"]);
        for cut in 0..=13 {
            let text = b"secret-longer";
            let mut m2 = m.clone();
            let out = mask_all(&mut m2, &[&text[..cut], &text[cut..]]);
            assert_eq!(out, b"[MASKED]", "cut at {cut}");
        }
        assert!(mask_all(&mut m, &[]).is_empty());
    }

    #[test]
    fn without_secrets_output_passes_through_at_once() {
        let mut m = Masker::new(Vec::<String>::new());
        assert!(m.is_empty());
        assert_eq!(m.push(b"abc"), b"abc");
        assert!(m.finish().is_empty());
        assert_eq!(format!("{:?}", Masker::new(["topsecret"])), "Masker { secrets: 1 }");
    }

    #[test]
    fn utf8_cut_points_fall_between_characters() {
        let s = "aé€😀".as_bytes();
        assert_eq!(utf8_complete_len(s), s.len());
        assert_eq!(utf8_complete_len(&s[..s.len() - 1]), s.len() - 4);
        assert_eq!(utf8_complete_len(&s[..s.len() - 3]), s.len() - 4);
        assert_eq!(utf8_complete_len(&s[..2]), 1);
        assert_eq!(utf8_complete_len(b""), 0);
    }

    #[test]
    fn the_stream_cap_counts_per_caller_and_frees_on_drop() {
        let hub = Arc::new(LiveHub::new());
        let a = hub.open_stream("alice", 2).unwrap();
        let _b = hub.open_stream("alice", 2).unwrap();
        assert!(hub.open_stream("alice", 2).is_none());
        assert!(hub.open_stream("bob", 2).is_some());
        drop(a);
        assert!(hub.open_stream("alice", 2).is_some());
        assert_eq!(hub.open_streams("alice"), 1);
    }
}
