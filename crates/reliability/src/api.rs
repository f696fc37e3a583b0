//! A small API client of one node that records every HTTP code (or transport error) it sees.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gostint_test_support::Requestor;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::ctx::Ctx;

/// The final statuses.
pub const FINAL: [&str; 4] = ["success", "failed", "notauthorised", "unknown"];

/// Whether a job view's status is final.
pub fn is_final(job: &Value) -> bool {
    FINAL.contains(&job["status"].as_str().unwrap_or_default())
}

/// HTTP codes seen, `"200"` → count; transport failures as `"error"`, time-outs as `"timeout"`.
#[derive(Clone, Default)]
pub struct Codes(Arc<Mutex<BTreeMap<String, u64>>>);

impl Codes {
    /// Counts one answer.
    pub fn add(&self, key: impl Into<String>) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(key.into()).or_default() += 1;
        }
    }

    /// Counts the outcome of a request.
    pub fn record<T>(&self, r: &Result<T, reqwest::Error>, code: impl Fn(&T) -> u16) {
        match r {
            Ok(v) => self.add(code(v).to_string()),
            Err(e) if e.is_timeout() => self.add("timeout"),
            Err(_) => self.add("error"),
        }
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// One node's API as the context's tenant.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client (30 s per request).
    pub http: reqwest::Client,
    /// Base URL.
    pub url: String,
    /// `X-Auth-Token`.
    pub token: String,
    req: Arc<Requestor>,
    /// Codes seen by this client and its clones.
    pub codes: Codes,
}

impl Api {
    /// A client of `url` acting with the context's token.
    pub fn new(ctx: &Ctx, url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self { http, url: url.to_string(), token: ctx.token.clone(), req: ctx.req.clone(), codes: Codes::default() })
    }

    /// A fresh response-wrapped secret id for the job AppRole (errors instead of panics),
    /// wrapped for 1 h: under load a job may wait in its queue longer than 10 minutes, and an
    /// expired wrapping token ends it `notauthorised` (`load-2000` saw 6 of 2,000 so).
    pub async fn wrapped_secret_id(&self) -> anyhow::Result<String> {
        let s = &self.req.svc;
        let w = self
            .req
            .vault
            .wrapped_secret_id(&s.root_token, &s.role_name, "1h")
            .await
            .map_err(|e| anyhow::anyhow!("wrapped secret id: {e}"))?;
        Ok(w.expose_secret().to_string())
    }

    /// `POST /v1/api/job` of a plain-mode job with a fresh wrapped secret id; `Ok(id)` when
    /// accepted (200), else an error carrying the code.
    pub async fn submit(&self, mut job: Value) -> anyhow::Result<String> {
        if job.get("wrap_secret_id").is_none() {
            job["wrap_secret_id"] = json!(self.wrapped_secret_id().await?);
        }
        let (code, body) = self.send(self.http.post(format!("{}/v1/api/job", self.url)).body(job.to_string())).await?;
        if code != 200 {
            bail!("POST answered {code}: {body}");
        }
        Ok(body["_id"].as_str().context("no _id in the answer")?.to_string())
    }

    /// Sends with the token; the code and the body (JSON, else a string).
    pub async fn send(&self, r: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let r = r.header("X-Auth-Token", &self.token).send().await;
        self.codes.record(&r, |r| r.status().as_u16());
        let r = r?;
        let code = r.status().as_u16();
        let text = r.text().await?;
        Ok((code, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// `GET /v1/api/job/{id}`.
    pub async fn get(&self, id: &str) -> anyhow::Result<(u16, Value)> {
        self.send(self.http.get(format!("{}/v1/api/job/{id}", self.url))).await
    }

    /// `GET /v1/api/job?skip=N`.
    pub async fn list(&self, skip: u64) -> anyhow::Result<(u16, Value)> {
        self.send(self.http.get(format!("{}/v1/api/job?skip={skip}", self.url))).await
    }

    /// `POST /v1/api/job/kill/{id}`.
    pub async fn kill(&self, id: &str) -> anyhow::Result<(u16, Value)> {
        self.send(self.http.post(format!("{}/v1/api/job/kill/{id}", self.url))).await
    }

    /// `DELETE /v1/api/job/{id}`.
    pub async fn delete(&self, id: &str) -> anyhow::Result<(u16, Value)> {
        self.send(self.http.delete(format!("{}/v1/api/job/{id}", self.url))).await
    }

    /// `GET /v1/api/health?k=<key>` (no token): the value, if answered 200.
    pub async fn health(&self, key: &str) -> Option<String> {
        let r = self.http.get(format!("{}/v1/api/health?k={key}", self.url)).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }

    /// Polls the job until its status is final or `limit` passes (then the last view is an
    /// error: the job is stuck). Transport errors are retried (a node restarting).
    pub async fn wait_final(&self, id: &str, limit: Duration) -> anyhow::Result<Value> {
        let t0 = Instant::now();
        let mut last = Value::Null;
        loop {
            if let Ok((code, job)) = self.get(id).await {
                if code == 404 {
                    bail!("job {id} not found (lost)");
                }
                if code == 200 {
                    if is_final(&job) {
                        return Ok(job);
                    }
                    last = job;
                }
            }
            if t0.elapsed() > limit {
                bail!("job {id} not final after {limit:?}: status {}", last["status"]);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls the job until `pred` holds on its view (`limit` at most).
    pub async fn wait_until(&self, id: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let t0 = Instant::now();
        loop {
            if let Ok((200, job)) = self.get(id).await {
                if pred(&job) {
                    return Ok(job);
                }
                if is_final(&job) {
                    bail!("job {id} ended {} before the awaited state: {}", job["status"], short(&job));
                }
            }
            if t0.elapsed() > limit {
                bail!("job {id}: the awaited state never came within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A job view without its long fields, for messages.
pub fn short(job: &Value) -> String {
    let out: String = job["output"].as_str().unwrap_or_default().chars().take(200).collect();
    format!("status={} return_code={} output={out:?}", job["status"], job["return_code"])
}

/// Milliseconds since the epoch of an API timestamp (`0` for the zero time or bad text).
pub fn ms(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .filter(|m| *m > 0)
        .unwrap_or(0)
}
