//! The job document: what a requestor sends, what the store keeps, what a node runs.

use serde::{Deserialize, Deserializer, Serialize};

use crate::{JobId, JobStatus, Owner, Resources, Timestamp};

/// Go's decoder turns `null` into the zero value; serde would refuse it. Keep Go's
/// behaviour so existing requestors that send `"run": null` still work.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The fields that define a job, as they come in the POST body (the "outer" fields) or in
/// a decrypted payload. Keys outside docs/design.md §2.5's allow-list are ignored, so a caller
/// cannot set server fields such as `status` or `container_id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobDefinition {
    /// Serialisation queue (lower-cased on submit).
    #[serde(deserialize_with = "null_as_default")]
    pub qname: String,
    /// Image reference.
    #[serde(deserialize_with = "null_as_default")]
    pub container_image: String,
    /// `IfNotPresent` or `Always`.
    #[serde(deserialize_with = "null_as_default")]
    pub image_pull_policy: String,
    /// `targz,<base64>`.
    #[serde(deserialize_with = "null_as_default")]
    pub content: String,
    /// Docker `Entrypoint`.
    #[serde(deserialize_with = "null_as_default")]
    pub entrypoint: Vec<String>,
    /// Docker `Cmd`.
    #[serde(deserialize_with = "null_as_default")]
    pub run: Vec<String>,
    /// Docker `WorkingDir`.
    #[serde(deserialize_with = "null_as_default")]
    pub working_directory: String,
    /// `NAME=value` entries.
    #[serde(deserialize_with = "null_as_default")]
    pub env_vars: Vec<String>,
    /// `<var>@<vault path>.<key>` entries.
    #[serde(deserialize_with = "null_as_default")]
    pub secret_refs: Vec<String>,
    /// `yaml` or `json`.
    #[serde(deserialize_with = "null_as_default")]
    pub secret_file_type: String,
    /// Carry on when Vault answers a secret read with warnings.
    #[serde(deserialize_with = "null_as_default")]
    pub cont_on_warnings: bool,
    /// Docker `Tty`: one combined output stream.
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    /// **[new]** The job's own pids/memory/CPU request (docs/design.md §11), capped by the node's
    /// `GOSTINT_JOB_MAX_*`.
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
}

/// The body of `POST /v1/api/job`: the job fields plus the secure-submission fields.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct SubmitRequest {
    /// Job fields given in the clear (mode A), or fallbacks in modes B and C.
    #[serde(flatten)]
    pub job: JobDefinition,
    /// Single-use wrapping token holding a secret id of the job AppRole.
    #[serde(deserialize_with = "null_as_default")]
    pub wrap_secret_id: String,
    /// Mode B: a token whose cubbyhole holds the encrypted payload.
    #[serde(deserialize_with = "null_as_default")]
    pub cubby_token: String,
    /// Mode B: where in that cubbyhole.
    #[serde(deserialize_with = "null_as_default")]
    pub cubby_path: String,
    /// Mode C: transit ciphertext of base64(JSON(job definition)).
    #[serde(deserialize_with = "null_as_default")]
    pub payload: String,
}

/// What a submission must fix before it can be stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    /// No wrapping token.
    #[error("AppRole SecretID's Wrapping Token must be present in the job request")]
    MissingWrapSecretId,
    /// Half of the cubbyhole pair.
    #[error("cubby_token and cubby_path must be given together")]
    CubbyPairIncomplete,
    /// A field out of its bounds ([`crate::limits`]).
    #[error(transparent)]
    OutOfBounds(#[from] crate::limits::FieldOutOfBounds),
}

impl SubmitRequest {
    /// Checks what can be checked at submission (docs/design.md §2.5: nothing else is).
    ///
    /// # Errors
    /// The first rule the request breaks.
    pub fn validate(&self) -> Result<(), SubmitError> {
        if self.wrap_secret_id.is_empty() {
            return Err(SubmitError::MissingWrapSecretId);
        }
        if self.cubby_token.is_empty() != self.cubby_path.is_empty() {
            return Err(SubmitError::CubbyPairIncomplete);
        }
        use crate::limits::{FieldOutOfBounds, MAX_TOKEN_FIELD};
        for (field, value) in [
            ("wrap_secret_id", &self.wrap_secret_id),
            ("cubby_token", &self.cubby_token),
            ("cubby_path", &self.cubby_path),
        ] {
            if value.len() > MAX_TOKEN_FIELD {
                let problem = format!("too long ({} bytes, at most {MAX_TOKEN_FIELD})", value.len());
                return Err(FieldOutOfBounds { field, problem }.into());
            }
        }
        crate::limits::check_definition(&self.job)?;
        Ok(())
    }
}

