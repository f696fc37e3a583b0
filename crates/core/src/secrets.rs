//! The secrets file a job finds at `/secrets.yml` or `/secrets.json` (docs/design.md §3.7).

use std::collections::BTreeMap;

use crate::SecretFileType;

/// Renders the secrets map: YAML with the original's two header lines and one `key: value`
/// per entry, or one compact JSON object; keys sorted in both.
pub fn render_secrets(map: &BTreeMap<String, String>, kind: SecretFileType) -> Vec<u8> {
    match kind {
        SecretFileType::Json => serde_json::to_vec(map).expect("a map of strings always serialises"),
        SecretFileType::Yaml => {
            let mut out = String::from("---\n# gostint vault secrets injected:\n");
            for (k, v) in map {
                out.push_str(&yaml_scalar(k));
                out.push_str(": ");
                out.push_str(&yaml_scalar(v));
                out.push('\n');
            }
            out.into_bytes()
        }
    }
}

/// A plain scalar when it reads back as the same string under YAML 1.1 and 1.2, else a
/// double-quoted one (a JSON string is a valid YAML double-quoted scalar).
fn yaml_scalar(s: &str) -> String {
    const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"];
    let plain = !s.is_empty()
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'/')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn yaml_has_the_header_sorted_keys_and_safe_quoting() {
        let m = map(&[("TOKEN", "s.3hX"), ("mysecret", "s3cr3t"), ("n", "42"), ("b", "yes"), ("q", "a: b # c")]);
        let text = String::from_utf8(render_secrets(&m, SecretFileType::Yaml)).unwrap();
        assert_eq!(
            text,
            "---\n# gostint vault secrets injected:\nTOKEN: s.3hX\nb: \"yes\"\nmysecret: s3cr3t\n\"n\": \"42\"\nq: \"a: b # c\"\n"
        );
        // Every value reads back as the same string.
        let back: BTreeMap<String, String> = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn json_is_one_compact_sorted_object() {
        let m = map(&[("b", "2"), ("a", "1")]);
        assert_eq!(render_secrets(&m, SecretFileType::Json), br#"{"a":"1","b":"2"}"#);
    }
}
