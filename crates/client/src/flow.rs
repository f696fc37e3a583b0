//! The requestor's side of the seed's sequence diagram, and the everyday subcommands.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use gostint_core::JobVault;
use gostint_vault::{VaultClient, VaultConfig};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::args::{value_or_file, Common, IdArgs, ListArgs, RunArgs};
use crate::job::build_job;

/// A usage, Vault, TLS, transport or HTTP error: exit 2.
pub const EXIT_ERROR: u8 = 2;
/// The job is `notauthorised`.
pub const EXIT_NOTAUTHORISED: u8 = 120;
/// The job is `unknown`.
pub const EXIT_UNKNOWN: u8 = 121;

/// The exit code for a final job.
pub fn exit_code(status: &str, return_code: i64) -> u8 {
    match status {
        "success" => 0,
        "notauthorised" => EXIT_NOTAUTHORISED,
        "unknown" => EXIT_UNKNOWN,
        _ => match return_code {
            // An exit code a process can have; anything else (0, negative, >255) is 1.
            1..=255 => return_code as u8,
            _ => 1,
        },
    }
}

fn debug(common: &Common, msg: impl AsRef<str>) {
    if common.debug {
        eprintln!("gostint-client: {}", msg.as_ref());
    }
}

/// The Vault client, honouring VAULT_CACERT / VAULT_SKIP_VERIFY / VAULT_NAMESPACE.
fn vault(common: &Common) -> anyhow::Result<VaultClient> {
    let mut cfg = VaultConfig::new(common.vault_url.clone());
    cfg.ca_cert = std::env::var_os("VAULT_CACERT").filter(|v| !v.is_empty()).map(Into::into);
    cfg.skip_verify = std::env::var("VAULT_SKIP_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    cfg.namespace = std::env::var("VAULT_NAMESPACE").ok().filter(|v| !v.is_empty());
    VaultClient::new(&cfg).context("building the Vault client")
}

/// The HTTP client for gostint: verified TLS unless explicitly skipped.
fn http(common: &Common) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(ca) = &common.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("--ca-cert: reading {}", ca.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).context("--ca-cert: not a PEM certificate bundle")? {
            b = b.add_root_certificate(cert);
        }
    }
    if common.insecure_skip_verify {
        eprintln!("gostint-client: WARNING: TLS verification of gostint is OFF (--insecure-skip-verify)");
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().context("building the HTTP client")
}

/// The requestor's token: `--vault-token`, or an AppRole login; checked with lookup-self.
async fn requestor_token(common: &Common, v: &VaultClient) -> anyhow::Result<String> {
    let token = match (&common.vault_token, &common.vault_roleid, &common.vault_secretid) {
        (_, Some(role), Some(secret)) => {
            let role = value_or_file(role)?;
            let secret = value_or_file(secret)?;
            v.approle_login(&role, &secret)
                .await
                .context("Vault AppRole login")?
                .ok_or_else(|| anyhow!("Vault AppRole login returned no token"))?
        }
        (Some(t), None, None) => value_or_file(t)?,
        (None, None, None) => bail!("give --vault-token (or VAULT_TOKEN) or --vault-roleid with --vault-secretid"),
        _ => bail!("--vault-roleid and --vault-secretid go together (and replace --vault-token)"),
    };
    v.lookup_self(&token).await.context("checking the Vault token (lookup-self)")?;
    Ok(token)
}

async fn read_reply(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await.context("reading gostint's answer")?;
    if !status.is_success() {
        bail!("gostint answered {status}: {}", text.trim());
    }
    serde_json::from_str(&text).with_context(|| format!("gostint answered non-JSON: {}", text.trim()))
}

/// Tokens this run made, revoked on every exit path.
#[derive(Default)]
pub struct Made {
    tokens: Vec<(String, String)>,
}

impl Made {
    /// The accessors of what this run made (for tests and `--debug`).
    pub fn accessors(&self) -> Vec<String> {
        self.tokens.iter().map(|(_, a)| a.clone()).collect()
    }

    async fn revoke_all(&self, v: &VaultClient, common: &Common) {
        for (token, accessor) in &self.tokens {
            match v.revoke_token(token).await {
                Ok(()) => debug(common, format!("revoked token (accessor {accessor})")),
                // A spent cubby token is already gone: that is fine.
                Err(e) => debug(common, format!("token (accessor {accessor}) not revoked: {e}")),
            }
        }
    }
}

