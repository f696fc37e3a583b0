//! The HTTP surface under abuse: 300 clients that send nothing or trickle their headers, and
//! bounded fuzzing of the job JSON, content tars and request heads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Scenario;
use crate::audit::Accepted;
use crate::ctx::Ctx;
use crate::figures::Figures;
use crate::rig::Rig;

/// The HTTP scenarios.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "slow-clients",
            quick: true,
            root: false,
            promise: "300 connections, half sending nothing and half their headers one byte a second, with GOSTINT_HEADER_TIMEOUT=2s: the server closes every one within a few seconds while a normal client is served; descriptors return",
            run: slow_clients,
        },
        Scenario {
            name: "fuzz",
            quick: true,
            root: false,
            promise: "~400 seeded cases of mutated job JSON, broken content tars and odd request heads: every answer 2xx or 4xx (503 allowed), none hangs or drops a complete request, every accepted job ends, the node stays up and its RSS returns near its baseline",
            run: fuzz,
        },
    ]
}

/// The header timeout the slow-clients node runs with.
const HEADER_TIMEOUT_S: u64 = 2;
/// How long a held connection is waited for before it counts as held for good.
const HOLD_BOUND: Duration = Duration::from_secs(30);

fn slow_clients(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(async move {
        let mut f = Figures::new("slow-clients");
        let ht = format!("{HEADER_TIMEOUT_S}s");
        let rig = Rig::sqlite(ctx, &[("GOSTINT_HEADER_TIMEOUT", &ht)]).await?;
        let addr = rig.node.url().trim_start_matches("http://").to_string();
        let holds: Arc<Mutex<Vec<(bool, f64)>>> = Arc::default();
        let mut tasks = Vec::new();
        for i in 0..300 {
            let (addr, holds) = (addr.clone(), holds.clone());
            let trickle = i % 2 == 1;
            tasks.push(tokio::spawn(async move {
                let Ok(mut s) = TcpStream::connect(&addr).await else {
                    holds.lock().map(|mut h| h.push((trickle, -1.0))).unwrap_or(());
                    return;
                };
                let t0 = Instant::now();
                let head = b"GET /v1/api/health?k=state HTTP/1.1\r\nHost: gostint\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let closed = tokio::time::timeout(HOLD_BOUND, async {
                    let mut buf = [0u8; 512];
                    let mut k = 0;
                    loop {
                        if trickle {
                            // One byte a second; a failed write is the server having closed.
                            if s.write_all(&head[k % head.len()..k % head.len() + 1]).await.is_err() {
                                return;
                            }
                            k += 1;
                            match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                                Ok(Ok(0)) | Ok(Err(_)) => return,
                                _ => {}
                            }
                        } else {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {} // a 408, then EOF
                            }
                        }
                    }
                })
                .await
                .is_ok();
                let held = if closed { t0.elapsed().as_secs_f64() } else { f64::INFINITY };
                holds.lock().map(|mut h| h.push((trickle, held))).unwrap_or(());
            }));
        }
        // A normal client meanwhile.
        let mut normal = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(HEADER_TIMEOUT_S + 4) {
            let t = Instant::now();
            let ok = rig.api.health("state").await.is_some();
            normal.push((ok, t.elapsed().as_secs_f64()));
            rig.api.codes.add(if ok { "200" } else { "error" });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for t in tasks {
            let _ = t.await;
        }
        let holds = holds.lock().map(|h| h.clone()).unwrap_or_default();
        let max = |trickle: bool| holds.iter().filter(|h| h.0 == trickle).map(|h| h.1).fold(0.0, f64::max);
        let held = holds.iter().filter(|h| h.1.is_infinite()).count();
        let refused = holds.iter().filter(|h| h.1 < 0.0).count();
        let fmt = |v: f64| if v.is_infinite() { format!(">{}", HOLD_BOUND.as_secs()) } else { format!("{v:.1}") };
        f.note("silent_max_hold_s", fmt(max(false)));
        f.note("trickle_max_hold_s", fmt(max(true)));
        let worst = holds.iter().map(|h| h.1).fold(0.0, f64::max);
        f.recover_s = worst.is_finite().then_some(worst);
        let worst_normal = normal.iter().map(|n| n.1).fold(0.0, f64::max);
        f.note("normal_max_s", format!("{worst_normal:.2}"));
        f.check(refused == 0, format!("{refused} connections refused"));
        f.check(held == 0, format!("{held} of 300 connections still held after {:?}", HOLD_BOUND));
        let bound = HEADER_TIMEOUT_S as f64 + 6.0;
        f.check(
            max(false) <= bound && max(true) <= bound,
            format!(
                "a connection was held {} s (silent) / {} s (trickle); bound {bound} s",
                fmt(max(false)),
                fmt(max(true))
            ),
        );
        f.check(normal.iter().all(|n| n.0), "a normal request failed meanwhile");
        f.check(worst_normal < 5.0, format!("a normal request took {worst_normal:.1} s"));
        // Descriptors come back.
        let t = Instant::now();
        let before = rig.sampler.before.fds;
        while crate::sample::sample(rig.node.pid()).is_some_and(|s| s.fds > before + 10)
            && t.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        rig.finish(&mut f, &[], Duration::from_secs(5)).await;
        f.check(f.fds[2] <= f.fds[0] + 10, format!("descriptors {} → {} after", f.fds[0], f.fds[2]));
        Ok(f)
    })
}

