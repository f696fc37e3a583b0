//! The commands: `run` (docs/design.md §7's sequence, end to end) and `status`, `list`, `kill`,
//! `delete`. Each runs its work under [`guarded`], so the session's tokens are revoked
//! whether the work ends, fails, or a signal interrupts it.

use std::future::Future;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use crate::api::{is_job_id, ApiError, Gostint, Reply};
use crate::args::{Common, IdArgs, ListArgs, RunArgs};
use crate::exit;
use crate::job::build_job;
use crate::output::{list_text, status_text, write_stderr, write_stdout, Diag, Progress};
use crate::session::{vault_client, Credentials, Session, CUBBY_PATH};

/// Consecutive polls that may go unanswered (gostint restarting, a proxy hiccup) before
/// the client gives up waiting.
const MAX_POLL_FAILURES: u32 = 10;

pub(crate) fn gostint(common: &Common, diag: &Diag) -> anyhow::Result<Gostint> {
    if common.insecure_skip_verify {
        diag.warn(
            "TLS verification of gostint is OFF (--insecure-skip-verify): the job and its token can be intercepted",
        );
    }
    Ok(Gostint::new(&common.url, common.ca_cert.as_deref(), common.insecure_skip_verify)?)
}

/// Resolves on SIGINT (→ 130) or SIGTERM (→ 143); never if they cannot be watched.
async fn interrupted() -> u8 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => exit::INTERRUPTED,
                _ = term.recv() => exit::TERMINATED,
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => exit::INTERRUPTED,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Runs `work`; whatever happens to it (done, failed, interrupted by a signal), then
/// revokes every token `session` made. An interruption names the job, which carries on.
async fn guarded(session: &Session, diag: &Diag, work: impl Future<Output = anyhow::Result<u8>>) -> anyhow::Result<u8> {
    let outcome = tokio::select! {
        r = work => r,
        code = interrupted() => {
            let what = match session.job_id() {
                Some(id) => format!(
                    "interrupted; job {id} carries on in gostint (gostint-client status {id}, gostint-client kill {id})"
                ),
                None => "interrupted before a job was submitted".into(),
            };
            diag.warn(&what);
            Ok(code)
        }
    };
    session.close().await;
    outcome
}

/// `run`: builds the job, submits it through the secure (or `--plain`) flow, waits, prints
/// the outcome and returns the exit code.
///
/// # Errors
/// Usage, Vault and HTTP errors (exit 2); every token made is revoked first.
pub async fn run(a: RunArgs) -> anyhow::Result<u8> {
    let diag = Diag { debug: a.common.debug };
    // Everything that can be refused locally is, before any token exists.
    let job = build_job(&a)?;
    let api = gostint(&a.common, &diag)?;
    let credentials = Credentials::from_args(&a.common)?;
    let session = Session::new(vault_client(&a.common, &diag)?, diag);
    let work = async {
        tokio::select! {
            r = submit_and_wait(&a, &session, &api, credentials, job, &diag) => r,
            never = crate::renew::keep_alive(&session, &a.api_token_ttl, &diag) => match never {},
        }
    };
    guarded(&session, &diag, work).await
}

