//! What the client writes: job output byte for byte (never through a format string),
//! diagnostics on stderr, the progress line, and the readable forms of `status` and `list`.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use serde_json::Value;

/// Writes `bytes` to stdout and flushes. A closed pipe (`… | head`) is success: the reader
/// has what it wanted (as ripgrep does).
///
/// # Errors
/// Any other write failure (e.g. a full disk).
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `bytes` to stderr; there is nowhere to report a failure of that.
pub fn write_stderr(bytes: &[u8]) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(bytes).and_then(|()| err.flush());
}

/// Debug lines and warnings on stderr.
#[derive(Clone, Copy, Debug, Default)]
pub struct Diag {
    /// `--debug`.
    pub debug: bool,
}

impl Diag {
    /// `gostint-client: debug: <msg>` with `--debug`. Callers never pass a token.
    pub fn debug(&self, msg: impl AsRef<str>) {
        if self.debug {
            write_stderr(format!("gostint-client: debug: {}\n", msg.as_ref()).as_bytes());
        }
    }

    /// `gostint-client: warning: <msg>`, always.
    pub fn warn(&self, msg: &str) {
        write_stderr(format!("gostint-client: warning: {msg}\n").as_bytes());
    }
}

/// The `[status] id, elapsed` line redrawn on a terminal while waiting; nothing when stderr
/// is not a terminal (or with `--debug`, whose lines it would garble). Cleared when done,
/// and on drop, so an interrupted wait leaves no half line.
pub struct Progress {
    enabled: bool,
    drawn: bool,
}

impl Progress {
    /// A progress line, if stderr is a terminal and `debug` is off.
    pub fn new(debug: bool) -> Self {
        Self { enabled: !debug && io::stderr().is_terminal(), drawn: false }
    }

    /// Redraws the line.
    pub fn update(&mut self, status: &str, id: &str, elapsed: Duration) {
        if self.enabled {
            write_stderr(progress_line(status, id, elapsed).as_bytes());
            self.drawn = true;
        }
    }

