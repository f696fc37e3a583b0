//! The job definition: `--job-json` first, then only the flags actually given; content packing.

use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::args::{value_or_file, RunArgs};

fn json_array(flag: &str, text: &str) -> anyhow::Result<Value> {
    let text = value_or_file(flag, text)?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("--{flag}: not a JSON array of strings"))?;
    match &v {
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(v),
        _ => bail!("--{flag}: expected a JSON array of strings, e.g. [\"a\",\"b\"]"),
    }
}

/// The job JSON to send: the base from `--job-json`, each flag actually given overriding its
/// field (a flag left out never touches the JSON: the original's defaults did).
///
/// # Errors
/// Unreadable `@file`s, JSON that is not an object (or not an array of strings for the
/// array flags), a pull policy or secret file type gostint would refuse, unpackable content.
pub fn build_job(a: &RunArgs) -> anyhow::Result<Map<String, Value>> {
    let mut job = match &a.job_json {
        Some(text) => {
            let text = value_or_file("job-json", text)?;
            match serde_json::from_str::<Value>(&text).context("--job-json: not JSON")? {
                Value::Object(m) => m,
                _ => bail!("--job-json: expected a JSON object"),
            }
        }
        None => Map::new(),
    };
    let mut set = |k: &str, v: Value| {
        job.insert(k.to_string(), v);
    };
    if let Some(v) = &a.qname {
        set("qname", json!(v));
    }
    if let Some(v) = &a.image {
        set("container_image", json!(v));
    }
    if let Some(v) = &a.image_pull_policy {
        if v != "IfNotPresent" && v != "Always" {
            bail!("--image-pull-policy: expected IfNotPresent or Always, got {v:?}");
        }
        set("image_pull_policy", json!(v));
    }
    if let Some(v) = &a.secret_filetype {
        if v != "yaml" && v != "json" {
            bail!("--secret-filetype: expected yaml or json, got {v:?}");
        }
        set("secret_file_type", json!(v));
    }
    if let Some(p) = &a.content {
        set("content", json!(pack_content(p)?));
    }
    for (flag, key, value) in [
        ("entrypoint", "entrypoint", &a.entrypoint),
        ("run", "run", &a.run),
        ("env-vars", "env_vars", &a.env_vars),
        ("secret-refs", "secret_refs", &a.secret_refs),
    ] {
        if let Some(text) = value {
            set(key, json_array(flag, text)?);
        }
    }
    if let Some(v) = &a.run_dir {
        set("working_directory", json!(v));
    }
    if let Some(v) = a.cont_on_warnings {
        set("cont_on_warnings", json!(v));
    }
    if let Some(v) = a.tty {
        set("tty", json!(v));
    }
    validate(&job)?;
    repeated_flags(a, &mut job)?;
    Ok(job)
}

/// `-e NAME=value`, `--secret VAR=PATH.KEY` (appended to `env_vars`/`secret_refs`, after what
/// the JSON flags gave) and a trailing `-- CMD ARGS…` (the job's `run`).
fn repeated_flags(a: &RunArgs, job: &mut Map<String, Value>) -> anyhow::Result<()> {
    let mut append = |key: &str, items: Vec<String>| {
        if items.is_empty() {
            return;
        }
        let entry = job.entry(key.to_string()).or_insert_with(|| json!([]));
        if let Value::Array(list) = entry {
            list.extend(items.into_iter().map(Value::String));
        }
    };
    let mut env = Vec::new();
    for e in &a.env {
        match e.split_once('=') {
            Some((name, _)) if !name.is_empty() && !name.contains(char::is_whitespace) => env.push(e.clone()),
            _ => bail!("-e/--env {e:?}: expected NAME=value"),
        }
    }
    append("env_vars", env);
    let mut refs = Vec::new();
    for r in &a.secret {
        match r.split_once('=') {
            Some((var, path)) if !var.is_empty() && path.contains('.') && !path.starts_with('.') => {
                refs.push(format!("{var}@{path}"));
            }
            _ => bail!("--secret {r:?}: expected VAR=PATH.KEY, e.g. password=secret/data/db.password"),
        }
    }
    append("secret_refs", refs);
    if !a.cmd.is_empty() {
        job.insert("run".into(), json!(a.cmd));
    }
    Ok(())
}

