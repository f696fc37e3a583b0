//! Following a job live (docs/design.md §12): `GET /v1/api/job/{id}/stream` read as server-sent
//! events, resumed with `Last-Event-ID` after a dropped connection, and the text of each
//! `stdout`/`stderr` event handed over byte for byte.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::api::{ApiError, Gostint};

/// Silence longer than this (gostint sends a comment every 15 s) means a dead connection.
const IDLE: Duration = Duration::from_secs(45);
/// Reconnections in a row without any event before giving up.
const MAX_RECONNECTS: u32 = 10;

/// Which stream a piece of output belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The job's stdout.
    Stdout,
    /// The job's stderr.
    Stderr,
}

/// How following ended.
#[derive(Debug)]
pub enum Followed {
    /// The job is final: its view.
    Ended(Value),
    /// The server has no stream route (an older gostint): poll instead.
    Unsupported,
}

/// One parsed event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) id: Option<String>,
    pub(crate) data: String,
}

/// An incremental SSE parser (LF, CR or CRLF line ends).
#[derive(Debug, Default)]
pub(crate) struct Parser {
    buf: Vec<u8>,
    current: Event,
    has_data: bool,
}

impl Parser {
    /// Feeds bytes; returns the events they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            // A CR at the very end may be the first half of a CRLF: wait for more.
            if self.buf[end] == b'\r' && end + 1 == self.buf.len() {
                break;
            }
            let skip = if self.buf[end] == b'\r' && self.buf.get(end + 1) == Some(&b'\n') { 2 } else { 1 };
            let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end + skip);
            if line.is_empty() {
                if self.has_data || !self.current.name.is_empty() {
                    let mut ev = std::mem::take(&mut self.current);
                    if ev.name.is_empty() {
                        ev.name = "message".into();
                    }
                    events.push(ev);
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "event" => self.current.name = value,
                "id" => self.current.id = Some(value),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(&value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        events
    }
}

fn offsets(id: Option<&str>) -> Option<(usize, usize)> {
    let (o, e) = id?.split_once(',')?;
    Some((o.trim().parse().ok()?, e.trim().parse().ok()?))
}

/// Follows job `id` until it is final, calling `out` with each new piece of output and
/// `status` at each status change.
///
/// # Errors
/// A refused stream (403, 404 for a job that is not there), or a connection that cannot be
/// re-established.
pub async fn follow(
    api: &Gostint,
    token: &str,
    id: &str,
    mut out: impl FnMut(Stream, &[u8]),
    mut status: impl FnMut(&str),
) -> Result<Followed, ApiError> {
    let (mut o, mut e) = (0usize, 0usize);
    let mut failures = 0;
    loop {
        let mut request = api
            .request(Method::GET, &format!("/v1/api/job/{id}/stream"), token)
            .header("Accept", "text/event-stream")
            // The stream lasts as long as the job; silence is caught by IDLE below.
            .timeout(Duration::from_secs(365 * 24 * 3600));
        if (o, e) != (0, 0) {
            request = request.header("Last-Event-ID", format!("{o},{e}"));
        }
        let call = format!("GET /v1/api/job/{id}/stream");
        let response = match request.send().await {
            Ok(r) => r,
            Err(source) => {
                failures += 1;
                if failures > MAX_RECONNECTS {
                    return Err(ApiError::Transport { call, source });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let code = response.status();
        if code != StatusCode::OK {
            let json = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let body = response.text().await.unwrap_or_default();
            // An older gostint: no such route (its plain-text 404, or 405).
            if (code == StatusCode::NOT_FOUND && !json) || code == StatusCode::METHOD_NOT_ALLOWED {
                return Ok(Followed::Unsupported);
            }
            if matches!(code, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
                && failures < MAX_RECONNECTS
            {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            return Err(ApiError::Status { call, status: code, body: body.trim().to_string() });
        }
        let mut response = response;
        let mut parser = Parser::default();
        loop {
            let chunk = match tokio::time::timeout(IDLE, response.chunk()).await {
                Ok(Ok(Some(c))) => c,
                // Closed, broken or silent: reconnect from where we are.
                _ => break,
            };
            for ev in parser.push(&chunk) {
                failures = 0;
                match ev.name.as_str() {
                    "status" => status(&ev.data),
                    "stdout" | "stderr" => {
                        let Some((no, ne)) = offsets(ev.id.as_deref()) else { continue };
                        let (which, from, to) =
                            if ev.name == "stdout" { (Stream::Stdout, o, no) } else { (Stream::Stderr, e, ne) };
                        if to.saturating_sub(from) == ev.data.len() {
                            out(which, ev.data.as_bytes());
                        } else {
                            // SSE turned a CR into a line break (or the text was cut to
                            // its tail): the exact bytes are in the view.
                            if let Ok(view) = api.job(token, id).await {
                                let key = if which == Stream::Stdout { "output" } else { "stderr" };
                                let text = view.json.get(key).and_then(Value::as_str).unwrap_or_default();
                                let bytes = text.as_bytes();
                                if to <= bytes.len() && from <= to {
                                    out(which, &bytes[from..to]);
                                } else {
                                    out(which, ev.data.as_bytes());
                                }
                            } else {
                                out(which, ev.data.as_bytes());
                            }
                        }
                        (o, e) = (no, ne);
                    }
                    "end" => {
                        let view = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                        return Ok(Followed::Ended(view));
                    }
                    _ => {}
                }
            }
        }
        failures += 1;
        if failures > MAX_RECONNECTS {
            return Err(ApiError::Decode { call, body: "the stream kept closing before the job ended".into() });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_across_chunks_and_line_ends() {
        let mut p = Parser::default();
        let text = "event: status\ndata: running\n\n: keep-alive\n\nevent: stdout\nid: 9,0\ndata: 100% out\ndata: \n\nevent: end\r\ndata: {}\r\n\r\n";
        let mut all = Vec::new();
        for b in text.as_bytes().chunks(3) {
            all.extend(p.push(b));
        }
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], Event { name: "status".into(), id: None, data: "running".into() });
        assert_eq!(all[1], Event { name: "stdout".into(), id: Some("9,0".into()), data: "100% out\n".into() });
        assert_eq!(all[2].name, "end");
        assert_eq!(offsets(all[1].id.as_deref()), Some((9, 0)));
    }
}