// ------------------------------------------------------------------ fuzz

/// Cases of each kind.
const JSON_CASES: usize = 220;
const CONTENT_CASES: usize = 60;
const HEAD_CASES: usize = 120;
/// Longest a case may take before it counts as a hang.
const CASE_BOUND: Duration = Duration::from_secs(15);

fn fuzz(ctx: &Ctx) -> BoxFuture<'_, anyhow::Result<Figures>> {
    Box::pin(async move {
        let seed: u64 = match std::env::var("GOSTINT_FUZZ_SEED") {
            Ok(s) => s.trim().parse().map_err(|_| anyhow::anyhow!("GOSTINT_FUZZ_SEED is not a number: {s:?}"))?,
            Err(_) => rand::random(),
        };
        println!("    fuzz seed {seed} (GOSTINT_FUZZ_SEED={seed} repeats this run)");
        let mut f = Figures::new("fuzz");
        f.note("seed", seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let rig = Rig::sqlite(ctx, &[("GOSTINT_HEADER_TIMEOUT", "3s")]).await?;
        let addr = rig.node.url().trim_start_matches("http://").to_string();
        // A real wrapped secret id: the POST only looks it up, so many cases may share it.
        let shared_wrap = rig.api.wrapped_secret_id().await?;
        let image = ctx.svc.image.clone();
        let mut accepted: Vec<Accepted> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        let mut cases = 0;

        for i in 0..JSON_CASES {
            let body = json_case(&mut rng, &image, &shared_wrap, i);
            let (code, id) = post(&rig.api, body.clone()).await;
            cases += 1;
            judge(&mut problems, &format!("json case {i}"), code, &body);
            if let Some(id) = id {
                accepted.push(Accepted { id, qname: String::new() });
            }
        }
        for i in 0..CONTENT_CASES {
            let wrap = rig.api.wrapped_secret_id().await?;
            let body = json!({
                "qname": format!("fuzz-content-{}", i % 6),
                "container_image": image,
                "run": ["sh", "-c", "ls -la; echo content-ran"],
                "content": content_case(&mut rng, i),
                "wrap_secret_id": wrap,
            })
            .to_string()
            .into_bytes();
            let (code, id) = post(&rig.api, body.clone()).await;
            cases += 1;
            judge(&mut problems, &format!("content case {i}"), code, &body);
            if let Some(id) = id {
                accepted.push(Accepted { id, qname: String::new() });
            }
        }
        for i in 0..HEAD_CASES {
            let (req, complete) = head_case(&mut rng, &shared_wrap, i);
            cases += 1;
            let r = tokio::time::timeout(CASE_BOUND, raw(&addr, &req, complete)).await;
            let label =
                format!("head case {i} ({})", String::from_utf8_lossy(&req[..req.len().min(60)]).escape_debug());
            match r {
                Err(_) => problems.push(format!("{label}: no answer within {CASE_BOUND:?}")),
                Ok(Err(e)) => problems.push(format!("{label}: {e:#}")),
                Ok(Ok(None)) => {
                    rig.api.codes.add("closed");
                    if complete {
                        problems.push(format!("{label}: closed without an answer"));
                    }
                }
                Ok(Ok(Some(code))) => {
                    rig.api.codes.add(code.to_string());
                    judge(&mut problems, &label, Some(code), &req);
                }
            }
            if !problems.is_empty() && rig.api.health("state").await.is_none() {
                problems.push(format!("the node stopped answering after {label}"));
                break;
            }
        }
        f.note("cases", cases);
        f.check(rig.api.health("state").await.is_some(), "the node does not answer after the fuzzing");
        for p in problems.iter().take(5) {
            f.failures.push(p.clone());
        }
        if problems.len() > 5 {
            f.failures.push(format!("… {} problems in all", problems.len()));
        }
        // Every accepted job ends; the node's memory returns near its baseline.
        let a = rig.finish(&mut f, &accepted, Duration::from_secs(240)).await;
        f.note("accepted_statuses", format!("{:?}", a.statuses));
        f.check(
            f.rss[2] <= f.rss[0] * 2.0 + 40.0,
            format!("RSS {:.0} MiB after, baseline {:.0} MiB", f.rss[2], f.rss[0]),
        );
        Ok(f)
    })
}