async fn submit_and_wait(
    a: &RunArgs,
    session: &Session,
    api: &Gostint,
    credentials: Credentials,
    job: Map<String, Value>,
    diag: &Diag,
) -> anyhow::Result<u8> {
    session.login(credentials).await?;
    // gostint sees this short-lived `default` token, never the requestor's own.
    let api_token = session.api_token(&a.api_token_ttl).await?;
    let wrap = session.wrapped_secret_id(&a.gostint_approle, &a.wrap_ttl).await?;
    let qname = job.get("qname").and_then(Value::as_str).unwrap_or_default().to_string();
    diag.debug(format!("job fields: {}", job.keys().cloned().collect::<Vec<_>>().join(", ")));

    let body = if a.plain {
        let mut body = job;
        body.insert("wrap_secret_id".into(), json!(wrap.expose_secret()));
        Value::Object(body)
    } else {
        let plaintext = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&Value::Object(job)).context("encoding the job")?);
        let ciphertext = session.encrypt(&a.gostint_approle, &plaintext).await?;
        let cubby = session.park(&ciphertext).await?;
        json!({
            "qname": qname,
            "cubby_token": cubby.expose_secret(),
            "cubby_path": CUBBY_PATH,
            "wrap_secret_id": wrap.expose_secret(),
        })
    };

    let submitted = api.submit(api_token.expose_secret(), &body).await.context("submitting the job")?;
    let id = submitted
        .json
        .get("_id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("gostint's answer to the submission has no _id: {}", submitted.raw.trim()))?
        .to_string();
    session.note_job(&id);
    diag.debug(format!("job {id} submitted ({} mode, queue {qname:?})", if a.plain { "plain" } else { "cubbyhole" }));
    if !a.wait {
        print_raw(&submitted)?;
        return Ok(exit::SUCCESS);
    }

    // Live (docs/design.md §12): output as it comes, unless `--json` wants the final view only.
    if !a.json {
        let followed = crate::stream::follow(
            api,
            api_token.expose_secret(),
            &id,
            |which, bytes| match which {
                crate::stream::Stream::Stdout => {
                    let _ = write_stdout(bytes);
                }
                crate::stream::Stream::Stderr => write_stderr(bytes),
            },
            |status| diag.debug(format!("job {id}: {status}")),
        )
        .await
        .map_err(|e| {
            anyhow::Error::new(e).context(format!("following job {id}; it may still run: gostint-client status {id}"))
        })?;
        if let crate::stream::Followed::Ended(view) = followed {
            let status = view.get("status").and_then(Value::as_str).unwrap_or_default();
            let return_code = view.get("return_code").and_then(Value::as_i64).unwrap_or_default();
            diag.debug(format!("job {id} ended {status} (return code {return_code})"));
            if status != "success" {
                write_stderr(&status_line(status, std::io::stderr().is_terminal()));
            }
            return Ok(exit::for_job(status, return_code));
        }
        diag.debug("gostint has no live stream; polling");
    }

    let last = wait(api, api_token.expose_secret(), &id, a.poll_interval, diag).await?;
    let status = last.json.get("status").and_then(Value::as_str).unwrap_or_default();
    let return_code = last.json.get("return_code").and_then(Value::as_i64).unwrap_or_default();
    diag.debug(format!("job {id} ended {status} (return code {return_code})"));
    if a.json {
        print_raw(&last)?;
    } else {
        print_outcome(&last.json)?;
    }
    Ok(exit::for_job(status, return_code))
}

/// Polls every `interval` seconds while the job is queued, running or stopping.
async fn wait(api: &Gostint, token: &str, id: &str, interval: f64, diag: &Diag) -> anyhow::Result<Reply> {
    let start = Instant::now();
    let interval = Duration::from_secs_f64(interval);
    let mut progress = Progress::new(diag.debug);
    let mut failures = 0;
    let mut last_status = String::new();
    loop {
        match api.job(token, id).await {
            Ok(reply) => {
                failures = 0;
                let status = reply.json.get("status").and_then(Value::as_str).unwrap_or_default().to_string();
                if status != last_status {
                    diag.debug(format!("job {id}: {status} after {:.1}s", start.elapsed().as_secs_f64()));
                    last_status.clone_from(&status);
                }
                if !exit::is_active(&status) {
                    progress.clear();
                    return Ok(reply);
                }
                progress.update(&status, id, start.elapsed());
            }
            Err(e) if e.is_transient() && failures < MAX_POLL_FAILURES => {
                failures += 1;
                diag.debug(format!("poll {failures}/{MAX_POLL_FAILURES} failed, retrying: {e}"));
            }
            Err(e) => {
                progress.clear();
                let hint = if e.status() == Some(reqwest::StatusCode::FORBIDDEN) {
                    " (did the API token expire? see --api-token-ttl)"
                } else {
                    ""
                };
                return Err(anyhow::Error::new(e)
                    .context(format!("waiting for job {id}{hint}; it may still run: gostint-client status {id}")));
            }
        }
        tokio::time::sleep(interval).await;
    }
}

pub(crate) fn print_raw(reply: &Reply) -> anyhow::Result<()> {
    let mut bytes = reply.raw.clone().into_bytes();
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    write_stdout(&bytes).context("writing to stdout")
}