    /// Erases the line.
    pub fn clear(&mut self) {
        if self.drawn {
            write_stderr(b"\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

fn progress_line(status: &str, id: &str, elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    let time = if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    };
    format!("\r\x1b[2Kgostint-client: job {id} {status} ({time})")
}

/// How gostint writes a time not set yet (docs/design.md §2.1).
const UNSET_TIME: &str = "0001-01-01T00:00:00Z";

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn shown(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// What a job that did not succeed prints on stderr: `[<status>] <output>` (red on a
/// terminal), one final newline added if the output lacks it.
pub fn failure_banner(job: &Value, colour: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if colour {
        out.extend_from_slice(b"\x1b[31m");
    }
    out.extend_from_slice(format!("[{}] ", str_field(job, "status")).as_bytes());
    let output = str_field(job, "output");
    // The colour ends before the final newline, so the next line starts plain.
    out.extend_from_slice(output.strip_suffix('\n').unwrap_or(output).as_bytes());
    if colour {
        out.extend_from_slice(b"\x1b[0m");
    }
    out.push(b'\n');
    out
}

/// `status ID` without `--json`: one `field: value` line each, then the output and stderr
/// as they are.
pub fn status_text(job: &Value) -> Vec<u8> {
    let mut out = String::new();
    for (label, key) in [
        ("id", "_id"),
        ("status", "status"),
        ("queue", "qname"),
        ("image", "container_image"),
        ("submitted", "submitted"),
        ("started", "started"),
        ("ended", "ended"),
        ("return code", "return_code"),
        ("tty", "tty"),
        ("container", "container_id"),
        ("kill requested", "kill_requested"),
        ("node", "node_uuid"),
    ] {
        let mut value = shown(job, key);
        if value == UNSET_TIME {
            value = "-".into();
        }
        let line = format!("{:15} {value}", format!("{label}:"));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let mut bytes = out.into_bytes();
    for (label, key) in [("output", "output"), ("stderr", "stderr")] {
        let text = str_field(job, key);
        if text.is_empty() {
            continue;
        }
        bytes.extend_from_slice(format!("--- {label} ---\n").as_bytes());
        bytes.extend_from_slice(text.as_bytes());
        if !text.ends_with('\n') {
            bytes.push(b'\n');
        }
    }
    bytes
}

/// `list` without `--json`: a table, then which slice of how many.
pub fn list_text(page: &Value) -> String {
    let jobs: Vec<&Value> = page.get("data").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let total = page.get("total").and_then(Value::as_u64).unwrap_or_default();
    let skip = page.get("skip").and_then(Value::as_u64).unwrap_or_default();
    if jobs.is_empty() {
        return if total == 0 { "no jobs\n".into() } else { format!("no jobs after the first {skip} (of {total})\n") };
    }
    let headers = ["ID", "STATUS", "RC", "QUEUE", "SUBMITTED", "IMAGE"];
    let rows: Vec<[String; 6]> = jobs
        .iter()
        .map(|j| {
            [
                shown(j, "_id"),
                shown(j, "status"),
                shown(j, "return_code"),
                shown(j, "qname"),
                shown(j, "submitted"),
                shown(j, "container_image"),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:w$}  "));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(&headers.map(String::from));
    for row in &rows {
        out.push_str(&line(row));
    }
    let last = skip + jobs.len() as u64;
    out.push_str(&format!("jobs {}-{last} of {total}", skip + 1));
    if last < total {
        out.push_str(&format!("; next page: --skip {last}"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(id: &str, status: &str, rc: i64, q: &str) -> Value {
        json!({"_id": id, "status": status, "node_uuid": "n1", "qname": q, "container_image": "busybox:latest",
               "submitted": "2026-11-28T20:00:01.5Z", "started": "2026-11-28T20:00:02Z", "ended": "2026-11-28T20:00:03Z",
               "output": "100% done\n", "stderr": "warn", "return_code": rc, "tty": false, "container_id": "c0ffee",
               "kill_requested": false})
    }

    #[test]
    fn the_list_table_fits_its_columns_and_says_what_comes_next() {
        let page = json!({"data": [job("65f0c0ffee0123456789abcd", "success", 0, "q"),
                                   job("65f0c0ffee0123456789abce", "failed", 3, "a-longer-queue")],
                          "skip": 0, "limit": 10, "total": 12});
        assert_eq!(
            list_text(&page),
            "\
ID                        STATUS   RC  QUEUE           SUBMITTED               IMAGE
65f0c0ffee0123456789abcd  success  0   q               2026-11-28T20:00:01.5Z  busybox:latest
65f0c0ffee0123456789abce  failed   3   a-longer-queue  2026-11-28T20:00:01.5Z  busybox:latest
jobs 1-2 of 12; next page: --skip 2
"
        );
        assert_eq!(list_text(&json!({"data": [], "skip": 0, "total": 0})), "no jobs\n");
        assert_eq!(list_text(&json!({"data": [], "skip": 20, "total": 3})), "no jobs after the first 20 (of 3)\n");
    }

    #[test]
    fn status_text_shows_unset_times_and_empty_fields_without_noise() {
        let mut j = job("65f0c0ffee0123456789abcd", "queued", 0, "");
        j["ended"] = json!(UNSET_TIME);
        j["output"] = json!("");
        j["stderr"] = json!("");
        let text = String::from_utf8(status_text(&j)).unwrap();
        assert!(text.contains("\nqueue:\n"), "{text}");
        assert!(text.contains("\nended:          -\n"), "{text}");
        assert!(!text.contains("---"), "no empty output sections: {text}");
    }

    #[test]
    fn status_text_lists_the_fields_then_output_and_stderr_verbatim() {
        let text = String::from_utf8(status_text(&job("65f0c0ffee0123456789abcd", "failed", 3, "q"))).unwrap();
        assert_eq!(
            text,
            "\
id:             65f0c0ffee0123456789abcd
status:         failed
queue:          q
image:          busybox:latest
submitted:      2026-11-28T20:00:01.5Z
started:        2026-11-28T20:00:02Z
ended:          2026-11-28T20:00:03Z
return code:    3
tty:            false
container:      c0ffee
kill requested: false
node:           n1
--- output ---
100% done
--- stderr ---
warn
"
        );
    }

    #[test]
    fn the_failure_banner_is_red_only_when_asked() {
        let j = json!({"status": "notauthorised", "output": "50% %s {} alert"});
        assert_eq!(failure_banner(&j, false), b"[notauthorised] 50% %s {} alert\n");
        assert_eq!(failure_banner(&j, true), b"\x1b[31m[notauthorised] 50% %s {} alert\x1b[0m\n");
        let j = json!({"status": "failed", "output": "partial\n"});
        assert_eq!(failure_banner(&j, false), b"[failed] partial\n");
        assert_eq!(failure_banner(&j, true), b"\x1b[31m[failed] partial\x1b[0m\n");
    }

    #[test]
    fn the_progress_line_shows_status_and_elapsed_time() {
        assert_eq!(
            progress_line("running", "abc", Duration::from_secs(75)),
            "\r\x1b[2Kgostint-client: job abc running (1m15s)"
        );
        assert!(progress_line("queued", "abc", Duration::from_secs(3)).ends_with("queued (3s)"));
        assert!(progress_line("queued", "abc", Duration::from_secs(3723)).ends_with("(1h02m03s)"));
    }
}