const STRING_FIELDS: &[&str] =
    &["qname", "container_image", "image_pull_policy", "content", "working_directory", "secret_file_type"];
const ARRAY_FIELDS: &[&str] = &["entrypoint", "run", "env_vars", "secret_refs"];
const BOOL_FIELDS: &[&str] = &["cont_on_warnings", "tty"];
/// How a job travels, which the client decides: one of these in the job JSON would make
/// gostint read another cubbyhole or decrypt another payload than the client sent.
const TRANSPORT_FIELDS: &[&str] = &["wrap_secret_id", "cubby_token", "cubby_path", "payload"];

/// Refuses, before any token is made, what gostint would only refuse once the job runs:
/// fields of the wrong type and unknown pull policies or secret file types. Other keys
/// are left for gostint, which ignores what it does not know.
fn validate(job: &Map<String, Value>) -> anyhow::Result<()> {
    if let Some(key) = TRANSPORT_FIELDS.iter().find(|k| job.contains_key(**k)) {
        bail!("job field {key:?} is set by gostint-client itself: remove it from the job JSON");
    }
    for (key, value) in job {
        let k = key.as_str();
        let ok = if STRING_FIELDS.contains(&k) {
            value.is_string()
        } else if ARRAY_FIELDS.contains(&k) {
            value.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        } else if BOOL_FIELDS.contains(&k) {
            value.is_boolean()
        } else {
            true
        };
        if !ok {
            let want = if ARRAY_FIELDS.contains(&k) {
                "an array of strings"
            } else if BOOL_FIELDS.contains(&k) {
                "a boolean"
            } else {
                "a string"
            };
            bail!("job field {key:?} must be {want}, not {value}");
        }
    }
    match job.get("image_pull_policy").and_then(Value::as_str) {
        None | Some("" | "IfNotPresent" | "Always") => {}
        Some(v) => bail!("image_pull_policy: expected IfNotPresent or Always, got {v:?}"),
    }
    match job.get("secret_file_type").and_then(Value::as_str) {
        None | Some("" | "yaml" | "json") => {}
        Some(v) => bail!("secret_file_type: expected yaml or json, got {v:?}"),
    }
    Ok(())
}

/// `targz,<base64>` of a folder (entries named `./…`, owned by 2001:2001 `gostint`, so the
/// job user can write them and gostint finds `./gostint.yml`) or of an existing `.tar.gz`.
pub fn pack_content(path: &Path) -> anyhow::Result<String> {
    let bytes = if path.is_dir() {
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        add_dir(&mut b, path, Path::new("."))?;
        let tar = b.into_inner().context("packing content")?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar).context("compressing content")?;
        gz.finish().context("compressing content")?
    } else {
        let data = std::fs::read(path).with_context(|| format!("--content: reading {}", path.display()))?;
        if !data.starts_with(&[0x1f, 0x8b]) {
            bail!("--content: {} is neither a folder nor a gzip (.tar.gz) file", path.display());
        }
        data
    };
    Ok(format!("targz,{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
}

fn add_dir(b: &mut tar::Builder<Vec<u8>>, dir: &Path, name: &Path) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("--content: reading {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--content: reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let entry_name = name.join(e.file_name());
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&meta);
        h.set_uid(2001);
        h.set_gid(2001);
        h.set_username("gostint").context("tar header")?;
        h.set_groupname("gostint").context("tar header")?;
        if meta.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            append_named(b, &mut h, &entry_name, std::io::empty())?;
            add_dir(b, &path, &entry_name)?;
        } else if meta.is_file() {
            let f = std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
            append_named(b, &mut h, &entry_name, f)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).with_context(|| format!("reading {}", path.display()))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &entry_name, target).context("packing content")?;
        }
    }
    Ok(())
}

