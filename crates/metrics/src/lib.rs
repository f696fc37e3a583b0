//! gostint's Prometheus metrics, one registry per process, shared by the API (request
//! histogram, cubbyhole alerts) and the worker (job outcomes, unwrap alerts, running jobs).
//!
//! The `prometheus` crate (tikv) is the well-kept reference implementation of the text
//! exposition format; it keeps label sets bounded only if callers pass bounded values, so
//! `path` is always a route template, never a raw path.
#![warn(missing_docs)]

pub use prometheus::{IntCounter, IntGauge};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric gostint exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `gostint_request_duration_seconds{code,method,path}`, default buckets, const label
    /// `service="gostint"` (the original's histogram, with route templates as `path`).
    pub request_duration: HistogramVec,
    /// `gostint_jobs_finished_total{status}`.
    pub jobs_finished: IntCounterVec,
    /// `gostint_interception_alerts_total{kind}`: `cubbyhole` (POST could not read the
    /// cubbyhole: someone may have spent the token) or `unwrap` (the wrapped secret id was
    /// already used or invalid). An operator alerts on any increase.
    pub interception_alerts: IntCounterVec,
    /// `gostint_jobs_running`: jobs this node runs now.
    pub jobs_running: IntGauge,
    /// `gostint_tenant_queued_jobs{tenant}`: queued jobs per tenant over the whole store,
    /// refreshed at each scrape. Tenant labels only ever come from the configuration
    /// (`GOSTINT_APPROLES`), so the label set is bounded.
    pub tenant_queued: IntGaugeVec,
    /// `gostint_tenant_jobs_finished_total{tenant,status}`: jobs this node finished.
    pub tenant_jobs_finished: IntCounterVec,
    /// `gostint_tenant_job_run_seconds{tenant}`: claim to end, on this node.
    pub tenant_run_seconds: HistogramVec,
    /// `gostint_tenant_queue_wait_seconds{tenant}`: submit to claim.
    pub tenant_queue_wait_seconds: HistogramVec,
    /// `gostint_tenant_quota_refusals_total{tenant}`: POSTs refused with 429.
    pub tenant_quota_refusals: IntCounterVec,
    /// `gostint_http_connections_open`: client connections this node holds now.
    pub connections_open: IntGauge,
    /// `gostint_http_accept_errors_total`: failed accepts (out of descriptors, …).
    pub accept_errors: IntCounter,
    /// `gostint_http_requests_refused_total`: requests answered 503 for the concurrent-request cap.
    pub requests_refused: IntCounter,
    /// `gostint_jobs{status}`: jobs in the store by status (all nodes), refreshed at each
    /// scrape; `status="queued"` is the queue depth.
    pub jobs_by_status: IntGaugeVec,
    /// `gostint_job_run_seconds`: from container start to the job's end, jobs of this node.
    pub job_run_seconds: Histogram,
    /// `gostint_job_queue_wait_seconds`: from submission to the claim by this node.
    pub job_queue_wait_seconds: Histogram,
    /// `gostint_port_errors_total{port}`: failed calls to `vault`, `docker` or `store`.
    pub port_errors: IntCounterVec,
    /// `gostint_port_call_seconds{port}`: duration of calls to `vault`, `docker`, `store`.
    pub port_call_seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let request_duration = HistogramVec::new(
            HistogramOpts::new("gostint_request_duration_seconds", "Duration of HTTP requests in seconds.")
                .const_label("service", "gostint"),
            &["code", "method", "path"],
        )
        .expect("static metric definition is valid");
        let jobs_finished = IntCounterVec::new(
            Opts::new("gostint_jobs_finished_total", "Jobs this node finished, by final status.")
                .const_label("service", "gostint"),
            &["status"],
        )
        .expect("static metric definition is valid");
        let interception_alerts = IntCounterVec::new(
            Opts::new(
                "gostint_interception_alerts_total",
                "Possible interception of a job request: unreadable cubbyhole or a secret-id not wrapped by an accepted AppRole at submit (kind creation_path), an unusable wrapped secret id or a failed AppRole login at run.",
            )
            .const_label("service", "gostint"),
            &["kind"],
        )
        .expect("static metric definition is valid");
        let jobs_running = IntGauge::with_opts(
            Opts::new("gostint_jobs_running", "Jobs running on this node.").const_label("service", "gostint"),
        )
        .expect("static metric definition is valid");
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("service", "gostint");
        let tenant_queued =
            IntGaugeVec::new(opts("gostint_tenant_queued_jobs", "Queued jobs per tenant (whole store)."), &["tenant"])
                .expect("static metric definition is valid");
        let tenant_jobs_finished = IntCounterVec::new(
            opts("gostint_tenant_jobs_finished_total", "Jobs this node finished, by tenant and final status."),
            &["tenant", "status"],
        )
        .expect("static metric definition is valid");
        let hist = |name: &str, help: &str| {
            HistogramVec::new(
                HistogramOpts::new(name, help)
                    .const_label("service", "gostint")
                    .buckets(vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
                &["tenant"],
            )
            .expect("static metric definition is valid")
        };
        let tenant_run_seconds = hist("gostint_tenant_job_run_seconds", "Job run time (claim to end) per tenant.");
        let tenant_queue_wait_seconds =
            hist("gostint_tenant_queue_wait_seconds", "Job queue wait (submit to claim) per tenant.");
        let tenant_quota_refusals = IntCounterVec::new(
            opts(
                "gostint_tenant_quota_refusals_total",
                "Submissions refused because the tenant's queue quota was full.",
            ),
            &["tenant"],
        )
        .expect("static metric definition is valid");
        let connections_open = IntGauge::with_opts(
            Opts::new("gostint_http_connections_open", "Client connections open on this node.")
                .const_label("service", "gostint"),
        )
        .expect("static metric definition is valid");
        let accept_errors = IntCounter::with_opts(
            Opts::new(
                "gostint_http_accept_errors_total",
                "Failed accepts of client connections (e.g. out of file descriptors).",
            )
            .const_label("service", "gostint"),
        )
        .expect("static metric definition is valid");
        let requests_refused = IntCounter::with_opts(
            Opts::new(
                "gostint_http_requests_refused_total",
                "Requests answered 503 because too many were being served at once.",
            )
            .const_label("service", "gostint"),
        )
        .expect("static metric definition is valid");
        let jobs_by_status = IntGaugeVec::new(
            Opts::new("gostint_jobs", "Jobs in the store by status (every node); queued is the queue depth.")
                .const_label("service", "gostint"),
            &["status"],
        )
        .expect("static metric definition is valid");
        let job_buckets = vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0];
        let job_run_seconds = Histogram::with_opts(
            HistogramOpts::new("gostint_job_run_seconds", "Job run time on this node, container start to end.")
                .const_label("service", "gostint")
                .buckets(job_buckets.clone()),
        )
        .expect("static metric definition is valid");
        let job_queue_wait_seconds = Histogram::with_opts(
            HistogramOpts::new("gostint_job_queue_wait_seconds", "Time from submission to claim by this node.")
                .const_label("service", "gostint")
                .buckets(job_buckets),
        )
        .expect("static metric definition is valid");
        let port_errors = IntCounterVec::new(
            Opts::new("gostint_port_errors_total", "Failed calls to Vault, Docker or the job store.")
                .const_label("service", "gostint"),
            &["port"],
        )
        .expect("static metric definition is valid");
        let port_call_seconds = HistogramVec::new(
            HistogramOpts::new("gostint_port_call_seconds", "Duration of calls to Vault, Docker or the job store.")
                .const_label("service", "gostint"),
            &["port"],
        )
        .expect("static metric definition is valid");
        let build_info = IntGaugeVec::new(
            Opts::new("gostint_build_info", "Always 1; the labels name the running build.")
                .const_label("service", "gostint"),
            &["version", "commit"],
        )
        .expect("static metric definition is valid");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), build_commit()]).set(1);
        for c in [
            Box::new(request_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(jobs_finished.clone()),
            Box::new(interception_alerts.clone()),
            Box::new(jobs_running.clone()),
            Box::new(tenant_queued.clone()),
            Box::new(tenant_jobs_finished.clone()),
            Box::new(tenant_run_seconds.clone()),
            Box::new(tenant_queue_wait_seconds.clone()),
            Box::new(tenant_quota_refusals.clone()),
            Box::new(connections_open.clone()),
            Box::new(accept_errors.clone()),
            Box::new(requests_refused.clone()),
            Box::new(jobs_by_status.clone()),
            Box::new(job_run_seconds.clone()),
            Box::new(job_queue_wait_seconds.clone()),
            Box::new(port_errors.clone()),
            Box::new(port_call_seconds.clone()),
            Box::new(build_info),
        ] {
            registry.register(c).expect("each metric is registered once");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("the process collector is registered once");
        Self {
            registry,
            request_duration,
            jobs_finished,
            interception_alerts,
            jobs_running,
            tenant_queued,
            tenant_jobs_finished,
            tenant_run_seconds,
            tenant_queue_wait_seconds,
            tenant_quota_refusals,
            connections_open,
            accept_errors,
            requests_refused,
            jobs_by_status,
            job_run_seconds,
            job_queue_wait_seconds,
            port_errors,
            port_call_seconds,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("encoding into memory cannot fail");
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// The commit this binary was built from (see [`gostint_core::BUILD_COMMIT`]).
pub fn build_commit() -> &'static str {
    gostint_core::BUILD_COMMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_request_histogram_with_its_labels() {
        let m = Metrics::new();
        m.request_duration.with_label_values(&["200", "GET", "/v1/api/job/{jobID}"]).observe(0.01);
        m.interception_alerts.with_label_values(&["cubbyhole"]).inc();
        let text = m.render();
        assert!(text.contains(
            r#"gostint_request_duration_seconds_bucket{code="200",method="GET",path="/v1/api/job/{jobID}",service="gostint",le="0.005"} 0"#
        ), "{text}");
        assert!(text.contains(r#"gostint_interception_alerts_total{kind="cubbyhole",service="gostint"} 1"#), "{text}");
    }

    #[test]
    fn renders_build_info_and_the_process_metrics() {
        let m = Metrics::new();
        let text = m.render();
        let line = format!(
            r#"gostint_build_info{{commit="{}",service="gostint",version="{}"}} 1"#,
            build_commit(),
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&line), "{text}");
        assert!(!build_commit().is_empty());
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