/// Output to stdout, stderr to stderr, both byte for byte, whatever the status (as
/// `docker run`); then, unless `success`, the `[<status>]` line on stderr (red on a terminal).
fn print_outcome(job: &Value) -> anyhow::Result<()> {
    let text = |k: &str| job.get(k).and_then(Value::as_str).unwrap_or_default();
    write_stdout(text("output").as_bytes()).context("writing the job's output to stdout")?;
    write_stderr(text("stderr").as_bytes());
    if text("status") != "success" {
        write_stderr(&status_line(text("status"), std::io::stderr().is_terminal()));
    }
    Ok(())
}

/// `[<status>]` and a newline, red as `--color` and `NO_COLOR` say for a stream that is
/// (`terminal`) or is not a terminal.
pub(crate) fn status_line(status: &str, terminal: bool) -> Vec<u8> {
    let colour = crate::colour::enabled(terminal);
    if colour {
        format!("\x1b[31m[{status}]\x1b[0m\n").into_bytes()
    } else {
        format!("[{status}]\n").into_bytes()
    }
}

/// Logs in for a subcommand; see `gostint-client status --help` for why the requestor's
/// own token is used (the tenant is its entity, or its accessor).
pub(crate) async fn subcommand<F, Fut>(common: &Common, id: Option<&str>, work: F) -> anyhow::Result<u8>
where
    F: FnOnce(Gostint, String) -> Fut,
    Fut: Future<Output = anyhow::Result<u8>>,
{
    if let Some(id) = id {
        if !is_job_id(id) {
            bail!("{id:?} is not a job id (24 hex characters)");
        }
    }
    let diag = Diag { debug: common.debug };
    let api = gostint(common, &diag)?;
    let credentials = Credentials::from_args(common)?;
    let session = Session::new(vault_client(common, &diag)?, diag);
    let work = async {
        let token = session.login(credentials).await?;
        work(api, token.expose_secret().to_string()).await
    };
    guarded(&session, &diag, work).await
}

pub(crate) fn not_found_hint(e: ApiError, id: &str) -> anyhow::Error {
    let hint = (e.status() == Some(reqwest::StatusCode::NOT_FOUND))
        .then(|| format!("job {id} does not exist, or belongs to another tenant (see gostint-client status --help)"));
    let e = anyhow::Error::new(e);
    match hint {
        Some(h) => e.context(h),
        None => e,
    }
}

/// `status ID`.
///
/// # Errors
/// Vault and HTTP errors; 404 when the job is gone or not the caller's.
pub async fn status(a: IdArgs) -> anyhow::Result<u8> {
    let id = a.id.clone();
    subcommand(&a.common, Some(&a.id), |api, token| async move {
        let reply = api.job(&token, &id).await.map_err(|e| not_found_hint(e, &id))?;
        if a.json {
            print_raw(&reply)?;
        } else {
            write_stdout(&status_text(&reply.json)).context("writing to stdout")?;
        }
        Ok(exit::SUCCESS)
    })
    .await
}

/// `list [--skip N]`.
///
/// # Errors
/// Vault and HTTP errors.
pub async fn list(a: ListArgs) -> anyhow::Result<u8> {
    if a.status.is_some() || a.queue.is_some() || a.limit.is_some() {
        return crate::more::list_filtered(a).await;
    }
    subcommand(&a.common, None, |api, token| async move {
        let reply = api.list(&token, a.skip).await?;
        if a.json {
            print_raw(&reply)?;
        } else {
            write_stdout(list_text(&reply.json).as_bytes()).context("writing to stdout")?;
        }
        Ok(exit::SUCCESS)
    })
    .await
}

/// `kill ID` (`kill` true) and `delete ID`.
///
/// # Errors
/// Vault and HTTP errors; deleting a running job is refused by gostint (400).
pub async fn act(a: IdArgs, kill: bool) -> anyhow::Result<u8> {
    let id = a.id.clone();
    subcommand(&a.common, Some(&a.id), |api, token| async move {
        let reply = if kill { api.kill(&token, &id).await } else { api.delete(&token, &id).await }
            .map_err(|e| not_found_hint(e, &id))?;
        if a.json {
            print_raw(&reply)?;
        } else if kill {
            let was = reply.json.get("status").and_then(Value::as_str).unwrap_or_default();
            write_stdout(format!("kill requested for job {id} (it was {was})\n").as_bytes())
                .context("writing to stdout")?;
        } else {
            write_stdout(format!("deleted job {id}\n").as_bytes()).context("writing to stdout")?;
        }
        Ok(exit::SUCCESS)
    })
    .await
}