/// One POST; the code (None: no answer) and the id when accepted.
async fn post(api: &crate::api::Api, body: Vec<u8>) -> (Option<u16>, Option<String>) {
    let r =
        tokio::time::timeout(CASE_BOUND, api.send(api.http.post(format!("{}/v1/api/job", api.url)).body(body))).await;
    match r {
        Ok(Ok((code, v))) => (Some(code), (code == 200).then(|| v["_id"].as_str().map(str::to_string)).flatten()),
        Ok(Err(_)) => (None, None),
        Err(_) => {
            api.codes.add("timeout");
            (None, None)
        }
    }
}

/// An answer is fine when it is 2xx, 4xx or 503.
fn judge(problems: &mut Vec<String>, label: &str, code: Option<u16>, body: &[u8]) {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(120)]).escape_debug().to_string();
    match code {
        None => problems.push(format!("{label}: no answer (hang or dropped) for {}", shown())),
        Some(c) if (200..300).contains(&c) || (400..500).contains(&c) || c == 503 => {}
        Some(c) => problems.push(format!("{label}: answered {c} for {}", shown())),
    }
}

/// Odd values for a field.
fn odd_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..14) {
        0 => Value::Null,
        1 => json!(rng.gen::<i64>()),
        2 => json!(rng.gen::<f64>() * 1e300),
        3 => json!(rng.gen::<bool>()),
        4 => json!([]),
        5 => json!({}),
        6 => json!("x".repeat(rng.gen_range(1_000..200_000))),
        7 => json!("\u{0}\u{1}\u{7f}\u{202e}\u{feff}é漢字🙂"),
        8 => json!(""),
        9 => json!(["sh", "-c", "\u{0}"]),
        10 => json!("../../../etc/passwd"),
        11 => json!(vec!["a"; rng.gen_range(1..5_000)]),
        12 => json!({"nested": {"deeper": [1, {"x": null}]}}),
        _ => json!(" \t\r\n"),
    }
}

