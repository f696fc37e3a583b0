//! OpenTelemetry trace export over OTLP/HTTP protobuf, off unless an endpoint is set
//! (`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`; README, "Tracing (OpenTelemetry)").
//!
//! The `tracing` spans gostint already makes become OTLP spans through a
//! `tracing-opentelemetry` layer: the access log's `request` span (request id) and the
//! worker's `job` span (job id, queue), their log lines as span events. With export on, each
//! HTTP request also gets a server span of its own ([`http_spans`]: method, route, status,
//! request id), which only the exporter sees: the JSON log is the same with export on or off.
//! A batch processor on the tokio runtime sends the spans; [`OtlpExport::shutdown`] sends
//! what is still queued when the node stops. Unset, none of this exists: no layer, no task,
//! no client.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use gostint_config::OtlpSettings;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use secrecy::ExposeSecret;
use tracing::field::Empty;
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;

/// The target of the spans only the exporter sees; the JSON log leaves it out.
pub const EXPORT_ONLY_TARGET: &str = "gostint::otel";

/// A running exporter: the tracer provider and its batch task.
pub struct OtlpExport {
    provider: SdkTracerProvider,
    timeout: Duration,
    endpoint: String,
}

impl OtlpExport {
    /// Builds the exporter (no connection yet) and starts its batch task on the current
    /// tokio runtime.
    ///
    /// # Errors
    /// The endpoint or a header is refused by the HTTP client; the message names the
    /// variable (never a header value).
    pub fn start(s: &OtlpSettings) -> anyhow::Result<Self> {
        // The workspace's reqwest (rustls, native roots): one HTTP stack for Vault, clients
        // and the exporter.
        let client = reqwest::Client::builder()
            .timeout(s.timeout)
            .build()
            .with_context(|| format!("{}: building the OTLP HTTP client", s.endpoint_var))?;
        let mut headers = HashMap::new();
        for (k, v) in &s.headers {
            if reqwest::header::HeaderValue::from_str(v.expose_secret()).is_err() {
                anyhow::bail!("OTEL_EXPORTER_OTLP_[TRACES_]HEADERS: header {k} has a value HTTP cannot carry");
            }
            headers.insert(k.clone(), v.expose_secret().to_string());
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(s.endpoint.clone())
            .with_timeout(s.timeout)
            .with_headers(headers)
            .build()
            .with_context(|| format!("{}: building the OTLP exporter for {}", s.endpoint_var, s.endpoint))?;
        let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(Resource::builder().with_service_name(s.service_name.clone()).build())
            .build();
        Ok(Self { provider, timeout: s.timeout, endpoint: s.endpoint.clone() })
    }

    /// The `tracing` layer that turns spans into OTLP spans.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("gostint"))
            // Source paths and thread names would only add bytes to each span.
            .with_location(false)
            .with_threads(false)
    }

    /// Exports the spans still queued and stops the batch task. Bounded by the export
    /// timeout plus 2 s, so an unreachable collector cannot hold the node's exit.
    pub async fn shutdown(self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let provider = self.provider;
        // The SDK's shutdown blocks until the batch task (on the runtime) has exported: on a
        // thread of its own, never on a runtime worker.
        let spawned = std::thread::Builder::new().name("otlp-shutdown".into()).spawn(move || {
            let _ = tx.send(provider.shutdown());
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "OTLP export: could not start the final flush");
            return;
        }
        match tokio::time::timeout(self.timeout + Duration::from_secs(2), rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(endpoint = %self.endpoint, error = %e, "OTLP export: the final flush failed")
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(endpoint = %self.endpoint, "OTLP export: the final flush did not finish in time")
            }
        }
    }
}

/// Each request (of the router's routes, and its fallback) in a server span: `otel.name`
/// `METHOD /route`, `http.request.method`, `http.route` (the matched pattern, never the
/// path's ids), `url.path`, `http.response.status_code`, `request_id` (the `X-Request-Id`
/// answered) and an error status for 5xx. Outermost layer: the access log's `request` span
/// is its child, and 503/413 answers of the protection layer are in it. No header, query
/// nor body goes in: tokens never reach the exporter.
pub fn http_spans(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(http_span))
}

async fn http_span(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let name = match &route {
        Some(r) => format!("{method} {r}"),
        None => method.clone(),
    };
    let span = tracing::info_span!(
        target: EXPORT_ONLY_TARGET,
        "http",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        http.route = Empty,
        url.path = %req.uri().path(),
        http.response.status_code = Empty,
        request_id = Empty,
        otel.status_code = Empty,
    );
    if let Some(r) = &route {
        span.record("http.route", r.as_str());
    }
    let resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = resp.status().as_u16();
    span.record("http.response.status_code", i64::from(status));
    if let Some(id) = resp.headers().get(gostint_api::ops::REQUEST_ID).and_then(|v| v.to_str().ok()) {
        span.record("request_id", id);
    }
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    resp
}
