//! Every route and error of the v1 contract (docs/design.md §2).

use serde_json::{json, Value};

use crate::support::spawn_app;

#[tokio::test]
async fn routes_answer_the_contract() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;

    // Health: every value a string; ?k= bare text; unknown key 400.
    let (code, h) = app.get(None, "/v1/api/health").await;
    assert_eq!(code, 200);
    let map = h.as_object().expect("health is an object");
    for key in [
        "state",
        "all_jobs",
        "queued_jobs",
        "running_jobs",
        "stopping_jobs",
        "success_jobs",
        "failed_jobs",
        "notauthorised_jobs",
        "unknown_jobs",
        "containers",
        "containers_running",
        "containers_paused",
        "containers_stopped",
        "images",
        "mem_total",
        "architecture",
        "operating_system",
        "node_uuid",
        "node_running_jobs",
    ] {
        assert!(map.get(key).is_some_and(Value::is_string), "health key {key}: {h}");
    }
    assert_eq!(h["state"], "active");
    let r = app.http.get(format!("{}/v1/api/health?k=state", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "active");
    let (code, body) = app.get(None, "/v1/api/health?k=nope").await;
    assert_eq!((code, body), (400, json!({"status": "Invalid request.", "error": "Invalid health metric key"})));
    let (code, _) = app.get(None, "/v1/api/health?k=").await;
    assert_eq!(code, 400);

    // Vault info.
    let (code, v) = app.get(None, "/v1/api/vault/info").await;
    assert_eq!(code, 200);
    assert_eq!(v, json!({"vault_addr": app.svc.vault_addr, "vault_external_addr": app.svc.vault_addr}));

    // Job ids: bad shape 400, unknown 404 (GET, DELETE, kill).
    let (code, body) = app.get(Some(&token), "/v1/api/job/xyz").await;
    assert_eq!(
        (code, body),
        (400, json!({"status": "Invalid job request.", "error": "Invalid job ID (not ObjectIdHex)"}))
    );
    let missing = "5b6d1a2b5b6d1a2b5b6d1a2b";
    let (code, body) = app.get(Some(&token), &format!("/v1/api/job/{missing}")).await;
    assert_eq!((code, body), (404, json!({"status": "Not Found.", "error": "not found"})));
    let r = app
        .http
        .delete(format!("{}/v1/api/job/{missing}", app.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .http
        .post(format!("{}/v1/api/job/kill/{missing}", app.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r =
        app.http.post(format!("{}/v1/api/job/kill/zzz", app.url)).header("X-Auth-Token", &token).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Unknown route: plain-text 404; wrong method 405; trailing slash 301 with query kept;
    // /login 301 to ../
    let r = app.http.get(format!("{}/v1/api/nothing", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap().trim_end(), "404 page not found");
    let r = app.http.put(format!("{}/v1/api/health", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = no_redirect.get(format!("{}/v1/api/job/?skip=3", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/v1/api/job?skip=3");
    let r = no_redirect.get(format!("{}/login", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "../");

    // Metrics: the request histogram with route templates, never raw paths.
    let r = app.http.get(format!("{}/v1/api/metrics", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#"path="/v1/api/job/{jobID}""#), "{text}");
    assert!(text.contains(r#"service="gostint""#), "{text}");
    assert!(!text.contains(missing), "raw path leaked into metric labels");
    // Calls to the ports are timed: the store (this very scrape counts jobs) and Vault (lookups).
    for port in ["store", "vault"] {
        let line = format!(r#"gostint_port_call_seconds_count{{port="{port}","#);
        let n: u64 = text
            .lines()
            .find(|l| l.starts_with(line.as_str()))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {line} in {text}"));
        assert!(n > 0, "{line} is 0");
    }
    app.stop().await;
}

#[tokio::test]
async fn list_pages_newest_first_and_delete_follows_the_rules() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;

    let (code, page) = app.get(Some(&token), "/v1/api/job").await;
    assert_eq!(code, 200);
    assert_eq!(page, json!({"data": [], "skip": 0, "limit": 10, "total": 0}));

    let mut ids = Vec::new();
    for i in 0..12 {
        let job = json!({"qname": format!("list-{i}"), "container_image": app.svc.image, "run": ["true"]});
        ids.push(app.submit(&token, job).await);
    }
    for id in &ids {
        app.wait(&token, id).await;
    }
    let (_, page) = app.get(Some(&token), "/v1/api/job").await;
    assert_eq!(page["total"], 12);
    assert_eq!(page["limit"], 10);
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 10);
    assert_eq!(data[0]["_id"], ids[11].as_str(), "newest first");
    let (_, page) = app.get(Some(&token), "/v1/api/job?skip=10").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["data"][1]["_id"], ids[0].as_str());
    for bad in ["-5", "abc"] {
        let (code, page) = app.get(Some(&token), &format!("/v1/api/job?skip={bad}")).await;
        assert_eq!((code, &page["skip"]), (200, &json!(0)), "skip={bad}");
    }

    // Delete a finished job; a running one is refused; a queued one is cancelled.
    let r = app
        .http
        .delete(format!("{}/v1/api/job/{}", app.url, ids[0]))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"_id": ids[0]}));
    let (code, _) = app.get(Some(&token), &format!("/v1/api/job/{}", ids[0])).await;
    assert_eq!(code, 404);

    let running =
        app.submit(&token, json!({"qname": "del", "container_image": app.svc.image, "run": ["sleep", "3"]})).await;
    let queued =
        app.submit(&token, json!({"qname": "del", "container_image": app.svc.image, "run": ["echo", "never"]})).await;
    app.wait_status(&token, &running, "running").await;
    let r = app
        .http
        .delete(format!("{}/v1/api/job/{running}", app.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "Invalid job request.", "error": "Cannot delete a running/stopping job"})
    );
    let r = app
        .http
        .delete(format!("{}/v1/api/job/{queued}", app.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a queued job can be deleted (cancelled)");
    assert_eq!(app.wait(&token, &running).await["status"], "success");
    let (code, _) = app.get(Some(&token), &format!("/v1/api/job/{queued}")).await;
    assert_eq!(code, 404, "the cancelled job never ran");
    app.stop().await;
}

#[tokio::test]
async fn requests_are_json_whatever_the_content_type_and_capped_in_size() {
    let Some(app) = spawn_app_small_body().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let wrap = app.req.wrapped_secret_id().await;
    let body =
        json!({"qname": "ct", "container_image": app.svc.image, "run": ["true"], "wrap_secret_id": wrap}).to_string();
    let r = app
        .http
        .post(format!("{}/v1/api/job", app.url))
        .header("X-Auth-Token", &token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let big = format!(r#"{{"qname":"big","wrap_secret_id":"x","content":"{}"}}"#, "A".repeat(70_000));
    let (code, body) = app.post_raw(Some(&token), big).await;
    assert_eq!((code, body), (413, json!({"status": "Request Too Large.", "error": "request body too large"})));
    app.stop().await;
}

async fn spawn_app_small_body() -> Option<crate::support::TestApp> {
    crate::support::spawn_app_with(&[("GOSTINT_MAX_BODY", "64KiB")]).await
}

#[tokio::test]
async fn server_fields_in_a_post_are_ignored() {
    let Some(app) = spawn_app().await else { return };
    let token = app.req.token(None, &["default"]).await;
    let id = app
        .submit(
            &token,
            json!({
                "qname": "mass", "container_image": app.svc.image, "run": ["echo", "real"],
                "status": "success", "ended": "2001-01-01T00:00:00Z", "output": "forged", "node_uuid": "forged",
                "container_id": "deadbeef", "kill_requested": true, "return_code": 99, "_id": "5b6d1a2b5b6d1a2b5b6d1a2b",
            }),
        )
        .await;
    assert_ne!(id, "5b6d1a2b5b6d1a2b5b6d1a2b");
    let j = app.wait(&token, &id).await;
    assert_eq!(j["status"], "success", "{j}");
    assert_eq!(j["output"], "real\n");
    assert_eq!(j["kill_requested"], false);
    assert_eq!(j["return_code"], 0);
    app.stop().await;
}
