//! Small parsed values of a job: secret references, image references, enumerated fields.

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// `<var>@<vault path>.<key>` (docs/design.md §3.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// Name in the secrets file.
    pub var: String,
    /// Vault path read with `GET /v1/<path>`.
    pub path: String,
    /// Key inside the secret's data.
    pub key: String,
}

/// A secret reference that does not match the grammar.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Secretref is unparseable: {0}")]
pub struct UnparseableSecretRef(pub String);

impl SecretRef {
    /// Parses one reference.
    ///
    /// # Errors
    /// The text does not match `^([0-9A-Za-z_]+)@([0-9A-Za-z_/-]+)\.([0-9A-Za-z_-]+)$`.
    pub fn parse(text: &str) -> Result<Self, UnparseableSecretRef> {
        static RE: OnceLock<Regex> = OnceLock::new();
        let re = RE.get_or_init(|| {
            Regex::new(r"^([0-9A-Za-z_]+)@([0-9A-Za-z_/\-]+)\.([0-9A-Za-z_\-]+)$").expect("static regex compiles")
        });
        let caps = re.captures(text).ok_or_else(|| UnparseableSecretRef(text.to_string()))?;
        Ok(Self { var: caps[1].to_string(), path: caps[2].to_string(), key: caps[3].to_string() })
    }
}

/// How to get the image before the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the engine lacks the image.
    #[default]
    IfNotPresent,
    /// Always pull.
    Always,
}

/// A pull policy other than the two allowed (case-sensitive).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Incorrect value for image_pull_policy: {0}")]
pub struct InvalidPullPolicy(pub String);

impl PullPolicy {
    /// `""` is the default; otherwise exactly `IfNotPresent` or `Always`.
    ///
    /// # Errors
    /// Any other text.
    pub fn parse(text: &str) -> Result<Self, InvalidPullPolicy> {
        match text {
            "" | "IfNotPresent" => Ok(PullPolicy::IfNotPresent),
            "Always" => Ok(PullPolicy::Always),
            other => Err(InvalidPullPolicy(other.to_string())),
        }
    }

    /// The wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Always => "Always",
        }
    }
}

/// Which secrets file the container gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SecretFileType {
    /// `/secrets.yml`.
    #[default]
    Yaml,
    /// `/secrets.json`.
    Json,
}

/// A secret file type other than `yaml` or `json`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid SecretFileType: '{0}'")]
pub struct InvalidSecretFileType(pub String);

impl SecretFileType {
    /// `""` is the default (`yaml`).
    ///
    /// # Errors
    /// Any text but `yaml` or `json`.
    pub fn parse(text: &str) -> Result<Self, InvalidSecretFileType> {
        match text {
            "" | "yaml" => Ok(SecretFileType::Yaml),
            "json" => Ok(SecretFileType::Json),
            other => Err(InvalidSecretFileType(other.to_string())),
        }
    }

    /// Where the file lands in the container.
    pub fn path(&self) -> &'static str {
        match self {
            SecretFileType::Yaml => "secrets.yml",
            SecretFileType::Json => "secrets.json",
        }
    }
}

/// A parsed image reference: `[registry/]repository[:tag][@digest]`.
///
/// Fixes the original's defects: a registry port is not a tag (`host:5000/img`), and
/// `@sha256:` digests are accepted (docs/design.md §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    registry: Option<String>,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// An image reference that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidImageRef {
    /// Nothing given after layering.
    #[error("ContainerImage is empty")]
    Empty,
    /// Not of the reference grammar.
    #[error("Invalid container_image reference: {0}")]
    Malformed(String),
}

impl ImageRef {
    /// Parses a reference as Docker does.
    ///
    /// # Errors
    /// Empty text, or characters a reference cannot hold.
    pub fn parse(text: &str) -> Result<Self, InvalidImageRef> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InvalidImageRef::Empty);
        }
        let bad = || InvalidImageRef::Malformed(text.to_string());
        if text.chars().any(|c| !(c.is_ascii_alphanumeric() || "._-/:@".contains(c))) {
            return Err(bad());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                if !d.contains(':') || d.contains('@') {
                    return Err(bad());
                }
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        // A tag is after the last ':' only if no '/' follows it (else it is a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return Err(bad());
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (Some(first.to_string()), rest.to_string())
            }
            _ => (None, name.to_string()),
        };
        if repository.is_empty()
            || repository.split('/').any(|c| c.is_empty())
            || repository.chars().any(|c| c.is_ascii_uppercase() || c == ':')
        {
            return Err(bad());
        }
        Ok(Self { registry, repository, tag, digest })
    }

    /// The repository with its registry, without tag or digest (`fromImage` of a pull).
    pub fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The tag, `latest` when neither tag nor digest was given.
    pub fn tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some("latest"),
        }
    }

    /// The digest, if pinned.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for ImageRef {
    /// The familiar form the engine resolves: `name[:tag][@digest]`, `:latest` filled in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = self.tag() {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_parse_per_the_grammar() {
        let r = SecretRef::parse("mysecret@kv/data/my-secret.my-value").unwrap();
        assert_eq!((r.var.as_str(), r.path.as_str(), r.key.as_str()), ("mysecret", "kv/data/my-secret", "my-value"));
        for bad in ["", "x@y", "x@a.b.c", "é@a.b", "x y@a.b", "@a.b", "x@.b"] {
            assert_eq!(SecretRef::parse(bad), Err(UnparseableSecretRef(bad.to_string())), "{bad}");
        }
    }

    #[test]
    fn pull_policy_and_file_type() {
        assert_eq!(PullPolicy::parse("").unwrap(), PullPolicy::IfNotPresent);
        assert_eq!(PullPolicy::parse("Always").unwrap(), PullPolicy::Always);
        assert_eq!(
            PullPolicy::parse("always").unwrap_err().to_string(),
            "Incorrect value for image_pull_policy: always"
        );
        assert_eq!(SecretFileType::parse("json").unwrap(), SecretFileType::Json);
        assert_eq!(SecretFileType::parse("xml").unwrap_err().to_string(), "Invalid SecretFileType: 'xml'");
    }

    #[test]
    fn image_refs_parse_like_docker() {
        let cases = [
            ("busybox", "busybox", Some("latest"), "busybox:latest"),
            ("gostint-test/busybox:1.0", "gostint-test/busybox", Some("1.0"), "gostint-test/busybox:1.0"),
            ("host:5000/img", "host:5000/img", Some("latest"), "host:5000/img:latest"),
            ("host:5000/img:v2", "host:5000/img", Some("v2"), "host:5000/img:v2"),
            ("alpine@sha256:abc", "alpine", None, "alpine@sha256:abc"),
        ];
        for (text, name, tag, shown) in cases {
            let r = ImageRef::parse(text).unwrap();
            assert_eq!(r.name(), name, "{text}");
            assert_eq!(r.tag(), tag, "{text}");
            assert_eq!(r.to_string(), shown, "{text}");
        }
        assert_eq!(ImageRef::parse("  "), Err(InvalidImageRef::Empty));
        for bad in ["a b", "Upper/case", "img:", "a//b", "x@nodigest"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
