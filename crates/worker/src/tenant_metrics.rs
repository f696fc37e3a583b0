//! Per-tenant job metrics (docs/design.md §10). Labels only for tenants in the configuration, so the
//! label set stays bounded whatever the store holds.

use gostint_core::{JobRecord, JobStatus, Timestamp};

use crate::pipeline::{tenant_of, PipelineConfig, Ports};

/// The configured tenant name of `job`, if any.
fn label(cfg: &PipelineConfig, job: &JobRecord) -> Option<String> {
    tenant_of(cfg, job).map(|t| t.name)
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to.millis().saturating_sub(from.millis())).max(0) as f64 / 1000.0
}

/// At claim: the queue wait.
pub(crate) fn claimed(ports: &Ports, cfg: &PipelineConfig, job: &JobRecord) {
    if let Some(t) = label(cfg, job) {
        ports.metrics.tenant_queue_wait_seconds.with_label_values(&[&t]).observe(seconds(job.submitted, job.started));
    }
}

/// At the end: the final status and the run time.
pub(crate) fn finished(ports: &Ports, cfg: &PipelineConfig, job: &JobRecord, status: JobStatus) {
    if let Some(t) = label(cfg, job) {
        ports.metrics.tenant_jobs_finished.with_label_values(&[&t, status.as_str()]).inc();
        ports.metrics.tenant_run_seconds.with_label_values(&[&t]).observe(seconds(job.started, Timestamp::now()));
    }
}
