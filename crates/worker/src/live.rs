//! A running job's output on its way to the store (docs/design.md §12): masked (§11), cut between
//! characters, capped with the tail kept, and written at most every [`FLUSH_EVERY`].

use std::time::Duration;

use gostint_core::live::{utf8_complete_len, Masker};
use gostint_core::LogChunk;

/// How often pending output is written while the job runs.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// The line put before the kept tail of a stream that went over the cap (the same text the
/// runtime's capture uses).
pub const TRUNCATION_MARKER: &str = "[gostint: output truncated]\n";

/// One stream (stdout or stderr).
#[derive(Debug)]
struct Stream {
    masker: Masker,
    /// Masked bytes not yet turned into text (an incomplete UTF-8 sequence).
    carry: Vec<u8>,
    /// The kept text (without the marker).
    kept: String,
    /// Text not yet written to the store.
    unsent: String,
    truncated: bool,
    max: usize,
}

impl Stream {
    fn new(masker: Masker, max: usize) -> Self {
        Self { masker, carry: Vec::new(), kept: String::new(), unsent: String::new(), truncated: false, max }
    }

    fn push(&mut self, bytes: &[u8]) {
        let masked = self.masker.push(bytes);
        self.carry.extend(masked);
        let n = utf8_complete_len(&self.carry);
        let text = String::from_utf8_lossy(&self.carry[..n]).into_owned();
        self.carry.drain(..n);
        self.add(&text);
    }

    fn finish(&mut self) {
        let rest = self.masker.finish();
        self.carry.extend(rest);
        let text = String::from_utf8_lossy(&self.carry).into_owned();
        self.carry.clear();
        self.add(&text);
    }

    fn add(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.kept.push_str(text);
        self.unsent.push_str(text);
        if self.kept.len() > self.max {
            let mut cut = self.kept.len() - self.max;
            while !self.kept.is_char_boundary(cut) {
                cut += 1;
            }
            self.kept.drain(..cut);
            self.truncated = true;
        }
    }

    /// The text as stored: the marker before the tail if it was cut.
    fn text(&self) -> String {
        if self.truncated {
            format!("{TRUNCATION_MARKER}{}", self.kept)
        } else {
            self.kept.clone()
        }
    }
}

/// What to write next.
#[derive(Debug, PartialEq, Eq)]
pub struct Pending {
    /// New stdout text (or the whole of it with `replace`).
    pub stdout: String,
    /// New stderr text (or the whole of it with `replace`).
    pub stderr: String,
    /// The cap cut a stream: write the whole kept text instead of appending.
    pub replace: bool,
}

/// Both streams of a running job.
#[derive(Debug)]
pub struct LiveOutput {
    out: Stream,
    err: Stream,
    /// Set once a cut has been written whole: later writes replace too.
    replaced: bool,
}

impl LiveOutput {
    /// Output masked for `secrets`, each stream capped at `max` bytes.
    pub fn new(secrets: &[String], max: usize) -> Self {
        let masker = Masker::new(secrets);
        Self { out: Stream::new(masker.clone(), max), err: Stream::new(masker, max), replaced: false }
    }

    /// Takes a chunk from the engine.
    pub fn push(&mut self, chunk: LogChunk) {
        match chunk {
            LogChunk::Stdout(b) => self.out.push(&b),
            LogChunk::Stderr(b) => self.err.push(&b),
        }
    }

    /// Appends a line of gostint's own to stdout (a timeout notice).
    pub fn note(&mut self, text: &str) {
        self.out.add(text);
    }

    /// The output has ended: flush what the maskers held back.
    pub fn finish(&mut self) {
        self.out.finish();
        self.err.finish();
    }

    /// Whether something is waiting to be written.
    pub fn dirty(&self) -> bool {
        !self.out.unsent.is_empty() || !self.err.unsent.is_empty()
    }

    /// What to write now (and forget it as pending).
    pub fn take(&mut self) -> Pending {
        let replace = self.replaced || self.out.truncated || self.err.truncated;
        self.replaced = replace;
        let out = std::mem::take(&mut self.out.unsent);
        let err = std::mem::take(&mut self.err.unsent);
        if replace {
            Pending { stdout: self.out.text(), stderr: self.err.text(), replace }
        } else {
            Pending { stdout: out, stderr: err, replace }
        }
    }

    /// The final stdout and stderr text.
    pub fn texts(&self) -> (String, String) {
        (self.out.text(), self.err.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_across_chunks_and_characters_are_never_cut() {
        let mut live = LiveOutput::new(&["hvs.abcdef".to_string()], 1000);
        live.push(LogChunk::Stdout(b"token hvs.ab".to_vec()));
        live.push(LogChunk::Stdout("cdef ok \u{e9}".as_bytes()[..9].to_vec()));
        let first = live.take();
        assert!(!first.stdout.contains("hvs.ab"), "{first:?}");
        live.push(LogChunk::Stdout("cdef ok \u{e9}".as_bytes()[9..].to_vec()));
        live.push(LogChunk::Stderr(b"to-err\n".to_vec()));
        live.finish();
        let second = live.take();
        assert_eq!(format!("{}{}", first.stdout, second.stdout), "token [MASKED] ok \u{e9}");
        assert_eq!(second.stderr, "to-err\n");
        assert!(!second.replace);
        assert_eq!(live.texts(), ("token [MASKED] ok \u{e9}".to_string(), "to-err\n".to_string()));
    }

    #[test]
    fn over_the_cap_the_tail_is_kept_and_written_whole() {
        let mut live = LiveOutput::new(&[], 5);
        live.push(LogChunk::Stdout(b"abc".to_vec()));
        assert_eq!(live.take(), Pending { stdout: "abc".into(), stderr: String::new(), replace: false });
        live.push(LogChunk::Stdout(b"defgh".to_vec()));
        let p = live.take();
        assert!(p.replace);
        assert_eq!(p.stdout, format!("{TRUNCATION_MARKER}defgh"));
        live.push(LogChunk::Stdout(b"i".to_vec()));
        assert_eq!(live.take().stdout, format!("{TRUNCATION_MARKER}efghi"));
        assert!(!live.dirty());
    }
}
