//! Layering the outer fields, the decrypted payload and the content's `gostint.yml` into
//! the one definition a node runs (docs/design.md §3.5), validated before any Docker call.

use crate::content::{decode_content, inspect_content, ContentError};
use crate::refs::{ImageRef, InvalidImageRef, InvalidPullPolicy, InvalidSecretFileType, UnparseableSecretRef};
use crate::{JobDefinition, PullPolicy, Resources, SecretFileType, SecretRef};

/// A job definition after layering, with every field checked.
#[derive(Clone, Debug)]
pub struct ResolvedJob {
    /// Image to run.
    pub image: ImageRef,
    /// Pull policy.
    pub pull_policy: PullPolicy,
    /// Secrets file kind.
    pub secret_file_type: SecretFileType,
    /// Gzip tar to unpack at `/`, if any.
    pub content: Option<Vec<u8>>,
    /// Docker `Entrypoint` (empty = the image's).
    pub entrypoint: Vec<String>,
    /// Docker `Cmd` (empty = the image's).
    pub run: Vec<String>,
    /// Docker `WorkingDir` (empty = the image's).
    pub working_directory: String,
    /// `NAME=value` entries.
    pub env_vars: Vec<String>,
    /// Carry on despite Vault warnings.
    pub cont_on_warnings: bool,
    /// Docker `Tty`.
    pub tty: bool,
    /// The job's resources request (payload → outer, per field).
    pub resources: Resources,
    outer_refs: Vec<String>,
    content_refs: Vec<String>,
    payload_refs: Vec<String>,
}

/// Why a job definition cannot run; each text is what the job's `output` says.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Bad content.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Bad or missing image.
    #[error(transparent)]
    Image(#[from] InvalidImageRef),
    /// Bad pull policy.
    #[error(transparent)]
    PullPolicy(#[from] InvalidPullPolicy),
    /// Bad secret file type.
    #[error(transparent)]
    SecretFileType(#[from] InvalidSecretFileType),
    /// Bad secret reference.
    #[error(transparent)]
    SecretRef(#[from] UnparseableSecretRef),
    /// A field out of its bounds (a decrypted payload is only checked here).
    #[error(transparent)]
    OutOfBounds(#[from] crate::limits::FieldOutOfBounds),
}

fn first<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn first_vec(a: &[String], b: &[String]) -> Vec<String> {
    if a.is_empty() {
        b.to_vec()
    } else {
        a.to_vec()
    }
}

/// Layers `payload` (when the job was encrypted) over `outer`, then the content metadata.
///
/// # Errors
/// The first field that cannot be used, with the contract's message.
pub fn resolve(
    outer: &JobDefinition,
    payload: Option<&JobDefinition>,
    max_content_unpacked: u64,
) -> Result<ResolvedJob, ResolveError> {
    let empty = JobDefinition::default();
    let p = payload.unwrap_or(&empty);
    crate::limits::check_definition(outer)?;
    crate::limits::check_definition(p)?;

    let content_text = first(&p.content, &outer.content);
    let (content, meta) = if content_text.is_empty() {
        (None, None)
    } else {
        let bytes = decode_content(content_text)?;
        let meta = inspect_content(&bytes, max_content_unpacked)?;
        (Some(bytes), meta)
    };
    let meta = meta.unwrap_or_default();

    let image_text =
        first(first(&p.container_image, &outer.container_image), meta.container_image.as_deref().unwrap_or(""));
    let image = ImageRef::parse(image_text)?;
    let pull_policy = PullPolicy::parse(first(&p.image_pull_policy, &outer.image_pull_policy))?;
    let secret_file_type = SecretFileType::parse(first(&p.secret_file_type, &outer.secret_file_type))?;

    let job = ResolvedJob {
        image,
        pull_policy,
        secret_file_type,
        content,
        entrypoint: first_vec(&p.entrypoint, &outer.entrypoint),
        run: first_vec(&p.run, &outer.run),
        working_directory: first(&p.working_directory, &outer.working_directory).to_string(),
        env_vars: first_vec(&p.env_vars, &outer.env_vars),
        cont_on_warnings: p.cont_on_warnings || outer.cont_on_warnings,
        tty: p.tty || outer.tty,
        resources: Resources {
            pids: p.resources.pids.or(outer.resources.pids),
            memory: p.resources.memory.or(outer.resources.memory),
            cpus: p.resources.cpus.or(outer.resources.cpus),
        },
        outer_refs: outer.secret_refs.clone(),
        content_refs: meta.secret_refs,
        payload_refs: p.secret_refs.clone(),
    };
    // Refuse unparseable references now, before any Docker call.
    job.secret_refs(&[])?;
    Ok(job)
}

impl ResolvedJob {
    /// All secret references in layering order (outer, image, content, payload), so that a
    /// repeated variable takes the later value.
    ///
    /// # Errors
    /// The first reference that does not parse.
    pub fn secret_refs(&self, image_refs: &[String]) -> Result<Vec<SecretRef>, UnparseableSecretRef> {
        self.outer_refs
            .iter()
            .chain(image_refs)
            .chain(&self.content_refs)
            .chain(&self.payload_refs)
            .map(|r| SecretRef::parse(r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(f: impl FnOnce(&mut JobDefinition)) -> JobDefinition {
        let mut d = JobDefinition::default();
        f(&mut d);
        d
    }

    #[test]
    fn payload_wins_then_outer_then_defaults() {
        let outer = def(|d| {
            d.container_image = "outer/img".into();
            d.run = vec!["outer".into()];
            d.env_vars = vec!["A=outer".into()];
            d.working_directory = "/outer".into();
            d.secret_refs = vec!["x@secret/a.k".into()];
        });
        let payload = def(|d| {
            d.container_image = "payload/img".into();
            d.secret_refs = vec!["x@secret/b.k".into()];
            d.tty = true;
        });
        let r = resolve(&outer, Some(&payload), 1 << 20).unwrap();
        assert_eq!(r.image.to_string(), "payload/img:latest");
        assert_eq!(r.run, vec!["outer".to_string()]);
        assert_eq!(r.env_vars, vec!["A=outer".to_string()], "plain-mode env_vars must not be lost");
        assert_eq!(r.working_directory, "/outer");
        assert!(r.tty);
        assert_eq!(r.pull_policy, PullPolicy::IfNotPresent);
        assert_eq!(r.secret_file_type, SecretFileType::Yaml);
        let refs = r.secret_refs(&["x@secret/img.k".into()]).unwrap();
        let paths: Vec<_> = refs.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["secret/a", "secret/img", "secret/b"]);
    }

    #[test]
    fn validation_happens_before_docker() {
        let no_image = JobDefinition::default();
        assert_eq!(resolve(&no_image, None, 1).unwrap_err().to_string(), "ContainerImage is empty");
        let bad_policy = def(|d| {
            d.container_image = "img".into();
            d.image_pull_policy = "Sometimes".into();
        });
        assert_eq!(
            resolve(&bad_policy, None, 1).unwrap_err().to_string(),
            "Incorrect value for image_pull_policy: Sometimes"
        );
        let bad_ref = def(|d| {
            d.container_image = "img".into();
            d.secret_refs = vec!["nope".into()];
        });
        assert_eq!(resolve(&bad_ref, None, 1).unwrap_err().to_string(), "Secretref is unparseable: nope");
        let bad_content = def(|d| {
            d.container_image = "img".into();
            d.content = "garbage".into();
        });
        assert_eq!(resolve(&bad_content, None, 1).unwrap_err().to_string(), "Failed to parse invalid content");
    }
}