/// A job body: a valid one, mutated.
fn json_case(rng: &mut StdRng, image: &str, wrap: &str, i: usize) -> Vec<u8> {
    let mut job = json!({
        "qname": format!("fuzz-json-{}", i % 8),
        "container_image": image,
        "run": ["echo", "fuzz"],
        "wrap_secret_id": wrap,
    });
    let fields = [
        "qname",
        "container_image",
        "run",
        "wrap_secret_id",
        "content",
        "image_pull_policy",
        "env_vault_path",
        "secret_refs",
        "secret_file_type",
        "cont_on_warnings",
        "entrypoint",
        "working_directory",
        "tty",
        "payload",
        "cubby_token",
        "cubby_path",
        "resources",
        "unknown_field_xyz",
    ];
    match i % 10 {
        // Raw bytes rather than JSON.
        0 => {
            let kinds: [&[u8]; 8] = [
                b"",
                b"{",
                b"null",
                b"[]",
                b"{\"qname\": \"a\", \"qname\": \"b\"}",
                b"\xff\xfe\x00garbage",
                b"{\"run\": [\"\xc3\x28\"]}",
                b"{\"qname\": \"\\ud800\"}",
            ];
            kinds[rng.gen_range(0..kinds.len())].to_vec()
        }
        // Deep nesting.
        1 => {
            let depth = rng.gen_range(100..20_000);
            let mut s = String::from("{\"qname\":");
            s.push_str(&"[".repeat(depth));
            s.push_str(&"]".repeat(depth));
            s.push('}');
            s.into_bytes()
        }
        // Truncated valid JSON.
        2 => {
            let s = job.to_string();
            let cut = rng.gen_range(0..s.len());
            s.as_bytes()[..cut].to_vec()
        }
        // A field removed.
        3 => {
            let k = fields[rng.gen_range(0..4)];
            job.as_object_mut().map(|o| o.remove(k));
            job.to_string().into_bytes()
        }
        // Several fields with odd values.
        _ => {
            for _ in 0..rng.gen_range(1..4) {
                let k = fields[rng.gen_range(0..fields.len())];
                job[k] = odd_value(rng);
            }
            job.to_string().into_bytes()
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = std::io::Write::write_all(&mut e, bytes);
    e.finish().unwrap_or_default()
}

/// A tar with one entry of this type and (raw, unchecked) name.
fn tar_entry(name: &[u8], kind: tar::EntryType, link: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    {
        let raw = h.as_old_mut();
        let n = name.len().min(raw.name.len());
        raw.name[..n].copy_from_slice(&name[..n]);
        if let Some(l) = link {
            let n = l.len().min(raw.linkname.len());
            raw.linkname[..n].copy_from_slice(&l[..n]);
        }
    }
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_entry_type(kind);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    let _ = b.append(&h, data);
    b.into_inner().unwrap_or_default()
}

/// A content value: broken or hostile.
fn content_case(rng: &mut StdRng, i: usize) -> String {
    let noise: Vec<u8> = (0..rng.gen_range(1..4096)).map(|_| rng.gen()).collect();
    match i % 10 {
        0 => format!("targz,{}", b64(&noise)),
        1 => format!("targz,{}", b64(&gz(&noise))),
        2 => format!("targz,{}", b64(&gz(&tar_entry(b"../../../../tmp/escaped", tar::EntryType::Regular, None, b"x")))),
        3 => format!("targz,{}", b64(&gz(&tar_entry(b"/etc/evil", tar::EntryType::Regular, None, b"x")))),
        4 => format!("targz,{}", b64(&gz(&tar_entry(b"./link", tar::EntryType::Symlink, Some(b"/etc/shadow"), b"")))),
        5 => format!("targz,{}", b64(&gz(&tar_entry(b"./hard", tar::EntryType::Link, Some(b"../../etc/passwd"), b"")))),
        6 => {
            // A PAX header claiming a huge path.
            let pax = format!("{} path={}\n", 10_000_000, "a".repeat(100));
            format!("targz,{}", b64(&gz(&tar_entry(b"././@PaxHeader", tar::EntryType::XHeader, None, pax.as_bytes()))))
        }
        7 => "targz,!!!not base64!!!".to_string(),
        8 => format!("zip,{}", b64(&noise)),
        _ => {
            // A valid tar whose gzip stream is cut in the middle.
            let full = gz(&tar_entry(b"./run.sh", tar::EntryType::Regular, None, &noise));
            let cut = rng.gen_range(1..full.len().max(2));
            format!("targz,{}", b64(&full[..cut]))
        }
    }
}

/// A raw request head (and body); whether it is a complete request that deserves an answer.
/// Complete requests ask for `Connection: close`, so the answer ends the connection.
fn head_case(rng: &mut StdRng, wrap: &str, i: usize) -> (Vec<u8>, bool) {
    let (mut req, complete) = head_case_inner(rng, wrap, i);
    if complete {
        if let Some(at) = req.windows(9).position(|w| w == b"Host: x\r\n") {
            req.splice(at + 9..at + 9, b"Connection: close\r\n".iter().copied());
        }
    }
    (req, complete)
}

fn head_case_inner(rng: &mut StdRng, wrap: &str, i: usize) -> (Vec<u8>, bool) {
    let body = json!({"qname": "fuzz-head", "container_image": "none:latest", "run": ["true"], "wrap_secret_id": wrap})
        .to_string();
    let n = body.len();
    let r = |s: String| s.into_bytes();
    match i % 12 {
        0 => (r(format!("GET /v1/api/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(rng.gen_range(10_000..300_000)))), true),
        1 => {
            let many: String = (0..rng.gen_range(200..3_000)).map(|k| format!("X-H{k}: v\r\n")).collect();
            (r(format!("GET /v1/api/health HTTP/1.1\r\nHost: x\r\n{many}\r\n")), true)
        }
        2 => (r(format!("POST /v1/api/job HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nContent-Length: {}\r\n\r\n{body}", n + 5)), true),
        3 => (r(format!("POST /v1/api/job HTTP/1.1\r\nHost: x\r\nContent-Length: -{n}\r\n\r\n{body}")), true),
        4 => (r(format!("POST /v1/api/job HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{body}")), true),
        5 => (r(format!("POST /v1/api/job HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n")), true),
        6 => (r(format!("POST /v1/api/job HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", n)), true),
        7 => (r(format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "p".repeat(rng.gen_range(5_000..100_000)))), true),
        8 => (r("BREW /v1/api/job HTCPCP/1.0\r\nHost: x\r\n\r\n".to_string()), true),
        9 => (b"GET /v1/api/health HTTP/1.1\r\nHost: x\r\nX-\x00Bad\xff: \x01\x02\r\n\r\n".to_vec(), true),
        10 => (r(format!("GET /v1/api/job/{} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {}\r\n\r\n", "%00%ff..%2f", "t".repeat(rng.gen_range(1..20_000)))), true),
        // A body shorter than its declared length, then the write side closed: no complete
        // request, so closing without an answer is allowed.
        _ => (r(format!("POST /v1/api/job HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", n + 100)), false),
    }
}

/// Sends raw bytes on a fresh connection (closing the write side after an incomplete
/// request, so the server sees its end), reads the answer: its status code, or `None` when
/// the server closed without one.
async fn raw(addr: &str, req: &[u8], complete: bool) -> anyhow::Result<Option<u16>> {
    let mut s = TcpStream::connect(addr).await?;
    // The server may answer (431, 400) and close before reading everything: a failed write
    // is then fine, the answer is what counts.
    let _ = s.write_all(req).await;
    if !complete {
        let _ = s.shutdown().await;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                buf.extend_from_slice(&chunk[..k]);
                if buf.len() > 64 * 1024 {
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&buf);
    Ok(text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)).and_then(|c| c.parse().ok()))
}