/// Appends with the name exactly as given (`./x`): the tar crate drops a leading `./`, but
/// the original gostint server only finds `./gostint.yml`. Names too long for the classic
/// header field go through the tar crate (without `./`), which writes a GNU long name.
fn append_named(
    b: &mut tar::Builder<Vec<u8>>,
    h: &mut tar::Header,
    name: &Path,
    data: impl std::io::Read,
) -> anyhow::Result<()> {
    let text = name.to_string_lossy();
    let bytes = text.as_bytes();
    if bytes.len() < 100 {
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(h, data).context("packing content")
    } else {
        b.append_data(h, name, data).context("packing content")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use clap::Parser;

    use super::*;
    use crate::args::{normalise, Cli, Command};

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["gc", "run", "--url", "https://g", "--vault-url", "http://v"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(normalise(argv.iter().map(|s| s.to_string()).collect())).unwrap().command {
            Command::Run(r) => *r,
            _ => unreachable!("run"),
        }
    }

    #[test]
    fn flags_override_the_job_json_only_when_given() {
        let base = r#"{"qname":"base","image_pull_policy":"Always","secret_file_type":"json","tty":true,"run":["a"]}"#;
        let job = build_job(&run_args(&["--job-json", base, "--qname", "flag"])).unwrap();
        assert_eq!(job["qname"], "flag");
        assert_eq!(job["image_pull_policy"], "Always", "no flag default overwrites the JSON");
        assert_eq!(job["secret_file_type"], "json");
        assert_eq!(job["tty"], true);
        assert_eq!(job["run"], json!(["a"]));
        let job = build_job(&run_args(&["--job-json", base, "--tty=false", "--run", r#"["b","c"]"#])).unwrap();
        assert_eq!(job["tty"], false);
        assert_eq!(job["run"], json!(["b", "c"]));
    }

    #[test]
    fn bad_flag_values_are_usage_errors() {
        assert!(build_job(&run_args(&["--run", "echo hi"])).is_err());
        assert!(build_job(&run_args(&["--image-pull-policy", "IfNotPresetn"])).is_err());
        assert!(build_job(&run_args(&["--secret-filetype", "xml"])).is_err());
        assert!(build_job(&run_args(&["--job-json", "[1]"])).is_err());
        // The job JSON is held to the same rules.
        assert!(build_job(&run_args(&["--job-json", r#"{"image_pull_policy":"Never"}"#])).is_err());
        assert!(build_job(&run_args(&["--job-json", r#"{"run":"echo hi"}"#])).is_err());
        assert!(build_job(&run_args(&["--job-json", r#"{"tty":"yes"}"#])).is_err());
        // How the job travels is the client's business.
        assert!(build_job(&run_args(&["--job-json", r#"{"payload":"vault:v1:x"}"#])).is_err());
        assert!(build_job(&run_args(&["--job-json", r#"{"cubby_token":"s.x","cubby_path":"cubbyhole/x"}"#])).is_err());
        // Keys gostint does not know are its business.
        assert!(build_job(&run_args(&["--job-json", r#"{"comment":1}"#])).is_ok());
    }

    #[test]
    fn array_flags_read_at_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("run.json");
        std::fs::write(&f, "[\"echo\", \"hi\"]\n").unwrap();
        let job = build_job(&run_args(&["--run", &format!("@{}", f.display())])).unwrap();
        assert_eq!(job["run"], json!(["echo", "hi"]));
    }

    #[test]
    fn folders_pack_with_dot_slash_names_owned_by_2001() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gostint.yml"), "container_image: x\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/run.sh"), "echo hi\n").unwrap();
        let packed = pack_content(dir.path()).unwrap();
        let b64 = packed.strip_prefix("targz,").unwrap();
        let gz = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar_bytes).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut names = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!((e.header().uid().unwrap(), e.header().gid().unwrap()), (2001, 2001));
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["./gostint.yml", "./sub", "./sub/run.sh"]);
        // gostint finds the metadata in it.
        let meta = gostint_core::content::inspect_content(&gz, 1 << 20).unwrap().unwrap();
        assert_eq!(meta.container_image.as_deref(), Some("x"));
        // An existing .tar.gz goes as it is; anything else is refused.
        let f = dir.path().join("c.tar.gz");
        std::fs::write(&f, &gz).unwrap();
        assert_eq!(pack_content(&f).unwrap(), packed);
        assert!(pack_content(&dir.path().join("gostint.yml")).is_err());
    }
}
