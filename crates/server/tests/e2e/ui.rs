//! The web UI (`GOSTINT_UI=1`) in a real browser: Debian's `chromium`, driven through
//! `chromedriver` (WebDriver, the fantoccini crate), against the real server, OpenBao and
//! Docker. The browser talks to OpenBao directly, so each test allows its gostint origin in
//! OpenBao's CORS configuration. Screenshots of every page land in `target/ui-screenshots/`.
//!
//! The job view falls back to polling here (no `/stream` route on this branch): the tests
//! wait for what a person would see, with generous timeouts, never for a fixed time.

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gostint_test_support::missing;
use serde_json::{json, Value};

use crate::support::{spawn_app_with, TestApp};

const ENTER: &str = "\u{E007}";

/// A headless chromium behind its own chromedriver; both end when this is dropped.
struct Browser {
    c: Client,
    driver: Child,
    name: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// chromedriver runs in its own process group with the chromium it starts: end them all
    /// (by that group's id), also when a test panics before closing its session.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join(bin)).find(|p| p.is_file())
}

/// Starts chromedriver + chromium, or `None` (skip) when they are not installed.
async fn browser(name: &str, dark: bool) -> Option<Browser> {
    let (Some(driver_bin), Some(chromium)) = (which("chromedriver"), which("chromium")) else {
        return missing("chromium", "install Debian's chromium and chromium-driver (scripts/test does)");
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(driver_bin)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let ready = http.get(format!("{url}/status")).send().await.ok();
        if let Some(r) = ready {
            if r.json::<Value>().await.map(|v| v["value"]["ready"] == true).unwrap_or(false) {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "chromedriver did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,1000".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    if dark {
        args.push("--force-dark-mode".into());
        args.push("--blink-settings=preferredColorScheme=0".into());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({"binary": chromium.to_string_lossy(), "args": args}));
    // An unexpected confirm() must fail a test, not hang it.
    caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("WebDriver session");
    Some(Browser { c, driver, name: name.to_string(), _profile: profile })
}

impl Browser {
    async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.expect("execute script")
    }

    /// Waits until `cond` (a JS expression) is true; fails with the page's visible state.
    async fn until(&self, cond: &str, what: &str, limit: Duration) {
        let start = Instant::now();
        let script = format!("return !!({cond});");
        loop {
            if self.c.execute(&script, vec![]).await.map(|v| v == json!(true)).unwrap_or(false) {
                return;
            }
            if start.elapsed() > limit {
                self.shot("timeout").await;
                let state = self
                    .js("return location.hash + ' | ' + document.querySelector('main').innerText.slice(0, 2000);")
                    .await;
                panic!("{}: waited {limit:?} for {what} ({cond}); page: {state}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn shot(&self, step: &str) {
        let png = self.c.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{}-{step}.png", self.name)), png).expect("write screenshot");
    }

    async fn id(&self, id: &str) -> fantoccini::elements::Element {
        self.c.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    async fn text(&self, id: &str) -> String {
        self.js(&format!("return document.getElementById('{id}').textContent;"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn visible(&self, view: &str) {
        self.until(&format!("!document.getElementById('view-{view}').hidden"), &format!("the {view} view"), secs(30))
            .await;
    }

    async fn open(&self, hash: &str) {
        self.js(&format!("location.hash = '{hash}';")).await;
    }

    /// Opens the UI and waits for its login page. Under a loaded machine a page load has
    /// been seen to lose its module script (the page then stays blank): load it once more.
    async fn start(&self, app: &TestApp) {
        for attempt in 0..2 {
            self.c.goto(&format!("{}/", app.url)).await.expect("open the UI");
            let start = Instant::now();
            while start.elapsed() < secs(20) {
                let up = self.js("return !document.getElementById('view-login').hidden;").await;
                if up == json!(true) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            eprintln!("{}: the UI did not start on load {attempt}, loading it again", self.name);
        }
        self.visible("login").await;
    }

    /// Logs in with a Vault username/password, submitting with the keyboard (Enter).
    async fn login_userpass(&self, app: &TestApp, user: &str, pass: &str) {
        self.start(app).await;
        self.until(
            "document.getElementById('login-vault').textContent.startsWith('http')",
            "the Vault address",
            secs(30),
        )
        .await;
        self.id("login-method-userpass").await.click().await.unwrap();
        self.id("login-user").await.send_keys(user).await.unwrap();
        self.id("login-pass").await.send_keys(&format!("{pass}{ENTER}")).await.unwrap();
        self.until("!document.getElementById('view-run').hidden || !document.getElementById('view-history').hidden || !document.getElementById('view-job').hidden", "the first page after login", secs(30)).await;
    }

    /// Logs in with a pasted Vault token (Enter submits).
    async fn login_token(&self, app: &TestApp, token: &str) {
        self.start(app).await;
        self.id("login-method-token").await.click().await.unwrap();
        self.id("login-token").await.send_keys(&format!("{token}{ENTER}")).await.unwrap();
        self.visible("run").await;
    }

    async fn status_is(&self, status: &str, limit: Duration) {
        self.until(&format!("document.getElementById('job-status').textContent === '{status}'"), status, limit).await;
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// OpenBao set-up the UI needs: userpass users and CORS for this server's origin.
struct VaultAdmin {
    http: reqwest::Client,
    addr: String,
    root: String,
}

static CORS_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl VaultAdmin {
    fn new(app: &TestApp) -> Self {
        Self { http: reqwest::Client::new(), addr: app.svc.vault_addr.clone(), root: app.svc.root_token.clone() }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}/v1/{path}", self.addr));
        r = r.header("X-Vault-Token", token.unwrap_or(&self.root));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("vault call");
        let code = resp.status().as_u16();
        (code, resp.json().await.unwrap_or(Value::Null))
    }

    /// Adds `origin` to OpenBao's CORS origins (others' kept: tests share the dev server).
    async fn allow_origin(&self, origin: &str) {
        let _g = CORS_LOCK.lock().await;
        let (_, cur) = self.call(reqwest::Method::GET, "sys/config/cors", None, None).await;
        let mut origins: Vec<String> = cur["data"]["allowed_origins"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if !origins.iter().any(|o| o == origin || o == "*") {
            origins.push(origin.to_string());
        }
        let (code, body) = self
            .call(
                reqwest::Method::POST,
                "sys/config/cors",
                None,
                Some(json!({"enabled": true, "allowed_origins": origins})),
            )
            .await;
        assert!(code < 300, "CORS config: {code} {body}");
    }

    /// A userpass user with the requestor policy; returns (name, password).
    async fn user(&self) -> (String, String) {
        let (code, body) = self.call(reqwest::Method::GET, "sys/auth", None, None).await;
        assert_eq!(code, 200, "{body}");
        if body["data"]["userpass/"].is_null() && body["userpass/"].is_null() {
            let (code, body) =
                self.call(reqwest::Method::POST, "sys/auth/userpass", None, Some(json!({"type": "userpass"}))).await;
            assert!(code < 300 || body.to_string().contains("path is already in use"), "{code} {body}");
        }
        let name = format!("ui-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let pass = uuid::Uuid::new_v4().simple().to_string();
        let (code, body) = self
            .call(
                reqwest::Method::POST,
                &format!("auth/userpass/users/{name}"),
                None,
                Some(json!({"password": pass, "token_policies": "gostint-requestor", "token_ttl": "1h"})),
            )
            .await;
        assert!(code < 300, "create user: {code} {body}");
        (name, pass)
    }

    /// That user's own Vault token (same entity as the browser's login).
    async fn user_token(&self, name: &str, pass: &str) -> String {
        let r = self
            .http
            .post(format!("{}/v1/auth/userpass/login/{name}", self.addr))
            .json(&json!({"password": pass}))
            .send()
            .await
            .expect("userpass login");
        let v: Value = r.json().await.expect("login json");
        v["auth"]["client_token"].as_str().expect("client_token").to_string()
    }
}

/// The server with the UI on plain HTTP, OpenBao CORS for its origin, a browser.
async fn ui_app(name: &str) -> Option<(TestApp, VaultAdmin, Browser)> {
    ui_app_with(name, &[], false).await
}

async fn ui_app_with(name: &str, extra: &[(&str, &str)], dark: bool) -> Option<(TestApp, VaultAdmin, Browser)> {
    let mut env = vec![("GOSTINT_PLAIN_HTTP", "1"), ("GOSTINT_UI", "1"), ("GOSTINT_KILL_GRACE", "3s")];
    env.extend_from_slice(extra);
    let app = spawn_app_with(&env).await?;
    let b = browser(name, dark).await?;
    let admin = VaultAdmin::new(&app);
    admin.allow_origin(&app.url).await;
    Some((app, admin, b))
}

#[tokio::test]
async fn ui_serves_its_files_relatively_and_leaves_the_api_alone() {
    let Some(app) = spawn_app_with(&[("GOSTINT_PLAIN_HTTP", "1"), ("GOSTINT_UI", "1")]).await else { return };
    let (code, page) = app.get(None, "/").await;
    assert_eq!(code, 200);
    let page = page.as_str().unwrap().to_string();
    assert!(page.contains(r#"<script type="module" src="app.js">"#), "relative module path: {page}");
    let r = app.http.get(format!("{}/app.js", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains(&format!("connect-src 'self' {}", app.svc.vault_addr.trim_end_matches('/'))), "{csp}");
    let (code, body) = app.get(None, "/nope.js").await;
    assert_eq!((code, body), (404, json!("404 page not found\n")));
    // The API keeps its own answers; the UI's requests are counted under `/*`.
    let (code, _) = app.get(None, "/v1/api/job/5b6d1a2b5b6d1a2b5b6d1a2b").await;
    assert_eq!(code, 400);
    let (code, body) = app.get(None, "/v1/api/nope").await;
    assert_eq!((code, body), (404, json!("404 page not found\n")));
    let (_, metrics) = app.get(None, "/v1/api/metrics").await;
    assert!(metrics.as_str().unwrap().contains(r#"path="/*""#), "UI files are in the request histogram");
    app.stop().await;

    // Without GOSTINT_UI, / is the plain 404.
    let Some(app) = spawn_app_with(&[("GOSTINT_PLAIN_HTTP", "1")]).await else { return };
    let (code, _) = app.get(None, "/").await;
    assert_eq!(code, 404);
    let (code, _) = app.get(None, "/app.js").await;
    assert_eq!(code, 404);
    app.stop().await;
}

#[tokio::test]
async fn ui_logs_in_runs_a_secret_job_through_the_secure_flow_and_shows_its_output() {
    let Some((app, admin, b)) = ui_app("secure-run").await else { return };
    let (user, pass) = admin.user().await;
    b.start(&app).await;
    assert_eq!(
        b.js(
            "return document.getElementById('nav').hidden && getComputedStyle(document.getElementById('nav')).display;"
        )
        .await,
        json!("none"),
        "no navigation before login"
    );
    b.shot("1-login").await;
    b.login_userpass(&app, &user, &pass).await;
    b.visible("run").await;
    assert!(b.text("who").await.contains(&user), "the header names the user");

    // Record what the page POSTs to gostint (the secure flow sends only the wrapper).
    b.js("window.__posts = []; const f = window.fetch; window.fetch = function(u, o) { \
         if (String(u) === 'v1/api/job' && o && o.method === 'POST') window.__posts.push(o.body); \
         return f.apply(this, arguments); };")
        .await;
    b.id("run-advanced").await.click().await.unwrap();
    b.id("f-qname").await.send_keys("UI-Secure").await.unwrap();
    b.id("f-tty").await.click().await.unwrap(); // off: stdout and stderr apart
    b.js("document.querySelector('#kv-secrets .kv-add').click();").await;
    b.c.find(Locator::Css("#kv-secrets .kv-a")).await.unwrap().send_keys("mysecret").await.unwrap();
    b.c.find(Locator::Css("#kv-secrets .kv-b")).await.unwrap().send_keys("secret/my-secret.my-value").await.unwrap();
    b.js("document.querySelector('#kv-env .kv-add').click();").await;
    b.c.find(Locator::Css("#kv-env .kv-a")).await.unwrap().send_keys("GREETING").await.unwrap();
    b.c.find(Locator::Css("#kv-env .kv-b")).await.unwrap().send_keys("hello from the ui").await.unwrap();
    b.id("f-run")
        .await
        .send_keys(
            r#"sh -c 'printf "\033[32mgreen\033[0m\n"; echo "$GREETING"; grep -q "mysecret: s3cr3t-v1" /secrets.yml && echo secret-ok; echo to-stderr >&2'"#,
        )
        .await
        .unwrap();
    b.id("f-image").await.send_keys(&app.svc.image).await.unwrap();
    b.shot("2-run-form").await;
    // Keyboard-only: Enter in a field submits the form.
    b.id("f-image").await.send_keys(ENTER).await.unwrap();
    b.until("/^#job\\/[0-9a-f]{24}$/.test(location.hash)", "the job view", secs(60)).await;
    b.status_is("success", secs(120)).await;
    let out = b.text("job-output").await;
    assert!(out.contains("green\nhello from the ui\nsecret-ok\n"), "{out}");
    assert_eq!(b.text("job-stderr").await, "to-stderr\n");
    assert_eq!(
        b.js("const s = document.querySelector('#job-output span.ansi-fg-2'); return s && s.textContent;").await,
        json!("green"),
        "ANSI green is rendered as a coloured span"
    );
    assert_eq!(b.text("job-qname").await, "ui-secure");
    assert_eq!(b.text("job-rc").await, "0");
    b.shot("3-job-view").await;

    // What went to gostint: the mode-B wrapper only, no job field in clear.
    let posts = b.js("return window.__posts;").await;
    let posts = posts.as_array().expect("posts");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let body: Value = serde_json::from_str(posts[0].as_str().unwrap()).unwrap();
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["cubby_path", "cubby_token", "qname", "tty", "wrap_secret_id"], "{body}");
    assert_eq!(body["cubby_path"], "cubbyhole/job");
    // The cubby token was made with 2 uses: gostint spent the second, so it is gone now.
    let cubby = body["cubby_token"].as_str().unwrap();
    let (code, _) = admin.call(reqwest::Method::POST, "auth/token/lookup", None, Some(json!({"token": cubby}))).await;
    assert!(code >= 400, "the cubby token must be used up, lookup answered {code}");
    // The wrapped secret-id was requested wrapped (creation path = the secret-id endpoint) and spent.
    let (code, _) = admin
        .call(reqwest::Method::POST, "sys/wrapping/lookup", None, Some(json!({"token": body["wrap_secret_id"]})))
        .await;
    assert!(code >= 400, "the wrapping token must be spent, lookup answered {code}");

    b.open("#history").await;
    b.visible("history").await;
    b.until("document.querySelectorAll('#hist-rows tr[data-id]').length === 1", "one job listed", secs(30)).await;
    b.shot("4-history").await;
    b.open("#queues").await;
    b.visible("queues").await;
    b.until("document.querySelector('#queues-rows tr[data-queue=\"ui-secure\"]')", "the queue row", secs(30)).await;
    b.until("document.querySelectorAll('#chart circle.pt-success').length === 1", "the chart point", secs(30)).await;
    let row = b.js("return document.querySelector('#queues-rows tr[data-queue=\"ui-secure\"]').innerText;").await;
    assert!(row.as_str().unwrap().contains("success"), "last outcome: {row}");
    b.shot("5-queues").await;
    app.stop().await;
}

#[tokio::test]
async fn ui_kills_a_sleeping_job() {
    let Some((app, _admin, b)) = ui_app("kill").await else { return };
    let token = app.req.token(None, &["gostint-requestor"]).await;
    b.login_token(&app, &token).await;
    b.id("f-image").await.send_keys(&app.svc.image).await.unwrap();
    b.id("f-run").await.send_keys("sleep 60").await.unwrap();
    b.id("run-submit").await.click().await.unwrap();
    b.until("/^#job\\/[0-9a-f]{24}$/.test(location.hash)", "the job view", secs(60)).await;
    b.status_is("running", secs(60)).await;
    let started = Instant::now();
    b.id("job-kill").await.click().await.unwrap();
    b.status_is("failed", secs(60)).await;
    assert!(started.elapsed() < secs(50), "killed, not finished by itself");
    b.until("document.getElementById('job-kill').disabled", "kill disabled once final", secs(10)).await;
    assert!(b.text("flash").await.contains("Kill requested"));
    b.shot("killed").await;
    app.stop().await;
}

#[tokio::test]
async fn ui_deletes_a_finished_job() {
    let Some((app, admin, b)) = ui_app("delete").await else { return };
    let (user, pass) = admin.user().await;
    let token = admin.user_token(&user, &pass).await;
    let id = app.submit(&token, json!({"container_image": app.svc.image, "run": ["echo", "bye"]})).await;
    assert_eq!(app.wait(&token, &id).await["status"], "success");
    b.login_userpass(&app, &user, &pass).await;
    b.open(&format!("#job/{id}")).await;
    b.status_is("success", secs(30)).await;
    b.shot("before").await;
    b.id("job-delete").await.click().await.unwrap();
    b.c.accept_alert().await.expect("the delete confirmation");
    b.until("location.hash === '#history'", "back to history", secs(30)).await;
    b.until("document.getElementById('hist-page').textContent === 'Jobs 0–0 of 0'", "an empty history", secs(30)).await;
    let (code, _) = app.get(Some(&token), &format!("/v1/api/job/{id}")).await;
    assert_eq!(code, 404, "the job is gone");
    b.shot("after").await;
    app.stop().await;
}

#[tokio::test]
async fn ui_pages_through_25_jobs_filters_by_status_and_deletes_from_the_list() {
    let Some((app, admin, b)) = ui_app("paging").await else { return };
    let (user, pass) = admin.user().await;
    let token = admin.user_token(&user, &pass).await;
    let mut ids = HashSet::new();
    for i in 0..25 {
        let q = format!("page{}", i % 5);
        ids.insert(app.submit(&token, json!({"qname": q, "container_image": app.svc.image, "run": ["true"]})).await);
    }
    for id in &ids {
        assert_eq!(app.wait(&token, id).await["status"], "success");
    }
    b.login_userpass(&app, &user, &pass).await;
    b.open("#history").await;
    b.visible("history").await;
    let mut seen = HashSet::new();
    for (n, want) in [(1, "Jobs 1–10 of 25"), (2, "Jobs 11–20 of 25"), (3, "Jobs 21–25 of 25")] {
        b.until(&format!("document.getElementById('hist-page').textContent === '{want}'"), want, secs(30)).await;
        let rows =
            b.js("return [...document.querySelectorAll('#hist-rows tr[data-id]')].map(r => r.dataset.id);").await;
        let rows: Vec<String> = serde_json::from_value(rows).unwrap();
        assert_eq!(rows.len(), if n < 3 { 10 } else { 5 });
        seen.extend(rows);
        b.shot(&format!("page-{n}")).await;
        if n < 3 {
            b.id("hist-next").await.click().await.unwrap();
        }
    }
    assert_eq!(seen, ids, "the three pages show every job once");
    assert_eq!(b.js("return document.getElementById('hist-next').disabled;").await, json!(true));
    b.id("hist-prev").await.click().await.unwrap();
    b.until("document.getElementById('hist-page').textContent === 'Jobs 11–20 of 25'", "back one page", secs(30)).await;

    // Status filter: all 25 succeeded; none failed.
    b.js("const s = document.getElementById('hist-status'); s.value = 'failed'; s.dispatchEvent(new Event('change'));")
        .await;
    b.until("document.getElementById('hist-page').textContent === 'Jobs 0–0 of 0'", "no failed job", secs(30)).await;
    b.js(
        "const s = document.getElementById('hist-status'); s.value = 'success'; s.dispatchEvent(new Event('change'));",
    )
    .await;
    b.until("document.getElementById('hist-page').textContent === 'Jobs 1–10 of 25'", "25 successful", secs(30)).await;
    b.shot("filtered").await;

    // The trash icon deletes the first listed job.
    let first: String =
        serde_json::from_value(b.js("return document.querySelector('#hist-rows tr[data-id]').dataset.id;").await)
            .unwrap();
    b.c.find(Locator::Css(&format!("tr[data-id=\"{first}\"] button"))).await.unwrap().click().await.unwrap();
    b.c.accept_alert().await.expect("the delete confirmation");
    b.until("document.getElementById('hist-page').textContent === 'Jobs 1–10 of 24'", "24 left", secs(30)).await;
    let (code, _) = app.get(Some(&token), &format!("/v1/api/job/{first}")).await;
    assert_eq!(code, 404);
    app.stop().await;
}

#[tokio::test]
async fn ui_tenant_b_does_not_list_tenant_a_jobs() {
    let Some((app, admin, b)) = ui_app("tenants").await else { return };
    let (alice, alice_pass) = admin.user().await;
    let (bob, bob_pass) = admin.user().await;
    let alice_token = admin.user_token(&alice, &alice_pass).await;
    let id = app
        .submit(&alice_token, json!({"qname": "alice-q", "container_image": app.svc.image, "run": ["echo", "alice"]}))
        .await;
    assert_eq!(app.wait(&alice_token, &id).await["status"], "success");

    b.login_userpass(&app, &bob, &bob_pass).await;
    b.open("#history").await;
    b.until("document.getElementById('hist-page').textContent === 'Jobs 0–0 of 0'", "bob sees no job", secs(30)).await;
    b.shot("bob-history").await;
    b.open(&format!("#job/{id}")).await;
    b.until("!document.getElementById('job-error').hidden", "an error for alice's job", secs(30)).await;
    assert!(b.text("job-error").await.contains("Not Found."), "alice's job is invisible to bob");
    assert_eq!(b.text("job-output").await, "", "nothing of alice's job is shown");
    b.open("#queues").await;
    b.until("document.getElementById('queues-note').textContent === 'From your 0 jobs.'", "no queue for bob", secs(30))
        .await;
    assert!(!b.js("return document.body.innerText;").await.as_str().unwrap().contains("alice-q"));
    b.shot("bob-queues").await;

    // Logout, then alice sees her job (the positive control).
    b.id("logout").await.click().await.unwrap();
    b.visible("login").await;
    b.login_userpass(&app, &alice, &alice_pass).await;
    b.open("#history").await;
    b.until(&format!("document.querySelector('#hist-rows tr[data-id=\"{id}\"]')"), "alice's job", secs(30)).await;
    b.shot("alice-history").await;
    app.stop().await;
}

#[tokio::test]
async fn ui_an_expired_login_returns_to_the_login_page() {
    let Some((app, admin, b)) = ui_app("expired").await else { return };
    // A short-lived token: the UI's login token is its child and dies with it.
    let (code, t) = admin
        .call(
            reqwest::Method::POST,
            "auth/token/create",
            None,
            Some(json!({"policies": ["gostint-requestor"], "ttl": "20s", "explicit_max_ttl": "20s"})),
        )
        .await;
    assert_eq!(code, 200, "{t}");
    let token = t["auth"]["client_token"].as_str().unwrap().to_string();
    b.login_token(&app, &token).await;
    b.open("#history").await;
    b.until("document.getElementById('hist-page').textContent === 'Jobs 0–0 of 0'", "the history", secs(30)).await;
    // Wait for Vault to consider the token expired.
    let start = Instant::now();
    loop {
        let (code, _) =
            admin.call(reqwest::Method::POST, "auth/token/lookup", None, Some(json!({"token": token}))).await;
        if code >= 400 {
            break;
        }
        assert!(start.elapsed() < secs(90), "the token never expired");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.id("hist-refresh").await.click().await.unwrap();
    b.visible("login").await;
    assert_eq!(b.js("return location.hash;").await, json!("#login"));
    assert!(b.text("flash").await.contains("log in again"), "the page says why");
    assert_eq!(b.js("return document.getElementById('nav').hidden;").await, json!(true));
    b.shot("back-to-login").await;
    app.stop().await;
}

#[tokio::test]
async fn ui_shows_script_tags_in_output_as_text() {
    let Some((app, admin, b)) = ui_app("escaping").await else { return };
    let (user, pass) = admin.user().await;
    let token = admin.user_token(&user, &pass).await;
    let evil = r#"<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"><b>bold</b>"#;
    let id = app
        .submit(
            &token,
            json!({"container_image": app.svc.image, "run": ["sh", "-c", format!("echo '{evil}'; echo '{evil}' >&2")]}),
        )
        .await;
    assert_eq!(app.wait(&token, &id).await["status"], "success");
    b.login_userpass(&app, &user, &pass).await;
    b.open(&format!("#job/{id}")).await;
    b.status_is("success", secs(30)).await;
    assert_eq!(b.text("job-output").await, format!("{evil}\n"));
    assert_eq!(b.text("job-stderr").await, format!("{evil}\n"));
    let injected = b
        .js("return document.querySelectorAll('#job-output *, #job-stderr *').length + ':' + String(window.__pwned);")
        .await;
    assert_eq!(injected, json!("0:undefined"), "no element was created from job output and nothing ran");
    b.open("#history").await;
    b.until(&format!("document.querySelector('#hist-rows tr[data-id=\"{id}\"]')"), "the listed job", secs(30)).await;
    b.shot("escaped").await;
    app.stop().await;
}

/// The job view's live-stream client, with the stream itself faked in the page: this branch's
/// server has no `/stream` route yet (the real-server tests above cover the polling fallback).
/// Everything else is real: the server, the running job, the login.
#[tokio::test]
async fn ui_job_view_follows_a_live_event_stream_when_the_server_has_one() {
    let Some((app, admin, b)) = ui_app("stream").await else { return };
    let (user, pass) = admin.user().await;
    let token = admin.user_token(&user, &pass).await;
    let id = app.submit(&token, json!({"container_image": app.svc.image, "run": ["sleep", "30"]})).await;
    app.wait_status(&token, &id, "running").await;
    b.login_userpass(&app, &user, &pass).await;
    // /stream answers text/event-stream: two chunks now (an event split across them), the end on demand.
    let script = r#"
        const enc = new TextEncoder(); let ctl; window.__streamAuth = null;
        window.__endStream = () => { ctl.enqueue(enc.encode('event: end\ndata: ' + JSON.stringify({
            _id: 'JOBID', status: 'failed', node_uuid: '', qname: '', container_image: 'img', submitted: '2026-01-01T00:00:00Z',
            started: '2026-01-01T00:00:01Z', ended: '2026-01-01T00:00:02Z', output: 'one\ntwo\nthe end\n', stderr: 'err\n',
            return_code: 7, tty: false, container_id: 'c', kill_requested: false }) + '\n\n')); ctl.close(); };
        const f = window.fetch;
        window.fetch = function(u, o) {
          if (String(u).endsWith('/stream')) {
            window.__streamAuth = o.headers['X-Auth-Token'] ? 'sent' : 'missing';
            const body = new ReadableStream({ start(c) { ctl = c;
              c.enqueue(enc.encode(': keep-alive\n\nid: 4\nevent: stdout\ndata: one\ndata: \n\nid: 8\nevent: stdout\ndata: \u001b[31mtw'));
              c.enqueue(enc.encode('o\u001b[0m\ndata: \n\nevent: stderr\ndata: err\n\nevent: status\ndata: stopping\n\n')); } });
            return Promise.resolve(new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }));
          }
          return f.apply(this, arguments);
        };"#;
    b.js(&script.replace("JOBID", &id)).await;
    b.open(&format!("#job/{id}")).await;
    b.until("document.getElementById('job-mode').textContent === 'live'", "the live mode", secs(30)).await;
    b.until(r"document.getElementById('job-output').textContent === 'one\ntwo\n'", "streamed stdout", secs(30)).await;
    assert_eq!(b.text("job-stderr").await, "err");
    assert_eq!(b.text("job-status").await, "stopping");
    assert_eq!(b.js("return window.__streamAuth;").await, json!("sent"));
    assert_eq!(
        b.js("const s = document.querySelector('#job-output span.ansi-fg-1'); return s && s.textContent;").await,
        json!("two"),
        "a colour split across chunks"
    );
    b.shot("live").await;
    b.js("window.__endStream();").await;
    b.until("document.getElementById('job-mode').textContent === 'final'", "the end event", secs(30)).await;
    assert_eq!(b.text("job-status").await, "failed");
    assert_eq!(b.text("job-output").await, "one\ntwo\nthe end\n");
    assert_eq!(b.text("job-rc").await, "7");
    // The real job is still running: kill it so the server stops promptly.
    let r =
        app.http.post(format!("{}/v1/api/job/kill/{id}", app.url)).header("X-Auth-Token", &token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.wait(&token, &id).await;
    app.stop().await;
}

/// Relative contrast (WCAG) of two CSS colours, computed in the page.
const CONTRAST_JS: &str = r#"
const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
const ratio = (a, b) => { const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const bg = getComputedStyle(document.body).backgroundColor;
const out = { dark: matchMedia('(prefers-color-scheme: dark)').matches, bg };
out.body = ratio(getComputedStyle(document.body).color, bg);
for (const id of ['login-submit']) { const s = getComputedStyle(document.getElementById(id)); out[id] = ratio(s.color, s.backgroundColor); }
for (const cls of ['hint', 'error']) { const e = document.createElement('p'); e.className = cls; e.textContent = 'x'; document.body.append(e);
  out[cls] = ratio(getComputedStyle(e).color, bg); e.remove(); }
for (const s of ['success', 'failed', 'running', 'queued', 'unknown']) { const e = document.createElement('span'); e.className = 'status st-' + s;
  document.body.append(e); out[s] = ratio(getComputedStyle(e).color, bg); e.remove(); }
const a = document.createElement('a'); a.href = '#x'; a.textContent = 'x'; document.body.append(a); out.link = ratio(getComputedStyle(a).color, bg); a.remove();
return out;
"#;

#[tokio::test]
async fn ui_labels_every_input_and_holds_contrast_in_dark_and_light_mode() {
    for dark in [false, true] {
        let name = if dark { "dark" } else { "light" };
        let Some((app, admin, b)) = ui_app_with(name, &[], dark).await else { return };
        let (user, pass) = admin.user().await;
        b.login_userpass(&app, &user, &pass).await;
        b.id("run-advanced").await.click().await.unwrap();
        b.js(
            "document.querySelector('#kv-secrets .kv-add').click(); document.querySelector('#kv-env .kv-add').click();",
        )
        .await;
        // Every input and select has a label (the datalist's options are not inputs).
        let unlabelled = b
            .js("return [...document.querySelectorAll('input, select')].filter(i => i.labels.length === 0 && !i.getAttribute('aria-label')).map(i => i.id || i.name);")
            .await;
        assert_eq!(unlabelled, json!([]), "inputs without a label");
        b.shot("run-form").await;
        b.id("logout").await.click().await.unwrap();
        b.visible("login").await;
        b.shot("login").await;
        let c = b.js(CONTRAST_JS).await;
        assert_eq!(c["dark"], json!(dark), "the browser's colour scheme: {c}");
        for k in ["body", "login-submit", "hint", "error", "success", "failed", "running", "queued", "unknown", "link"]
        {
            let r = c[k].as_f64().unwrap_or(0.0);
            assert!(r >= 4.5, "{name} mode: contrast of {k} is {r:.2} (< 4.5): {c}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn ui_sends_a_content_file_and_refuses_one_that_is_not_gzip() {
    use base64::Engine;
    let Some((app, admin, b)) = ui_app("content").await else { return };
    let (user, pass) = admin.user().await;
    let dir = tempfile::tempdir().unwrap();
    let not_gzip = dir.path().join("plain.tar.gz");
    std::fs::write(&not_gzip, b"this is not gzip").unwrap();
    let content = gostint_test_support::content(&[gostint_test_support::ContentFile {
        name: "./hello.sh",
        data: b"echo hello from the content file\n",
        mode: 0o755,
    }]);
    let good = dir.path().join("job.tar.gz");
    let bytes = base64::engine::general_purpose::STANDARD.decode(content.strip_prefix("targz,").unwrap()).unwrap();
    std::fs::write(&good, bytes).unwrap();

    b.login_userpass(&app, &user, &pass).await;
    b.id("run-advanced").await.click().await.unwrap();
    b.id("f-image").await.send_keys(&app.svc.image).await.unwrap();
    b.id("f-run").await.send_keys("sh /hello.sh").await.unwrap();
    b.id("f-content").await.send_keys(&not_gzip.to_string_lossy()).await.unwrap();
    b.id("run-submit").await.click().await.unwrap();
    b.until("!document.getElementById('run-error').hidden", "the content error", secs(30)).await;
    assert!(b.text("run-error").await.contains("is not gzip-compressed"), "{}", b.text("run-error").await);
    assert_eq!(b.js("return location.hash;").await, json!("#run"), "nothing was submitted");
    b.shot("refused").await;

    b.id("f-content").await.send_keys(&good.to_string_lossy()).await.unwrap();
    b.id("run-submit").await.click().await.unwrap();
    b.until("/^#job\\/[0-9a-f]{24}$/.test(location.hash)", "the job view", secs(60)).await;
    b.status_is("success", secs(120)).await;
    assert!(b.text("job-output").await.contains("hello from the content file"), "{}", b.text("job-output").await);
    app.stop().await;
}

#[tokio::test]
async fn ui_a_token_of_two_tenants_picks_tenant_b_in_a_select_and_the_job_runs_as_tenant_b() {
    let Some(svc) = gostint_test_support::services() else { return };
    let Some(approles) = svc.approles.clone() else {
        let _: Option<()> = missing("vault", "GOSTINT_TEST_APPROLES unset: run scripts/services up");
        return;
    };
    let Some((app, _admin, b)) = ui_app_with("tenant-select", &[("GOSTINT_APPROLES", approles.as_str())], false).await
    else {
        return;
    };
    // The API decides by Vault: one tenant's requestor sees that tenant only, a token of both
    // (and root) sees both, no token is refused.
    let only_a = app.req.token(None, &["gostint-requestor-tenant-a"]).await;
    let (code, v) = app.get(Some(&only_a), "/v1/api/tenants").await;
    assert_eq!((code, v), (200, json!({"tenants": ["tenant-a"]})));
    let (code, v) = app.get(Some(&app.svc.root_token), "/v1/api/tenants").await;
    assert_eq!((code, v), (200, json!({"tenants": ["tenant-a", "tenant-b"]})));
    let (code, _) = app.get(None, "/v1/api/tenants").await;
    assert_eq!(code, 400, "no token, as the other routes");
    let (code, _) = app.get(Some("s.not-a-token"), "/v1/api/tenants").await;
    assert_eq!(code, 403);

    let both = app.req.token(None, &["gostint-requestor-tenant-a", "gostint-requestor-tenant-b"]).await;
    let (code, v) = app.get(Some(&both), "/v1/api/tenants").await;
    assert_eq!((code, v), (200, json!({"tenants": ["tenant-a", "tenant-b"]})));
    b.login_token(&app, &both).await;
    b.until("!document.getElementById('tenant-row').hidden", "the tenant select", secs(30)).await;
    let opts = b.js("return [...document.querySelectorAll('#f-approle option')].map(o => o.value);").await;
    assert_eq!(opts, json!(["tenant-a", "tenant-b"]));
    assert_eq!(
        b.js("const s = document.getElementById('f-approle'); return s.tagName + ':' + s.labels.length;").await,
        json!("SELECT:1"),
        "a labelled select"
    );
    b.js("const s = document.getElementById('f-approle'); s.value = 'tenant-b'; s.dispatchEvent(new Event('change'));")
        .await;
    b.id("f-run").await.send_keys("echo hello-from-tenant-b").await.unwrap();
    b.id("f-image").await.send_keys(&app.svc.image).await.unwrap();
    b.shot("1-select").await;
    b.id("f-image").await.send_keys(ENTER).await.unwrap();
    b.until("/^#job\\/[0-9a-f]{24}$/.test(location.hash)", "the job view", secs(60)).await;
    b.status_is("success", secs(120)).await;
    assert!(b.text("job-output").await.contains("hello-from-tenant-b"));
    b.shot("2-job-view").await;
    let id = b.js("return location.hash.slice(5);").await.as_str().unwrap().to_string();
    let (code, job) = app.get(Some(&app.svc.root_token), &format!("/v1/api/job/{id}")).await;
    assert_eq!(code, 200, "{job}");
    assert_eq!((job["tenant"].as_str(), job["status"].as_str()), (Some("tenant-b"), Some("success")), "{job}");
    let page = b.js("return document.getElementById('view-job').innerText;").await;
    assert!(page.as_str().unwrap().contains("tenant-b"), "the job view shows the tenant: {page}");

    // One tenant only: no choice to make, the select stays hidden.
    b.id("logout").await.click().await.unwrap();
    b.visible("login").await;
    b.login_token(&app, &only_a).await;
    b.until("document.getElementById('f-approle').value === 'tenant-a'", "tenant-a fixed", secs(30)).await;
    assert_eq!(b.js("return document.getElementById('tenant-row').hidden;").await, json!(true));
    app.stop().await;
}