/// `run`: the whole flow; returns the exit code.
pub async fn run(a: RunArgs) -> anyhow::Result<u8> {
    let job = build_job(&a)?;
    let v = vault(&a.common)?;
    let client = http(&a.common)?;
    let requestor = requestor_token(&a.common, &v).await?;
    let mut made = Made::default();
    let result = submit_and_wait(&a, &v, &client, &requestor, job, &mut made).await;
    made.revoke_all(&v, &a.common).await;
    result
}

async fn submit_and_wait(
    a: &RunArgs,
    v: &VaultClient,
    client: &reqwest::Client,
    requestor: &str,
    job: serde_json::Map<String, Value>,
    made: &mut Made,
) -> anyhow::Result<u8> {
    let c = &a.common;
    // A short-lived `default` token is all gostint needs to see (never the requestor's).
    let api = v
        .create_token(requestor, &["default"], &a.api_token_ttl, None, Some("gostint-client"))
        .await
        .context("creating the API token")?;
    let api_token = api.token.expose_secret().to_string();
    made.tokens.push((api_token.clone(), api.accessor.clone()));
    debug(c, format!("API token made (accessor {})", api.accessor));

    let wrap = v
        .wrapped_secret_id(requestor, &a.gostint_approle, &a.wrap_ttl)
        .await
        .context("getting a wrapped secret id for gostint's AppRole")?;
    let qname = job.get("qname").and_then(Value::as_str).unwrap_or("").to_string();

    let body = if a.plain {
        let mut body = job;
        body.insert("wrap_secret_id".into(), json!(wrap.expose_secret()));
        Value::Object(body)
    } else {
        let plaintext = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&Value::Object(job))?);
        let ciphertext = v
            .transit_encrypt(requestor, &a.gostint_approle, &plaintext)
            .await
            .context("encrypting the job with transit")?;
        let cubby = v
            .create_token(requestor, &["default"], "15m", Some(2), Some("gostint-client-cubby"))
            .await
            .context("creating the cubbyhole token")?;
        let cubby_token = cubby.token.expose_secret().to_string();
        made.tokens.push((cubby_token.clone(), cubby.accessor.clone()));
        debug(c, format!("cubbyhole token made (accessor {}, 2 uses)", cubby.accessor));
        v.write(&cubby_token, "cubbyhole/job", &json!({ "payload": ciphertext }))
            .await
            .context("parking the encrypted job in the cubbyhole")?;
        json!({
            "qname": qname,
            "cubby_token": cubby_token,
            "cubby_path": "cubbyhole/job",
            "wrap_secret_id": wrap.expose_secret(),
        })
    };

    let url = c.url.trim_end_matches('/');
    let resp = client
        .post(format!("{url}/v1/api/job"))
        .header("X-Auth-Token", &api_token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("POST {url}/v1/api/job"))?;
    let submitted = read_reply(resp).await?;
    let id = submitted["_id"].as_str().ok_or_else(|| anyhow!("gostint's answer has no _id: {submitted}"))?.to_string();
    debug(c, format!("job {id} queued"));
    if !a.wait {
        println!("{submitted}");
        return Ok(0);
    }

    let final_job = poll(client, url, &api_token, &id, a.poll_interval).await?;
    if a.json {
        write_stdout(format!("{final_job}\n").as_bytes());
    } else {
        print_outcome(&final_job);
    }
    Ok(exit_code(
        final_job["status"].as_str().unwrap_or_default(),
        final_job["return_code"].as_i64().unwrap_or_default(),
    ))
}

/// Polls while queued, running or stopping, with a progress line on a terminal.
async fn poll(client: &reqwest::Client, url: &str, token: &str, id: &str, interval: f64) -> anyhow::Result<Value> {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let interval = Duration::from_secs_f64(interval.max(0.05));
    loop {
        let resp = client
            .get(format!("{url}/v1/api/job/{id}"))
            .header("X-Auth-Token", token)
            .send()
            .await
            .with_context(|| format!("GET {url}/v1/api/job/{id}"))?;
        let job = read_reply(resp).await?;
        let status = job["status"].as_str().unwrap_or_default().to_string();
        if !matches!(status.as_str(), "queued" | "running" | "stopping") {
            if tty {
                eprint!("\r\x1b[2K");
            }
            return Ok(job);
        }
        if tty {
            eprint!("\r\x1b[2K[{status}] job {id}, {}s", start.elapsed().as_secs());
        }
        tokio::time::sleep(interval).await;
    }
}

/// Writes to stdout byte for byte; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