/// A job ready to be stored as `queued`.
#[derive(Clone)]
pub struct NewJob {
    /// Its id.
    pub id: JobId,
    /// Lower-cased queue name.
    pub qname: String,
    /// Who submitted it.
    pub owner: Owner,
    /// When.
    pub submitted: Timestamp,
    /// The outer job fields (`qname` is the field above).
    pub definition: JobDefinition,
    /// The wrapping token, blanked once used.
    pub wrap_secret_id: String,
    /// Transit ciphertext, never the plaintext; blanked once the job ends.
    pub payload: Option<String>,
    /// The tenant (job AppRole name, docs/design.md §10) whose secret-id came with the job; with
    /// `qname` the queue key. `""` in a single-tenant set-up without `GOSTINT_ROLENAME`.
    pub tenant: String,
    /// When the wrapping token expires, as Vault's `sys/wrapping/lookup` said at submission
    /// (`ZERO` when unknown), so that a token that lapsed while the job was queued is told
    /// apart from an interception.
    pub wrap_expires: Timestamp,
}

/// The result of a run, written in one go by [`crate::JobStore::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// A terminal status.
    pub status: JobStatus,
    /// stdout (or the combined tty stream), or the failure message.
    pub output: String,
    /// stderr when not tty.
    pub stderr: String,
    /// The container's exit code (0 when it never ran).
    pub return_code: i64,
}

impl Outcome {
    /// A job that ended with a message and no container result.
    pub fn message(status: JobStatus, message: impl Into<String>) -> Self {
        Self { status, output: message.into(), stderr: String::new(), return_code: 0 }
    }
}

/// A stored job as the API shows it and the worker runs it.
#[derive(Clone)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Current status.
    pub status: JobStatus,
    /// The claiming node, `""` until claimed.
    pub node_uuid: String,
    /// Queue name.
    pub qname: String,
    /// Who submitted it.
    pub owner: Owner,
    /// Image as resolved at run time, or as submitted.
    pub container_image: String,
    /// Submit time.
    pub submitted: Timestamp,
    /// Claim time.
    pub started: Timestamp,
    /// End time.
    pub ended: Timestamp,
    /// stdout, combined tty output, or failure message.
    pub output: String,
    /// stderr.
    pub stderr: String,
    /// Exit code.
    pub return_code: i64,
    /// Whether the job ran with a tty.
    pub tty: bool,
    /// The container, once created.
    pub container_id: String,
    /// A kill was asked for.
    pub kill_requested: bool,
    /// The outer job fields.
    pub definition: JobDefinition,
    /// The wrapping token until used.
    pub wrap_secret_id: String,
    /// Transit ciphertext until the job ends.
    pub payload: Option<String>,
    /// The tenant (job AppRole name, docs/design.md §10); with `qname` the queue key.
    pub tenant: String,
    /// When the wrapping token expires (`ZERO` when unknown); see [`NewJob::wrap_expires`].
    pub wrap_expires: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_fields_in_a_request_are_ignored_and_nulls_are_defaults() {
        let req: SubmitRequest = serde_json::from_str(
            r#"{"qname":"Q","wrap_secret_id":"w","status":"success","container_id":"x","run":null,"tty":true}"#,
        )
        .unwrap();
        assert_eq!(req.job.qname, "Q");
        assert!(req.job.run.is_empty());
        assert!(req.job.tty);
        assert!(req.validate().is_ok());
    }

    #[test]
    fn wrong_types_are_decoder_errors() {
        let err = serde_json::from_str::<SubmitRequest>(r#"{"run":"echo"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn submission_rules() {
        let mut req = SubmitRequest::default();
        assert_eq!(req.validate(), Err(SubmitError::MissingWrapSecretId));
        req.wrap_secret_id = "w".into();
        req.cubby_token = "t".into();
        assert_eq!(req.validate(), Err(SubmitError::CubbyPairIncomplete));
        req.cubby_path = "cubbyhole/job".into();
        assert!(req.validate().is_ok());
    }
}
