//! The job sandbox (docs/design.md §11): the limits a job container runs under, a job's own
//! `resources` request and how it is capped, the network choice and the image allow-list.
//!
//! Capabilities dropped, `no-new-privileges` and the init process are not here: the
//! runtime always applies them (a [`crate::ContainerSpec`] cannot ask for less).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ImageRef;

/// A job's own `resources` request (`{"pids": 256, "memory": "512MiB", "cpus": 0.5}`); each
/// field absent = the node's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// Processes (and threads) the container may hold at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// Memory in bytes (swap is set equal: no swap beyond it). JSON: a number of bytes or a
    /// size text such as `"512MiB"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// CPUs (fractions allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
}

impl Resources {
    /// True when nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.pids.is_none() && self.memory.is_none() && self.cpus.is_none()
    }
}

/// A size in bytes that reads from a number or from `16MiB`, `512KiB`, `2GiB`, `10MB` text
/// and prints as the shortest exact binary unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `16MiB`, `512KiB`, `1GiB`, `10MB`, `4096` (bytes).
    ///
    /// # Errors
    /// Anything else, or a size beyond `u64`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a size such as 512MiB or plain bytes"))?;
        let mul: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" | "k" => 1 << 10,
            "MiB" | "M" | "m" => 1 << 20,
            "GiB" | "G" | "g" => 1 << 30,
            "KB" | "kB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(format!("{text:?} has an unknown unit; use KiB, MiB, GiB or plain bytes")),
        };
        n.checked_mul(mul).map(Self).ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= size && n.is_multiple_of(size) {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Self(n)),
            Raw::S(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Where job containers are attached (`GOSTINT_JOB_NETWORK`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum JobNetwork {
    /// Docker's default bridge.
    #[default]
    Bridge,
    /// No network at all: loopback only.
    None,
    /// A user-defined bridge per tenant, `gostint-<tenant>`, created on demand.
    Tenant,
    /// An existing network of this name.
    Named(String),
}

impl JobNetwork {
    /// `bridge`, `none`, `tenant` or a network name.
    ///
    /// # Errors
    /// A name Docker would not accept.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        Ok(match t {
            "" | "bridge" => Self::Bridge,
            "none" => Self::None,
            "tenant" => Self::Tenant,
            "host" => return Err("host networking is not allowed for jobs".into()),
            name if name.starts_with("container:") => {
                return Err("joining another container's network is not allowed for jobs".into())
            }
            name if valid_network_name(name) => Self::Named(name.to_string()),
            _ => return Err("expected bridge, none, tenant or a network name ([A-Za-z0-9][A-Za-z0-9_.-]*)".into()),
        })
    }

    /// The engine's network for a job of `tenant`.
    pub fn for_tenant(&self, tenant: &str) -> String {
        match self {
            Self::Bridge => "bridge".into(),
            Self::None => "none".into(),
            Self::Tenant => tenant_network(tenant),
            Self::Named(n) => n.clone(),
        }
    }
}

fn valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `gostint-<tenant>`, the tenant name reduced to what a network name may hold.
pub fn tenant_network(tenant: &str) -> String {
    let safe: String = tenant
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c.to_ascii_lowercase() } else { '_' })
        .collect();
    format!("gostint-{}", if safe.is_empty() { "default" } else { &safe })
}

/// The limits one job container gets, after its request was capped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// `PidsLimit`.
    pub pids: i64,
    /// `Memory` and `MemorySwap` (bytes).
    pub memory: u64,
    /// `NanoCpus` / 1e9.
    pub cpus: f64,
}

impl Limits {
    /// Docker's `NanoCpus`.
    pub fn nano_cpus(&self) -> i64 {
        (self.cpus * 1e9).round() as i64
    }
}

