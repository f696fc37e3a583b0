//! OpenTelemetry trace export: the real `gostint` binary, on the real OpenBao and Docker
//! engine, sends its spans over OTLP/HTTP protobuf to a collector in the test (axum on
//! 127.0.0.1:0 decoding with the `opentelemetry-proto` types). No real collector can be
//! installed on this machine; this one checks what a collector gets: the bytes on the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

use crate::support::{spawn_app_with, Node};

/// What the collector was sent: each export's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A collector accepting `POST /v1/traces`, on a thread and runtime of its own (the test
/// blocks its own while it waits for the node to exit); its base URL and what it received.
fn collector() -> (String, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body.to_vec()));
                ([("content-type", "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
            }
        }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await
        })
    });
    (url, got)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

#[tokio::test]
async fn spans_reach_an_otlp_collector_with_route_status_and_request_id_and_never_a_token() {
    let Some(helper) = spawn_app_with(&[]).await else { return };
    let (collector_url, got) = collector();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/otlp.db", dir.path().display());
    let node = Node::start(
        &helper,
        &db,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url.as_str()),
            ("OTEL_SERVICE_NAME", "gostint-otlp-test"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k%3Dv"),
            // The SDK's batch delay, far beyond the test: every span arrives through the
            // final flush on SIGTERM, or not at all.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    )
    .await;
    let token = helper.req.token(None, &["default"]).await;
    let http = reqwest::Client::new();

    let health = http
        .get(format!("{}/v1/api/health", node.url))
        .header("X-Request-Id", "otlp-health-1")
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["x-request-id"], "otlp-health-1");

    let wrap = helper.req.wrapped_secret_id().await;
    let job = json!({"qname": "otlp", "container_image": helper.svc.image, "run": ["echo", "traced"], "wrap_secret_id": wrap});
    let submit = http
        .post(format!("{}/v1/api/job", node.url))
        .header("X-Request-Id", "otlp-submit-1")
        .header("X-Auth-Token", &token)
        .body(job.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(submit.status(), 200);
    let id = submit.json::<serde_json::Value>().await.unwrap()["_id"].as_str().unwrap().to_string();
    node.wait_status(&token, &id, "success").await;
    let missing = http.get(format!("{}/v1/api/job/{id}", node.url)).send().await.unwrap();
    assert_eq!(missing.status(), 400, "no token: refused");
    let answered_id = missing.headers()["x-request-id"].to_str().unwrap().to_string();

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(got.lock().unwrap().is_empty(), "nothing exported before the batch delay or the shutdown");
    node.signal("-TERM");
    let (ok, _) = node.wait_exit(Duration::from_secs(30));
    assert!(ok, "clean exit");

    let received = got.lock().unwrap().clone();
    assert!(!received.is_empty(), "the final flush exported the spans");
    let mut spans: Vec<Span> = Vec::new();
    for (headers, body) in &received {
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers["x-collector-key"], "k=v", "OTEL_EXPORTER_OTLP_HEADERS sent, percent-decoded");
        // No token anywhere in what left the node: not the caller's, not the wrapping token.
        for secret in [token.as_str(), wrap.as_str()] {
            assert!(!body.windows(secret.len()).any(|w| w == secret.as_bytes()), "a token reached the collector");
        }
        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("valid OTLP protobuf");
        for rs in req.resource_spans {
            let resource = rs.resource.expect("a resource");
            assert_eq!(text(&resource.attributes, "service.name"), Some("gostint-otlp-test"));
            spans.extend(rs.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    let by_request = |rid: &str| {
        spans
            .iter()
            .find(|s| s.kind == SpanKind::Server as i32 && text(&s.attributes, "request_id") == Some(rid))
            .unwrap_or_else(|| panic!("no server span for request {rid} in {spans:#?}"))
    };
    let h = by_request("otlp-health-1");
    assert_eq!(h.name, "GET /v1/api/health");
    assert_eq!(text(&h.attributes, "http.request.method"), Some("GET"));
    assert_eq!(text(&h.attributes, "http.route"), Some("/v1/api/health"));
    assert_eq!(int(&h.attributes, "http.response.status_code"), Some(200));
    // The access log's span (with its request id) is the server span's child.
    assert!(
        spans.iter().any(|s| s.name == "request"
            && s.parent_span_id == h.span_id
            && s.trace_id == h.trace_id
            && text(&s.attributes, "request_id") == Some("otlp-health-1")),
        "the request span is a child of the server span"
    );
    let p = by_request("otlp-submit-1");
    assert_eq!(p.name, "POST /v1/api/job");
    assert_eq!(text(&p.attributes, "http.route"), Some("/v1/api/job"));
    assert_eq!(int(&p.attributes, "http.response.status_code"), Some(200));
    // A generated request id is the one answered; the route is the pattern, not the id.
    let m = by_request(&answered_id);
    assert_eq!(text(&m.attributes, "http.route"), Some("/v1/api/job/{jobID}"));
    assert_eq!(text(&m.attributes, "url.path"), Some(format!("/v1/api/job/{id}").as_str()));
    assert_eq!(int(&m.attributes, "http.response.status_code"), Some(400));
    // The worker's job span.
    assert!(
        spans.iter().any(|s| s.name == "job" && text(&s.attributes, "job_id") == Some(id.as_str())),
        "a job span for {id}"
    );
    helper.stop().await;
}
