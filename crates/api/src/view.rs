//! The job view of `GET /v1/api/job/{id}` (docs/design.md §2.6), keys in the original's order.

use gostint_core::JobRecord;
use serde::Serialize;

/// One job as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct JobView {
    _id: String,
    status: &'static str,
    node_uuid: String,
    qname: String,
    container_image: String,
    submitted: String,
    started: String,
    ended: String,
    output: String,
    stderr: String,
    return_code: i64,
    tty: bool,
    container_id: String,
    kill_requested: bool,
    /// docs/design.md §10: the job's tenant (job AppRole name), the last key.
    tenant: String,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        let image = if j.container_image.is_empty() { j.definition.container_image.clone() } else { j.container_image };
        Self {
            _id: j.id.to_string(),
            status: j.status.as_str(),
            node_uuid: j.node_uuid,
            qname: j.qname,
            container_image: image,
            submitted: j.submitted.to_rfc3339(),
            started: j.started.to_rfc3339(),
            ended: j.ended.to_rfc3339(),
            output: j.output,
            stderr: j.stderr,
            return_code: j.return_code,
            tty: j.tty || j.definition.tty,
            container_id: j.container_id,
            kill_requested: j.kill_requested,
            tenant: j.tenant,
        }
    }
}
