//! `logs ID [-f]`, `wait ID`, and `list --status/--queue/--limit` (filtered on the client:
//! gostint's list has no filters, so pages are read until enough jobs match).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::api::{Gostint, Reply};
use crate::args::{IdArgs, ListArgs, LogsArgs};
use crate::exit;
use crate::flow::{not_found_hint, print_raw, status_line, subcommand};
use crate::output::{list_text, write_stderr, write_stdout};
use crate::stream::{follow, Followed, Stream};

/// How long one long-poll asks gostint to hold the answer (its maximum is 60 s).
const LONG_POLL: &str = "30s";
/// An answer sooner than this while the job is still active means a gostint without the
/// long-poll: wait this long before asking again.
const OLDER_SERVER_PAUSE: Duration = Duration::from_secs(1);
/// The server's page size.
const PAGE: u64 = 10;
/// Statuses a job can have (for a clear error on a typo).
const STATUSES: &[&str] = &["queued", "running", "stopping", "success", "failed", "notauthorised", "unknown"];

fn text<'a>(job: &'a Value, key: &str) -> &'a str {
    job.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Long-polls the job until it is final; returns its last view.
async fn until_final(api: &Gostint, token: &str, id: &str) -> anyhow::Result<Reply> {
    loop {
        let asked = Instant::now();
        let reply = api.job_wait(token, id, LONG_POLL).await.map_err(|e| not_found_hint(e, id))?;
        if !exit::is_active(text(&reply.json, "status")) {
            return Ok(reply);
        }
        if asked.elapsed() < OLDER_SERVER_PAUSE {
            tokio::time::sleep(OLDER_SERVER_PAUSE).await;
        }
    }
}

fn outcome(job: &Value) -> u8 {
    let status = text(job, "status");
    let rc = job.get("return_code").and_then(Value::as_i64).unwrap_or_default();
    if status != "success" {
        write_stderr(&status_line(status, std::io::stderr().is_terminal()));
    }
    exit::for_job(status, rc)
}

/// `wait ID`: long-polls until the job is final; prints its status (or, with `--json`, its
/// view) and exits with the code `run` would have.
///
/// # Errors
/// Vault and HTTP errors; 404 when the job is gone or not the caller's.
pub async fn wait(a: IdArgs) -> anyhow::Result<u8> {
    let id = a.id.clone();
    subcommand(&a.common, Some(&a.id), |api, token| async move {
        let reply = until_final(&api, &token, &id).await?;
        if a.json {
            print_raw(&reply)?;
        } else {
            let rc = reply.json.get("return_code").and_then(Value::as_i64).unwrap_or_default();
            write_stdout(format!("{} (return code {rc})\n", text(&reply.json, "status")).as_bytes())
                .context("writing to stdout")?;
        }
        let status = text(&reply.json, "status");
        Ok(exit::for_job(status, reply.json.get("return_code").and_then(Value::as_i64).unwrap_or_default()))
    })
    .await
}

/// `logs ID [-f]`: the output so far, stdout and stderr each on its own stream; with `-f`,
/// followed live to the end, then the `[status]` line and `run`'s exit code.
///
/// # Errors
/// Vault and HTTP errors; 404 when the job is gone or not the caller's.
pub async fn logs(a: LogsArgs) -> anyhow::Result<u8> {
    let id = a.id.clone();
    subcommand(&a.common, Some(&a.id), |api, token| async move {
        if !a.follow {
            let reply = api.job(&token, &id).await.map_err(|e| not_found_hint(e, &id))?;
            write_stdout(text(&reply.json, "output").as_bytes()).context("writing to stdout")?;
            write_stderr(text(&reply.json, "stderr").as_bytes());
            return Ok(exit::SUCCESS);
        }
        let followed = follow(
            &api,
            &token,
            &id,
            |which, bytes| match which {
                Stream::Stdout => {
                    let _ = write_stdout(bytes);
                }
                Stream::Stderr => write_stderr(bytes),
            },
            |_| {},
        )
        .await
        .map_err(|e| not_found_hint(e, &id))?;
        match followed {
            Followed::Ended(view) => Ok(outcome(&view)),
            Followed::Unsupported => {
                // An older gostint: the whole output once the job has ended.
                let reply = until_final(&api, &token, &id).await?;
                write_stdout(text(&reply.json, "output").as_bytes()).context("writing to stdout")?;
                write_stderr(text(&reply.json, "stderr").as_bytes());
                Ok(outcome(&reply.json))
            }
        }
    })
    .await
}

/// `list` with `--status`, `--queue` or `--limit`: pages from `--skip` on, newest first,
/// until `--limit` jobs match (10 without `--limit`) or the list ends.
///
/// # Errors
/// An unknown status; Vault and HTTP errors.
pub async fn list_filtered(a: ListArgs) -> anyhow::Result<u8> {
    let status = a.status.as_deref().map(str::to_lowercase);
    if let Some(s) = &status {
        if !STATUSES.contains(&s.as_str()) {
            anyhow::bail!("--status {s:?}: expected one of {}", STATUSES.join(", "));
        }
    }
    let queue = a.queue.as_deref().map(str::to_lowercase);
    let limit = a.limit.unwrap_or(PAGE);
    subcommand(&a.common, None, |api, token| async move {
        let mut found: Vec<Value> = Vec::new();
        let mut skip = a.skip;
        let mut total = 0;
        loop {
            let page = api.list(&token, skip).await?;
            total = page.json.get("total").and_then(Value::as_u64).unwrap_or(total);
            let jobs = page.json.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
            let n = jobs.len() as u64;
            for job in jobs {
                let keep = status.as_deref().is_none_or(|s| text(&job, "status") == s)
                    && queue.as_deref().is_none_or(|q| text(&job, "qname") == q);
                if keep && (found.len() as u64) < limit {
                    found.push(job);
                }
            }
            skip += n;
            if n == 0 || skip >= total || found.len() as u64 >= limit {
                break;
            }
        }
        let shown = json!({ "data": found, "skip": a.skip, "limit": limit, "total": total, "filtered": true });
        if a.json {
            let mut bytes = serde_json::to_vec(&shown).context("encoding the list")?;
            bytes.push(b'\n');
            write_stdout(&bytes).context("writing to stdout")?;
        } else if found.is_empty() {
            write_stdout(b"no matching jobs\n").context("writing to stdout")?;
        } else {
            let table = list_text(&json!({ "data": found, "skip": 0, "total": found.len() }));
            // list_text's last line counts the slice; say what was filtered instead.
            let body: String = table.lines().take(found.len() + 1).map(|l| format!("{l}\n")).collect();
            write_stdout(format!("{body}{} matching job(s), {skip} of {total} looked at\n", found.len()).as_bytes())
                .context("writing to stdout")?;
        }
        Ok(exit::SUCCESS)
    })
    .await
}
