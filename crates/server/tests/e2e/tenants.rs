//! docs/design.md §10 end to end: two tenants (`tenant-a`, `tenant-b`, bootstrapped by
//! `scripts/services` with `scripts/vault-add-tenant`) on one gostint, real OpenBao, Docker
//! and SQLite. Vault itself keeps them apart; gostint refuses what Vault did not mint for an
//! accepted AppRole, keeps their queues apart and shares slots fairly.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{ms, spawn_app_with, TestApp};

/// A gostint with the two test tenants (and these extra settings), or `None` to skip.
async fn tenant_app(extra: &[(&str, &str)]) -> Option<TestApp> {
    let svc = gostint_test_support::services()?;
    let Some(approles) = svc.approles.clone() else {
        return gostint_test_support::missing("vault", "GOSTINT_TEST_APPROLES unset: run scripts/services up");
    };
    let mut all: Vec<(&str, &str)> = vec![("GOSTINT_APPROLES", approles.as_str())];
    all.extend_from_slice(extra);
    spawn_app_with(&all).await
}

impl TestApp {
    /// POSTs `job` with a fresh secret-id of `tenant`'s AppRole; returns (code, body).
    async fn post_as(&self, token: &str, tenant: &str, mut job: Value) -> (u16, Value) {
        job["wrap_secret_id"] = json!(self.req.wrapped_secret_id_for(tenant).await);
        self.post_raw(Some(token), job.to_string()).await
    }

    async fn submit_as(&self, token: &str, tenant: &str, job: Value) -> String {
        let (code, body) = self.post_as(token, tenant, job).await;
        assert_eq!(code, 200, "submit answered {body}");
        body["_id"].as_str().expect("_id").to_string()
    }

    async fn metrics(&self) -> String {
        self.http.get(format!("{}/v1/api/metrics", self.url)).send().await.unwrap().text().await.unwrap()
    }
}

fn sleeper(app: &TestApp, qname: &str, secs: u32) -> Value {
    json!({ "qname": qname, "container_image": app.svc.image, "run": ["sleep", secs.to_string()] })
}

/// Vault answers a raw call (for the re-wrap an interceptor would do).
async fn vault_call(app: &TestApp, path: &str, token: &str, wrap_ttl: Option<&str>, body: Value) -> Value {
    let mut r = reqwest::Client::new()
        .post(format!("{}/v1/{path}", app.svc.vault_addr))
        .header("X-Vault-Token", token)
        .json(&body);
    if let Some(ttl) = wrap_ttl {
        r = r.header("X-Vault-Wrap-TTL", ttl);
    }
    let resp = r.send().await.expect("vault call");
    assert!(resp.status().is_success(), "vault {path}: {}", resp.status());
    resp.json().await.expect("vault json")
}