/// The node's sandbox settings (`GOSTINT_JOB_*`, `GOSTINT_IMAGE_ALLOW`).
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxPolicy {
    /// Capabilities the operator allows back (`GOSTINT_JOB_CAP_ADD`); all others dropped.
    pub cap_add: Vec<String>,
    /// Defaults for a job that asks for nothing.
    pub defaults: Limits,
    /// What a job may ask for at most.
    pub max: Limits,
    /// Where containers are attached.
    pub network: JobNetwork,
    /// Glob patterns over the normalised image reference; empty = any image.
    pub image_allow: Vec<String>,
    /// The engine's json-file log `max-size` per file (two files).
    pub log_max_size: u64,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        let defaults = Limits { pids: 1024, memory: 2 << 30, cpus: 2.0 };
        Self {
            cap_add: Vec::new(),
            defaults,
            max: defaults,
            network: JobNetwork::Bridge,
            image_allow: Vec::new(),
            log_max_size: 8 << 20,
        }
    }
}

/// A job's request above the node's maximum; the message names the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResourceRefused(pub String);

/// The image is not on the allow-list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("image {0} is not allowed")]
pub struct ImageNotAllowed(pub String);

impl SandboxPolicy {
    /// The limits for a job's request: each field its own value, else the default; a value
    /// above `max` or not positive is refused, naming the limit.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn limits(&self, req: &Resources) -> Result<Limits, ResourceRefused> {
        let mut l = self.defaults;
        if let Some(p) = req.pids {
            if p < 1 {
                return Err(ResourceRefused(format!("resources.pids must be at least 1 (got {p})")));
            }
            if p > self.max.pids {
                return Err(ResourceRefused(format!(
                    "resources.pids {p} is above the limit GOSTINT_JOB_MAX_PIDS={}",
                    self.max.pids
                )));
            }
            l.pids = p;
        }
        if let Some(m) = req.memory {
            // Docker's own minimum is 6 MiB; refuse less here with a clear message.
            if m.0 < 6 << 20 {
                return Err(ResourceRefused(format!("resources.memory must be at least 6MiB (got {m})")));
            }
            if m.0 > self.max.memory {
                return Err(ResourceRefused(format!(
                    "resources.memory {m} is above the limit GOSTINT_JOB_MAX_MEMORY={}",
                    ByteSize(self.max.memory)
                )));
            }
            l.memory = m.0;
        }
        if let Some(c) = req.cpus {
            if !(c.is_finite() && c >= 0.01) {
                return Err(ResourceRefused(format!("resources.cpus must be at least 0.01 (got {c})")));
            }
            if c > self.max.cpus {
                return Err(ResourceRefused(format!(
                    "resources.cpus {c} is above the limit GOSTINT_JOB_MAX_CPUS={}",
                    self.max.cpus
                )));
            }
            l.cpus = c;
        }
        Ok(l)
    }

    /// Checks `image` against the allow-list (docs/design.md §11), matching its normalised form
    /// ([`normalised_image`]).
    ///
    /// # Errors
    /// No pattern matches.
    pub fn check_image(&self, image: &ImageRef) -> Result<(), ImageNotAllowed> {
        if self.image_allow.is_empty() {
            return Ok(());
        }
        let full = normalised_image(image);
        if self.image_allow.iter().any(|p| glob_match(p, &full)) {
            Ok(())
        } else {
            Err(ImageNotAllowed(full))
        }
    }
}

