//! Bounds on the free-text fields of a job (issue 16, items 8 and 10): a 15 MB `qname` or a
//! million `env_vars` must be a clear refusal naming the field, not memory, log volume or a
//! runaway engine call. Checked at submission for the outer fields (400) and again after the
//! payload is decrypted (the job then fails with the same message).

use crate::JobDefinition;

/// Longest `qname`, in bytes.
pub const MAX_QNAME: usize = 128;
/// Longest `container_image`, in bytes.
pub const MAX_IMAGE: usize = 512;
/// Longest short word field (`image_pull_policy`, `secret_file_type`), in bytes.
pub const MAX_WORD: usize = 64;
/// Longest `working_directory`, in bytes.
pub const MAX_PATH: usize = 4096;
/// Most entries in `env_vars`, `run` or `entrypoint`.
pub const MAX_LIST_ITEMS: usize = 1024;
/// Most bytes in all entries of `env_vars`, `run` or `entrypoint` together.
pub const MAX_LIST_BYTES: usize = 256 * 1024;
/// Most `secret_refs`.
pub const MAX_SECRET_REFS: usize = 256;
/// Longest single `secret_refs` entry, in bytes.
pub const MAX_SECRET_REF: usize = 1024;
/// Longest Vault token or path field of a submission (`wrap_secret_id`, `cubby_token`,
/// `cubby_path`), in bytes.
pub const MAX_TOKEN_FIELD: usize = 1024;
/// How much of a free-text value goes into a log line.
pub const LOG_CHARS: usize = 64;

/// A field outside its bounds; the text names the field and the limit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct FieldOutOfBounds {
    /// The JSON field.
    pub field: &'static str,
    /// What is wrong, with the limit.
    pub problem: String,
}

fn too_long(field: &'static str, len: usize, max: usize) -> Result<(), FieldOutOfBounds> {
    if len > max {
        return Err(FieldOutOfBounds { field, problem: format!("too long ({len} bytes, at most {max})") });
    }
    Ok(())
}

fn list(field: &'static str, items: &[String], max_items: usize, max_bytes: usize) -> Result<(), FieldOutOfBounds> {
    if items.len() > max_items {
        return Err(FieldOutOfBounds {
            field,
            problem: format!("too many entries ({}, at most {max_items})", items.len()),
        });
    }
    let total: usize = items.iter().map(String::len).sum();
    if total > max_bytes {
        return Err(FieldOutOfBounds { field, problem: format!("too large ({total} bytes, at most {max_bytes})") });
    }
    Ok(())
}

/// `qname`: at most [`MAX_QNAME`] bytes of ASCII letters, digits and `._-:/@+`.
///
/// # Errors
/// Too long, or another character.
pub fn check_qname(q: &str) -> Result<(), FieldOutOfBounds> {
    too_long("qname", q.len(), MAX_QNAME)?;
    if let Some(c) = q.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-:/@+".contains(*c))) {
        return Err(FieldOutOfBounds {
            field: "qname",
            problem: format!("character {c:?} not allowed (use letters, digits and ._-:/@+)"),
        });
    }
    Ok(())
}

/// Every bounded field of a job definition (content is bounded by the body cap and the
/// unpacked-content cap).
///
/// # Errors
/// The first field out of bounds.
pub fn check_definition(d: &JobDefinition) -> Result<(), FieldOutOfBounds> {
    check_qname(&d.qname)?;
    too_long("container_image", d.container_image.len(), MAX_IMAGE)?;
    too_long("image_pull_policy", d.image_pull_policy.len(), MAX_WORD)?;
    too_long("secret_file_type", d.secret_file_type.len(), MAX_WORD)?;
    too_long("working_directory", d.working_directory.len(), MAX_PATH)?;
    list("env_vars", &d.env_vars, MAX_LIST_ITEMS, MAX_LIST_BYTES)?;
    list("run", &d.run, MAX_LIST_ITEMS, MAX_LIST_BYTES)?;
    list("entrypoint", &d.entrypoint, MAX_LIST_ITEMS, MAX_LIST_BYTES)?;
    list("secret_refs", &d.secret_refs, MAX_SECRET_REFS, MAX_SECRET_REFS * MAX_SECRET_REF)?;
    if let Some(r) = d.secret_refs.iter().find(|r| r.len() > MAX_SECRET_REF) {
        too_long("secret_refs", r.len(), MAX_SECRET_REF)?;
    }
    Ok(())
}

/// At most [`LOG_CHARS`] characters of `text` for a log line, marked when cut.
pub fn for_log(text: &str) -> String {
    match text.char_indices().nth(LOG_CHARS) {
        None => text.to_string(),
        Some((i, _)) => format!("{}…[{} bytes]", &text[..i], text.len()),
    }
}

/// Characters of `output` and of `stderr` a job carries in a list page: the last ones (the
/// stores cut them in the list query, so a page costs bounded memory whatever the jobs
/// printed; issue 16, item 9). The job view carries the whole.
pub const LIST_OUTPUT_TAIL: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qname_is_bounded_in_length_and_characters() {
        assert!(check_qname("greet").is_ok() && check_qname("tenant-a/deploy_1.x").is_ok() && check_qname("").is_ok());
        let e = check_qname(&"q".repeat(MAX_QNAME + 1)).unwrap_err();
        assert_eq!(e.to_string(), "qname: too long (129 bytes, at most 128)");
        assert!(check_qname("a b").unwrap_err().to_string().starts_with("qname: character ' ' not allowed"));
        assert!(check_qname("a\nb").is_err());
    }

    #[test]
    fn lists_are_bounded_by_count_and_size() {
        let mut d = JobDefinition::default();
        assert!(check_definition(&d).is_ok());
        d.env_vars = vec!["A=1".into(); MAX_LIST_ITEMS + 1];
        assert_eq!(check_definition(&d).unwrap_err().field, "env_vars");
        d.env_vars = vec![format!("A={}", "x".repeat(MAX_LIST_BYTES))];
        assert!(check_definition(&d).unwrap_err().to_string().starts_with("env_vars: too large"));
        d.env_vars.clear();
        d.run = vec!["x".into(); MAX_LIST_ITEMS + 1];
        assert_eq!(check_definition(&d).unwrap_err().field, "run");
        d.run.clear();
        d.entrypoint = vec!["y".repeat(MAX_LIST_BYTES + 1)];
        assert_eq!(check_definition(&d).unwrap_err().field, "entrypoint");
        d.entrypoint.clear();
        d.secret_refs = vec![format!("a@secret/{}.k", "p".repeat(MAX_SECRET_REF))];
        assert_eq!(check_definition(&d).unwrap_err().field, "secret_refs");
        d.secret_refs = vec!["a@secret/p.k".into(); MAX_SECRET_REFS + 1];
        assert_eq!(check_definition(&d).unwrap_err().field, "secret_refs");
    }

    #[test]
    fn logged_text_is_cut() {
        assert_eq!(for_log("short"), "short");
        let long = "q".repeat(10_000);
        let l = for_log(&long);
        assert!(l.len() < 100 && l.ends_with("…[10000 bytes]"), "{l}");
    }
}