fn alerts(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("gostint_interception_alerts_total{kind=\"creation_path\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_rewrapped_or_foreign_secret_id_gets_403_at_post_and_the_alert() {
    let Some(app) = tenant_app(&[]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let job = sleeper(&app, "q", 0);

    // The interceptor: redeems tenant-a's wrapped secret-id and passes on a re-wrapped copy.
    let original = app.req.wrapped_secret_id_for("tenant-a").await;
    let unwrapped = vault_call(&app, "sys/wrapping/unwrap", &original, None, json!({})).await;
    let secret_id = unwrapped["data"]["secret_id"].as_str().expect("secret_id").to_string();
    let rewrapped =
        vault_call(&app, "sys/wrapping/wrap", &app.svc.root_token, Some("10m"), json!({ "secret_id": secret_id }))
            .await["wrap_info"]["token"]
            .as_str()
            .expect("re-wrapped token")
            .to_string();
    let mut body = job.clone();
    body["wrap_secret_id"] = json!(rewrapped);
    let (code, answer) = app.post_raw(Some(&token), body.to_string()).await;
    assert_eq!(code, 403, "{answer}");
    assert_eq!(
        answer,
        json!({"status": "Permission Denied.", "error": "wrap_secret_id is not a secret-id of an accepted AppRole"})
    );
    assert_eq!(alerts(&app.metrics().await), 1);

    // A secret-id of an AppRole gostint was not given (gostint-role is not in GOSTINT_APPROLES).
    let (code, answer) = app.post_as(&token, &app.svc.role_name.clone(), job.clone()).await;
    assert_eq!(code, 403, "{answer}");
    assert_eq!(answer["error"], "wrap_secret_id is not a secret-id of an accepted AppRole");
    assert_eq!(alerts(&app.metrics().await), 2);

    // An expired/unknown wrapping token: 403, not an alert of its own kind.
    let mut body = job.clone();
    body["wrap_secret_id"] = json!("s.not-a-wrapping-token");
    let (code, answer) = app.post_raw(Some(&token), body.to_string()).await;
    assert_eq!(code, 403, "{answer}");
    assert_eq!(answer["error"], "wrap_secret_id is expired or unknown");

    // Nothing was stored.
    let (_, list) = app.get(Some(&app.svc.root_token), "/v1/api/job").await;
    assert_eq!(list["total"], 0, "{list}");
    app.stop().await;
}

fn alerts_of(metrics: &str, kind: &str) -> u64 {
    let prefix = format!("gostint_interception_alerts_total{{kind=\"{kind}\"");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The original reported a wrapping token that lapsed while its job waited in the queue as
/// a possible interception. gostint keeps the expiry Vault gave at submission and tells the
/// two apart: the lapsed one ends `notauthorised` saying so, without the alert; one spent by
/// somebody else before it expired still raises it.
#[tokio::test]
async fn a_wrapping_token_that_lapses_in_the_queue_is_not_reported_as_an_interception() {
    let Some(app) = tenant_app(&[]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let head = app.submit_as(&token, "tenant-a", sleeper(&app, "lapse", 6)).await;

    // A secret-id wrapped for 2 s, queued behind a 6 s job.
    let short = vault_call(&app, "auth/approle/role/tenant-a/secret-id", &app.svc.root_token, Some("2s"), json!({}))
        .await["wrap_info"]["token"]
        .as_str()
        .expect("wrapping token")
        .to_string();
    let mut job = json!({ "qname": "lapse", "container_image": app.svc.image, "run": ["echo", "never"] });
    job["wrap_secret_id"] = json!(short);
    let (code, body) = app.post_raw(Some(&token), job.to_string()).await;
    assert_eq!(code, 200, "{body}");
    let lapsed = body["_id"].as_str().expect("_id").to_string();

    // A secret-id wrapped for 10 minutes, redeemed by an interceptor while the job waits.
    let long = app.req.wrapped_secret_id_for("tenant-a").await;
    let mut job = json!({ "qname": "lapse", "container_image": app.svc.image, "run": ["echo", "never"] });
    job["wrap_secret_id"] = json!(long);
    let (code, body) = app.post_raw(Some(&token), job.to_string()).await;
    assert_eq!(code, 200, "{body}");
    let spent = body["_id"].as_str().expect("_id").to_string();
    vault_call(&app, "sys/wrapping/unwrap", &long, None, json!({})).await;
    let before = alerts_of(&app.metrics().await, "unwrap");

    let head_view = app.wait(&token, &head).await;
    assert_eq!(head_view["status"], "success", "{head_view}");
    let lapsed_view = app.wait(&token, &lapsed).await;
    assert_eq!(lapsed_view["status"], "notauthorised", "{lapsed_view}");
    let out = lapsed_view["output"].as_str().unwrap_or_default();
    assert!(out.contains("expired at") && out.contains("not an interception"), "{out}");
    assert!(!out.contains("INTERCEPTION"), "{out}");
    let spent_view = app.wait(&token, &spent).await;
    assert_eq!(spent_view["status"], "notauthorised", "{spent_view}");
    assert!(spent_view["output"].as_str().unwrap_or_default().contains("INTERCEPTION ALERT"), "{spent_view}");
    assert_eq!(
        alerts_of(&app.metrics().await, "unwrap"),
        before + 1,
        "one alert: the spent token's, not the lapsed one's"
    );
    app.stop().await;
}

#[tokio::test]
async fn tenant_b_is_refused_tenant_a_secret_by_vault_and_cannot_decrypt_a_payload() {
    let Some(app) = tenant_app(&[]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let read = |qname: &str, path: &str| {
        json!({
            "qname": qname, "container_image": app.svc.image,
            "run": ["cat", "/secrets.yml"], "secret_refs": [format!("s@{path}.value")],
        })
    };
    // Tenant A reads its own secret.
    let a = app.submit_as(&token, "tenant-a", read("own", "kv/data/tenant-a/secret")).await;
    let a = app.wait(&token, &a).await;
    assert_eq!(a["status"], "success", "{a}");
    assert!(
        a["output"].as_str().unwrap().contains("s: [MASKED]"),
        "the secret reached the job (masked in the output): {a}"
    );
    assert_eq!(a["tenant"], "tenant-a", "the view names the tenant");

    // Tenant B asks for A's secret: Vault refuses B's job token.
    let b = app.submit_as(&token, "tenant-b", read("steal", "kv/data/tenant-a/secret")).await;
    let b = app.wait(&token, &b).await;
    assert_eq!(b["status"], "failed", "{b}");
    assert_eq!(b["tenant"], "tenant-b");
    let out = b["output"].as_str().unwrap();
    assert!(out.starts_with("Failed to retrieve secret kv/data/tenant-a/secret from vault"), "{out}");
    assert!(!out.contains("secret-of-tenant-a"), "{out}");
    assert_eq!(b["container_id"], "", "never ran");

    // A's ciphertext sent inline with B's secret-id: B's job token cannot decrypt A's key.
    let payload = app
        .req
        .encrypt_for("tenant-a", &json!({"qname": "enc", "container_image": app.svc.image, "run": ["echo", "ran"]}))
        .await;
    let c = app.submit_as(&token, "tenant-b", json!({ "qname": "enc", "payload": payload })).await;
    let c = app.wait(&token, &c).await;
    assert_eq!(c["status"], "failed", "{c}");
    assert!(c["output"].as_str().unwrap().starts_with("Failed to decrypt payload via vault"), "{c}");
    assert_eq!(c["container_id"], "", "never ran");
    app.stop().await;
}

#[tokio::test]
async fn the_same_qname_in_two_tenants_runs_in_parallel() {
    let Some(app) = tenant_app(&[]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let a = app.submit_as(&token, "tenant-a", sleeper(&app, "shared", 4)).await;
    let a2 = app.submit_as(&token, "tenant-a", sleeper(&app, "shared", 0)).await;
    let b = app.submit_as(&token, "tenant-b", sleeper(&app, "shared", 0)).await;
    let b = app.wait(&token, &b).await;
    assert_eq!(b["status"], "success", "{b}");
    let (_, a_now) = app.get(Some(&token), &format!("/v1/api/job/{a}")).await;
    assert_eq!(a_now["status"], "running", "B's job ended while A's head still runs: {a_now}");
    let a = app.wait(&token, &a).await;
    let a2 = app.wait(&token, &a2).await;
    assert!(ms(&a2["started"]) >= ms(&a["ended"]), "A's own queue stays serial");
    app.stop().await;
}

#[tokio::test]
async fn the_queue_quota_answers_429_and_spares_the_other_tenant() {
    let Some(app) = tenant_app(&[("GOSTINT_TENANT_MAX_QUEUED", "2")]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let head = app.submit_as(&token, "tenant-a", sleeper(&app, "q", 30)).await;
    app.wait_status(&token, &head, "running").await;
    let q1 = app.submit_as(&token, "tenant-a", sleeper(&app, "q", 0)).await;
    let q2 = app.submit_as(&token, "tenant-a", sleeper(&app, "q", 0)).await;
    let (code, answer) = app.post_as(&token, "tenant-a", sleeper(&app, "q", 0)).await;
    assert_eq!(code, 429, "{answer}");
    assert_eq!(answer, json!({"status": "Too Many Requests.", "error": "tenant tenant-a has 2 queued jobs (limit 2)"}));
    // The other tenant is unaffected.
    let b = app.submit_as(&token, "tenant-b", sleeper(&app, "q", 0)).await;
    assert_eq!(app.wait(&token, &b).await["status"], "success");
    let m = app.metrics().await;
    assert!(m.contains("gostint_tenant_quota_refusals_total{service=\"gostint\",tenant=\"tenant-a\"} 1"), "{m}");
    assert!(m.contains("gostint_tenant_queued_jobs{service=\"gostint\",tenant=\"tenant-a\"} 2"), "{m}");
    for id in [&q1, &q2] {
        let r = app
            .http
            .delete(format!("{}/v1/api/job/{id}", app.url))
            .header("X-Auth-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = app
        .http
        .post(format!("{}/v1/api/job/kill/{head}", app.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.wait(&token, &head).await;
    app.stop().await;
}

#[tokio::test]
async fn on_a_one_slot_node_tenant_b_waits_for_at_most_one_of_tenant_a_heads() {
    let Some(app) = tenant_app(&[("GOSTINT_MAX_RUNNING", "1")]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let mut a = Vec::new();
    for i in 0..6 {
        a.push(app.submit_as(&token, "tenant-a", sleeper(&app, &format!("q{i}"), 2)).await);
    }
    let b = app.submit_as(&token, "tenant-b", sleeper(&app, "q0", 0)).await;
    let started = Instant::now();
    let b = app.wait(&token, &b).await;
    assert_eq!(b["status"], "success", "{b}");
    let mut before = 0;
    for id in &a {
        let (_, j) = app.get(Some(&token), &format!("/v1/api/job/{id}")).await;
        let s = ms(&j["started"]);
        if s > 0 && s < ms(&b["started"]) && j["status"] != "queued" {
            before += 1;
        }
    }
    assert!(before <= 1, "tenant B's job started after {before} of tenant A's heads");
    assert!(started.elapsed() < Duration::from_secs(60));
    for id in &a {
        app.wait(&token, id).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_admin_health_answer_has_each_tenant_queued_and_running_counts_and_no_one_else_sees_them() {
    let Some(app) = tenant_app(&[]).await else { return };
    let token = app.req.token(None, &["default"]).await;
    let head = app.submit_as(&token, "tenant-a", sleeper(&app, "q", 30)).await;
    app.wait_status(&token, &head, "running").await;
    let behind = app.submit_as(&token, "tenant-a", sleeper(&app, "q", 0)).await;
    let behind2 = app.submit_as(&token, "tenant-a", sleeper(&app, "q", 0)).await;

    let (code, admin) = app.get(Some(&app.svc.root_token), "/v1/api/health").await;
    assert_eq!(code, 200, "{admin}");
    assert_eq!(admin["tenant.tenant-a.running_jobs"], "1", "{admin}");
    assert_eq!(admin["tenant.tenant-a.queued_jobs"], "2", "{admin}");
    assert_eq!(admin["tenant.tenant-b.running_jobs"], "0", "a configured tenant without jobs: {admin}");
    assert_eq!(admin["tenant.tenant-b.queued_jobs"], "0", "{admin}");
    let (code, one) = app.get(Some(&app.svc.root_token), "/v1/api/health?k=tenant.tenant-a.queued_jobs").await;
    assert_eq!((code, one), (200, json!(2)));

    // A requestor's token, or none: the totals only, never another tenant's name.
    for who in [Some(token.as_str()), None] {
        let (code, plain) = app.get(who, "/v1/api/health").await;
        assert_eq!(code, 200, "{plain}");
        assert_eq!(plain["queued_jobs"], "2", "{plain}");
        let text = plain.to_string();
        assert!(!text.contains("tenant"), "no tenant in the non-admin answer: {text}");
        let (code, _) = app.get(who, "/v1/api/health?k=tenant.tenant-a.queued_jobs").await;
        assert_eq!(code, 400);
    }
    // A refused token is refused, not treated as none.
    let (code, _) = app.get(Some("s.not-a-token"), "/v1/api/health").await;
    assert_eq!(code, 403);

    for id in [&behind, &behind2] {
        let r = app.http.delete(format!("{}/v1/api/job/{id}", app.url)).header("X-Auth-Token", &token).send().await;
        assert_eq!(r.unwrap().status(), 200);
    }
    let r = app.http.post(format!("{}/v1/api/job/kill/{head}", app.url)).header("X-Auth-Token", &token).send().await;
    assert_eq!(r.unwrap().status(), 200);
    app.wait(&token, &head).await;
    app.stop().await;
}