fn print_outcome(job: &Value) {
    let status = job["status"].as_str().unwrap_or_default();
    let output = job["output"].as_str().unwrap_or_default();
    let stderr = job["stderr"].as_str().unwrap_or_default();
    if status == "success" {
        write_stdout(output.as_bytes());
    } else {
        let (red, reset) = if std::io::stderr().is_terminal() { ("\x1b[31m", "\x1b[0m") } else { ("", "") };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{red}[{status}]{reset} ");
        let _ = err.write_all(output.as_bytes());
        if !output.ends_with('\n') {
            let _ = err.write_all(b"\n");
        }
    }
    if !stderr.is_empty() {
        let _ = std::io::stderr().write_all(stderr.as_bytes());
    }
}

/// The token subcommands act with: the requestor's own (see README: a job submitted by
/// `run` is visible to the same Vault entity; a token without an entity sees only what
/// it submitted itself).
async fn subcommand_setup(common: &Common) -> anyhow::Result<(reqwest::Client, String)> {
    let v = vault(common)?;
    let token = requestor_token(common, &v).await?;
    Ok((http(common)?, token))
}

/// `status ID`.
pub async fn status(a: IdArgs) -> anyhow::Result<u8> {
    let (client, token) = subcommand_setup(&a.common).await?;
    let url = a.common.url.trim_end_matches('/');
    let job = read_reply(client.get(format!("{url}/v1/api/job/{}", a.id)).header("X-Auth-Token", token).send().await?)
        .await?;
    if a.json {
        write_stdout(format!("{job}\n").as_bytes());
    } else {
        let mut text = String::new();
        for k in
            ["_id", "status", "qname", "container_image", "submitted", "started", "ended", "return_code", "node_uuid"]
        {
            text.push_str(&format!(
                "{k:16} {}\n",
                job[k].as_str().map(str::to_string).unwrap_or_else(|| job[k].to_string())
            ));
        }
        text.push_str("output:\n");
        text.push_str(job["output"].as_str().unwrap_or_default());
        write_stdout(text.as_bytes());
    }
    Ok(0)
}

/// `list`.
pub async fn list(a: ListArgs) -> anyhow::Result<u8> {
    let (client, token) = subcommand_setup(&a.common).await?;
    let url = a.common.url.trim_end_matches('/');
    let page =
        read_reply(client.get(format!("{url}/v1/api/job?skip={}", a.skip)).header("X-Auth-Token", token).send().await?)
            .await?;
    if a.json {
        write_stdout(format!("{page}\n").as_bytes());
    } else {
        let mut text = format!("{:24}  {:13}  {:16}  {:24}  RC\n", "ID", "STATUS", "QUEUE", "SUBMITTED");
        for j in page["data"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "{:24}  {:13}  {:16}  {:24}  {}\n",
                j["_id"].as_str().unwrap_or_default(),
                j["status"].as_str().unwrap_or_default(),
                j["qname"].as_str().unwrap_or_default(),
                j["submitted"].as_str().unwrap_or_default(),
                j["return_code"]
            ));
        }
        text.push_str(&format!(
            "{} of {} (skip {})\n",
            page["data"].as_array().map_or(0, Vec::len),
            page["total"],
            page["skip"]
        ));
        write_stdout(text.as_bytes());
    }
    Ok(0)
}

/// `kill ID` and `delete ID`.
pub async fn act(a: IdArgs, kill: bool) -> anyhow::Result<u8> {
    let (client, token) = subcommand_setup(&a.common).await?;
    let url = a.common.url.trim_end_matches('/');
    let req = if kill {
        client.post(format!("{url}/v1/api/job/kill/{}", a.id))
    } else {
        client.delete(format!("{url}/v1/api/job/{}", a.id))
    };
    let answer = read_reply(req.header("X-Auth-Token", token).send().await?).await?;
    if a.json {
        write_stdout(format!("{answer}\n").as_bytes());
    } else if kill {
        write_stdout(
            format!("kill requested for {} (was {})\n", a.id, answer["status"].as_str().unwrap_or_default()).as_bytes(),
        );
    } else {
        write_stdout(format!("deleted {}\n", a.id).as_bytes());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_job() {
        assert_eq!(exit_code("success", 0), 0);
        assert_eq!(exit_code("failed", 3), 3);
        assert_eq!(exit_code("failed", 0), 1, "killed or a pipeline failure");
        assert_eq!(exit_code("failed", 137), 137);
        assert_eq!(exit_code("failed", -1), 1);
        assert_eq!(exit_code("failed", 300), 1);
        assert_eq!(exit_code("notauthorised", 0), EXIT_NOTAUTHORISED);
        assert_eq!(exit_code("unknown", 0), EXIT_UNKNOWN);
    }
}
