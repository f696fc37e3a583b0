//! Live output (docs/design.md §12): `GET /v1/api/job/{id}/stream` (server-sent events) and the
//! long-poll `GET /v1/api/job/{id}?wait=<d>`.
//!
//! Both read the store and sleep on the node's [`LiveHub`](gostint_core::live::LiveHub),
//! which the local worker (new output, status changes) and the store's LISTEN/NOTIFY
//! (other nodes) wake: there is no polling loop.
//!
//! The stream's events:
//! - `status`: the job's status, first and at each change;
//! - `stdout` / `stderr`: the new text. Each line of it is one `data:` line; as SSE has no
//!   way to carry a bare carriage return, a CR also starts a new `data:` line (it arrives
//!   as a line break; a client that needs the exact bytes takes them from the view, the
//!   `id:` offsets being exact);
//! - `end`: the final job view as JSON, then the stream closes.
//!
//! Every `stdout`/`stderr` event has `id: <stdout bytes>,<stderr bytes>`: how much of each
//! stored text the client has now. Reconnecting with `Last-Event-ID: <o>,<e>` resumes
//! from there, without loss or repeats. A comment line `: keep-alive` goes every 15 s.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gostint_core::{JobId, JobRecord};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::error::{ApiError, JsonLine};
use crate::handlers::{Caller, JobIdParam};
use crate::view::JobView;
use crate::AppState;

/// Time between two keep-alive comments.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// The longest long-poll.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `?wait=` of the job view.
#[derive(Deserialize)]
pub(crate) struct ViewQuery {
    wait: Option<String>,
}

/// Parses `30s`, `5m`, `1.5` (seconds) or `500ms`, at most [`MAX_WAIT`].
fn parse_wait(text: &str) -> Result<Duration, ApiError> {
    let t = text.trim();
    let bad = || ApiError::BadRequest(format!("wait={text}: expected a duration up to 60s (e.g. 30s, 500ms, 1m)"));
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 || secs > MAX_WAIT.as_secs_f64() {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `GET /v1/api/job/{id}` with an optional `?wait=`: answers as soon as the job is final or
/// the wait is over.
pub(crate) async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    JobIdParam(id): JobIdParam,
    Query(q): Query<ViewQuery>,
) -> Result<Response, ApiError> {
    let wait = match q.wait.as_deref() {
        None | Some("") => Duration::ZERO,
        Some(w) => parse_wait(w)?,
    };
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before the read: a change between the read and the wait still wakes us.
    let mut changes = state.live.subscribe();
    loop {
        let job = visible(&state, &caller, &id).await?;
        if job.status.is_final() || tokio::time::Instant::now() >= deadline {
            return Ok(JsonLine(JobView::from(job)).into_response());
        }
        if !wait_for(&mut changes, &id, deadline).await {
            let job = visible(&state, &caller, &id).await?;
            return Ok(JsonLine(JobView::from(job)).into_response());
        }
    }
}

async fn visible(state: &AppState, caller: &Caller, id: &JobId) -> Result<JobRecord, ApiError> {
    match state.store.get(id).await.map_err(ApiError::store)? {
        Some(j) if caller.may_see(&j) => Ok(j),
        _ => Err(ApiError::NotFound),
    }
}

/// Sleeps until job `id` changes (true) or `deadline` (false). A lagging receiver counts as
/// a change (the caller re-reads).
async fn wait_for(
    changes: &mut tokio::sync::broadcast::Receiver<JobId>,
    id: &JobId,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        tokio::select! {
            got = changes.recv() => match got {
                Ok(changed) if changed == *id => return true,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => return true,
                Err(RecvError::Closed) => return false,
            },
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}

/// `Last-Event-ID: <stdout bytes>,<stderr bytes>`.
fn resume_point(headers: &HeaderMap) -> Result<(usize, usize), ApiError> {
    let Some(v) = headers.get("Last-Event-ID") else {
        return Ok((0, 0));
    };
    let bad = || ApiError::BadRequest("Last-Event-ID: expected <stdout bytes>,<stderr bytes> as sent in id:".into());
    let text = v.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Ok((0, 0));
    }
    let (o, e) = text.split_once(',').ok_or_else(bad)?;
    Ok((o.trim().parse().map_err(|_| bad())?, e.trim().parse().map_err(|_| bad())?))
}

/// `GET /v1/api/job/{id}/stream`.
pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    JobIdParam(id): JobIdParam,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let from = resume_point(&headers)?;
    let changes = state.live.subscribe();
    let first = visible(&state, &caller, &id).await?;
    let who = caller.key();
    let Some(slot) = state.live.open_stream(&who, state.cfg.max_streams_per_caller) else {
        return Err(ApiError::TooManyStreams(state.cfg.max_streams_per_caller));
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let _slot = slot;
        follow(state, id, first, from, changes, tx).await;
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies (nginx) must not buffer the stream.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response())
}