/// The fully qualified reference the allow-list matches: registry (`docker.io` when none),
/// `library/` for a one-part Docker Hub name, tag (`latest` when none) and digest, e.g.
/// `docker.io/library/busybox:latest`.
pub fn normalised_image(image: &ImageRef) -> String {
    let name = image.name();
    let first = name.split('/').next().unwrap_or_default();
    let has_registry = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_registry {
        name
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    if let Some(t) = image.tag() {
        full.push(':');
        full.push_str(t);
    }
    if let Some(d) = image.digest() {
        full.push('@');
        full.push_str(d);
    }
    full
}

/// Glob matching: `*` is any run of characters but `/`, `**` any run including `/`, `?`
/// one character but `/`; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p {
            [] => t.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| go(rest, &t[i..])),
            [b'*', rest @ ..] => {
                let mut i = 0;
                loop {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if i == t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            [b'?', rest @ ..] => matches!(t, [c, ..] if *c != b'/') && go(rest, &t[1..]),
            [c, rest @ ..] => matches!(t, [d, ..] if d == c) && go(rest, &t[1..]),
        }
    }
    go(pattern.trim().as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_capped_and_the_refusal_names_the_limit() {
        let policy =
            SandboxPolicy { max: Limits { pids: 2048, memory: 4 << 30, cpus: 4.0 }, ..SandboxPolicy::default() };
        assert_eq!(policy.limits(&Resources::default()).unwrap(), policy.defaults);
        let asked: Resources = serde_json::from_str(r#"{"pids": 64, "memory": "64MiB", "cpus": 0.5}"#).unwrap();
        assert_eq!(policy.limits(&asked).unwrap(), Limits { pids: 64, memory: 64 << 20, cpus: 0.5 });
        let asked: Resources = serde_json::from_str(r#"{"memory": 8589934592}"#).unwrap();
        assert_eq!(
            policy.limits(&asked).unwrap_err().to_string(),
            "resources.memory 8GiB is above the limit GOSTINT_JOB_MAX_MEMORY=4GiB"
        );
        let asked = Resources { pids: Some(4096), ..Default::default() };
        assert!(policy.limits(&asked).unwrap_err().0.contains("GOSTINT_JOB_MAX_PIDS=2048"));
        let asked = Resources { cpus: Some(8.0), ..Default::default() };
        assert!(policy.limits(&asked).unwrap_err().0.contains("GOSTINT_JOB_MAX_CPUS=4"));
        assert!(policy.limits(&Resources { pids: Some(0), ..Default::default() }).is_err());
        assert!(policy.limits(&Resources { cpus: Some(f64::NAN), ..Default::default() }).is_err());
        assert!(serde_json::from_str::<Resources>(r#"{"memory": "lots"}"#).is_err());
        assert!(serde_json::from_str::<Resources>(r#"{"disk": 1}"#).is_err(), "unknown keys are refused");
    }

    #[test]
    fn images_are_matched_in_their_normalised_form() {
        let img = |s: &str| ImageRef::parse(s).unwrap();
        assert_eq!(normalised_image(&img("busybox")), "docker.io/library/busybox:latest");
        assert_eq!(normalised_image(&img("gostint-test/busybox")), "docker.io/gostint-test/busybox:latest");
        assert_eq!(normalised_image(&img("reg.example:5000/a/b:1")), "reg.example:5000/a/b:1");
        let policy = SandboxPolicy {
            image_allow: vec!["docker.io/gostint-test/*".into(), "reg.example/**".into()],
            ..SandboxPolicy::default()
        };
        assert!(policy.check_image(&img("gostint-test/busybox:latest")).is_ok());
        assert!(policy.check_image(&img("reg.example/team/tool:2")).is_ok());
        assert_eq!(
            policy.check_image(&img("alpine:3")).unwrap_err().to_string(),
            "image docker.io/library/alpine:3 is not allowed"
        );
        assert!(policy.check_image(&img("gostint-test/x/y:1")).is_err(), "* stops at /");
        assert!(SandboxPolicy::default().check_image(&img("anything")).is_ok());
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "a/c"));
    }

    #[test]
    fn networks_parse_and_tenant_names_are_made_safe() {
        assert_eq!(JobNetwork::parse("none").unwrap(), JobNetwork::None);
        assert_eq!(JobNetwork::parse("").unwrap(), JobNetwork::Bridge);
        assert_eq!(JobNetwork::parse("jobs-net").unwrap(), JobNetwork::Named("jobs-net".into()));
        assert!(JobNetwork::parse("host").is_err());
        assert!(JobNetwork::parse("container:abc").is_err());
        assert!(JobNetwork::parse("a b").is_err());
        assert_eq!(JobNetwork::Tenant.for_tenant("Team A"), "gostint-team_a");
        assert_eq!(ByteSize(2 << 30).to_string(), "2GiB");
        assert_eq!(ByteSize(1500).to_string(), "1500B");
    }
}
