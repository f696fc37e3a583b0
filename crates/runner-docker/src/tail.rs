//! Bounded capture of a stream: only the last `max` bytes are ever held.

use std::collections::VecDeque;

/// The line put before the kept bytes of a stream that was cut.
pub const TRUNCATION_MARKER: &str = "[gostint: output truncated]\n";

/// Keeps the last `max` bytes pushed into it (a ring over a `VecDeque`), so a job printing
/// gigabytes costs at most `max` bytes of memory per stream.
#[derive(Debug)]
pub(crate) struct Tail {
    buf: VecDeque<u8>,
    max: usize,
    total: u64,
}

impl Tail {
    /// An empty tail keeping at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self { buf: VecDeque::new(), max, total: 0 }
    }

    /// Appends `data`, dropping the oldest bytes beyond `max`.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        let data = &data[data.len().saturating_sub(self.max)..];
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.max);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    /// The kept bytes, after [`TRUNCATION_MARKER`] if anything was dropped.
    pub(crate) fn finish(self) -> Vec<u8> {
        let cut = self.total > self.max as u64;
        let mut out = Vec::with_capacity(self.buf.len() + if cut { TRUNCATION_MARKER.len() } else { 0 });
        if cut {
            out.extend_from_slice(TRUNCATION_MARKER.as_bytes());
        }
        out.extend(self.buf);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(max: usize, chunks: &[&str]) -> String {
        let mut t = Tail::new(max);
        for c in chunks {
            t.push(c.as_bytes());
        }
        String::from_utf8(t.finish()).unwrap()
    }

    #[test]
    fn output_within_the_limit_is_kept_whole_without_marker() {
        assert_eq!(tail_of(10, &[]), "");
        assert_eq!(tail_of(10, &["abc", "def"]), "abcdef");
        assert_eq!(tail_of(6, &["abc", "def"]), "abcdef");
    }

    #[test]
    fn output_over_the_limit_keeps_the_last_bytes_after_the_marker() {
        assert_eq!(tail_of(4, &["abc", "def"]), format!("{TRUNCATION_MARKER}cdef"));
        assert_eq!(tail_of(4, &["abcdefgh"]), format!("{TRUNCATION_MARKER}efgh"));
        assert_eq!(tail_of(4, &["ab", "cdefghij", "k"]), format!("{TRUNCATION_MARKER}hijk"));
        assert_eq!(tail_of(3, &["a"; 10]), format!("{TRUNCATION_MARKER}aaa"));
    }

    #[test]
    fn a_zero_limit_keeps_only_the_marker() {
        assert_eq!(tail_of(0, &[]), "");
        assert_eq!(tail_of(0, &["x"]), TRUNCATION_MARKER);
    }

    #[test]
    fn the_buffer_never_grows_past_the_limit() {
        let mut t = Tail::new(100);
        for _ in 0..1000 {
            t.push(&[b'x'; 37]);
            assert!(t.buf.len() <= 100);
        }
        assert_eq!(t.finish().len(), 100 + TRUNCATION_MARKER.len());
    }
}