/// The largest char boundary of `s` not above `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One event: each line (LF, CR or CRLF separated) of `data` a `data:` line.
pub(crate) fn event(name: &str, id: Option<(usize, usize)>, data: &str) -> String {
    let mut ev = String::with_capacity(data.len() + 64);
    ev.push_str("event: ");
    ev.push_str(name);
    ev.push('\n');
    if let Some((o, e)) = id {
        ev.push_str(&format!("id: {o},{e}\n"));
    }
    for line in data.split('\n') {
        for part in line.split('\r') {
            ev.push_str("data: ");
            ev.push_str(part);
            ev.push('\n');
        }
    }
    ev.push('\n');
    ev
}

async fn follow(
    state: AppState,
    id: JobId,
    mut job: JobRecord,
    from: (usize, usize),
    mut changes: tokio::sync::broadcast::Receiver<JobId>,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    let (mut o, mut e) = from;
    let mut status = None;
    loop {
        let mut out = String::new();
        if status != Some(job.status) {
            status = Some(job.status);
            out.push_str(&event("status", None, job.status.as_str()));
        }
        // A text shorter than the offset was cut to its tail (the output cap): go on from
        // its end rather than repeat.
        let no = floor_boundary(&job.output, o);
        if job.output.len() > o {
            out.push_str(&event("stdout", Some((job.output.len(), e)), &job.output[no..]));
        }
        o = job.output.len();
        let ne = floor_boundary(&job.stderr, e);
        if job.stderr.len() > e {
            out.push_str(&event("stderr", Some((o, job.stderr.len())), &job.stderr[ne..]));
        }
        e = job.stderr.len();
        let done = job.status.is_final();
        if done {
            let view = serde_json::to_string(&JobView::from(job.clone())).unwrap_or_else(|_| "{}".into());
            out.push_str(&event("end", Some((o, e)), &view));
        }
        if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
            return; // the client went away
        }
        if done {
            return;
        }
        // Sleep until the job changes; a comment keeps proxies and clients from timing out.
        loop {
            let deadline = tokio::time::Instant::now() + HEARTBEAT;
            tokio::select! {
                changed = wait_for(&mut changes, &id, deadline) => {
                    if changed { break; }
                    if tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
        job = match state.store.get(&id).await {
            Ok(Some(j)) => j,
            Ok(None) => {
                let _ = tx.send(Ok(Bytes::from(event("end", Some((o, e)), "{}")))).await;
                return;
            }
            Err(err) => {
                tracing::warn!(job_id = %id, error = %err, "stream could not re-read the job; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_put_each_line_on_a_data_line() {
        assert_eq!(event("stdout", Some((9, 0)), "100% out\n"), "event: stdout\nid: 9,0\ndata: 100% out\ndata: \n\n");
        assert_eq!(event("status", None, "running"), "event: status\ndata: running\n\n");
        assert_eq!(event("stderr", Some((1, 3)), " a\rb"), "event: stderr\nid: 1,3\ndata:  a\ndata: b\n\n");
    }

    #[test]
    fn waits_parse_up_to_a_minute() {
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_wait("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_wait("2").unwrap(), Duration::from_secs(2));
        assert!(parse_wait("61s").is_err());
        assert!(parse_wait("soon").is_err());
        assert!(parse_wait("-1").is_err());
    }

    #[test]
    fn resume_points_come_from_last_event_id() {
        let mut h = HeaderMap::new();
        assert_eq!(resume_point(&h).unwrap(), (0, 0));
        h.insert("Last-Event-ID", "12,3".parse().unwrap());
        assert_eq!(resume_point(&h).unwrap(), (12, 3));
        h.insert("Last-Event-ID", "x".parse().unwrap());
        assert!(resume_point(&h).is_err());
        assert_eq!(floor_boundary("é", 1), 0);
    }
}
