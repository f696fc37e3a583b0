//! `Debug` for the types that carry a secret (docs/design.md §11: no `Debug` output of a job,
//! setting or request carries one): tokens, wrapping tokens, secret values and a
//! container's environment (it holds `VAULT_TOKEN`) print as their size only.

use std::fmt;

use crate::{ContainerSpec, JobRecord, NewJob, SecretData, SubmitRequest};

/// A secret's stand-in: `<redacted N bytes>`, or `""` when empty.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("\"\"")
        } else {
            write!(f, "<redacted {} bytes>", self.0)
        }
    }
}

fn r(s: &str) -> Redacted {
    Redacted(s.len())
}

impl fmt::Debug for SubmitRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitRequest")
            .field("job", &self.job)
            .field("wrap_secret_id", &r(&self.wrap_secret_id))
            .field("cubby_token", &r(&self.cubby_token))
            .field("cubby_path", &self.cubby_path)
            .field("payload", &r(&self.payload))
            .finish()
    }
}

impl fmt::Debug for NewJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewJob")
            .field("id", &self.id)
            .field("qname", &self.qname)
            .field("owner", &self.owner)
            .field("submitted", &self.submitted)
            .field("definition", &self.definition)
            .field("wrap_secret_id", &r(&self.wrap_secret_id))
            .field("payload", &self.payload.as_deref().map(r))
            .finish()
    }
}

impl fmt::Debug for JobRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRecord")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("node_uuid", &self.node_uuid)
            .field("qname", &self.qname)
            .field("owner", &self.owner)
            .field("container_image", &self.container_image)
            .field("container_id", &self.container_id)
            .field("kill_requested", &self.kill_requested)
            .field("return_code", &self.return_code)
            .field("output", &Redacted(self.output.len()))
            .field("stderr", &Redacted(self.stderr.len()))
            .field("definition", &self.definition)
            .field("wrap_secret_id", &r(&self.wrap_secret_id))
            .field("payload", &self.payload.as_deref().map(r))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `env` holds VAULT_TOKEN/TOKEN: names only.
        let names: Vec<&str> = self.env.iter().map(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n)).collect();
        f.debug_struct("ContainerSpec")
            .field("image", &self.image)
            .field("entrypoint", &self.entrypoint)
            .field("cmd", &self.cmd)
            .field("working_dir", &self.working_dir)
            .field("env_names", &names)
            .field("tty", &self.tty)
            .field("user", &self.user)
            .field("labels", &self.labels)
            .field("ca_bind", &self.ca_bind)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("warnings", &self.warnings)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_carries_no_secret() {
        let req = SubmitRequest {
            wrap_secret_id: "s.WRAPSECRET".into(),
            cubby_token: "s.CUBBYSECRET".into(),
            ..Default::default()
        };
        let spec = ContainerSpec { env: vec!["VAULT_TOKEN=s.JOBTOKEN".into(), "A=1".into()], ..Default::default() };
        let mut data = serde_json::Map::new();
        data.insert("password".into(), serde_json::Value::String("hunter2-SECRET".into()));
        let secret = SecretData { data, warnings: vec![] };
        let text = format!("{req:?} {spec:?} {secret:?}");
        for s in ["WRAPSECRET", "CUBBYSECRET", "JOBTOKEN", "hunter2"] {
            assert!(!text.contains(s), "{s} in {text}");
        }
        assert!(
            text.contains("VAULT_TOKEN") && text.contains("password") && text.contains("<redacted 12 bytes>"),
            "{text}"
        );
    }
}
