//! Job content (`targz,<base64>`), the metadata files, and the small tars gostint copies
//! into a container.

use std::io::Read;

use base64::Engine;
use serde::Deserialize;

/// The default uncompressed size a content tar may reach before it is refused (gzip bombs).
pub const MAX_CONTENT_UNPACKED: u64 = 1 << 30;

/// Most bytes of a content's `gostint.yml` that are read (docs/design.md §11); a larger one fails
/// the job.
pub const MAX_METADATA: u64 = 1 << 20;

/// Content that cannot be used; the texts are the original's (docs/design.md §3.3).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// Not two comma-separated parts.
    #[error("Failed to parse invalid content")]
    Invalid,
    /// Bad base64.
    #[error("Failed to decode content base64: {0}")]
    Base64(String),
    /// A tag other than `targz`.
    #[error("Failed to extract content, unsupported archive format: {0}")]
    Format(String),
    /// Not gzip.
    #[error("Failed to unzip content: {0}")]
    Gzip(String),
    /// Not a tar, or an unsafe one.
    #[error("Failed content tar: {0}")]
    Tar(String),
    /// gostint.yml unreadable.
    #[error("Failed extracting gostint.yml from tar: {0}")]
    MetaRead(String),
    /// gostint.yml not YAML of the expected shape.
    #[error("Failed parsing yaml in gostint.yml: {0}")]
    MetaYaml(String),
}

/// The keys gostint reads from a content's `gostint.yml` or an image's `/gostint_image.yml`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Metadata {
    /// Image to run, when the job names none.
    pub container_image: Option<String>,
    /// Extra secret references.
    pub secret_refs: Vec<String>,
}

/// Parses `targz,<standard base64>` into the gzip bytes (sent to Docker as they are).
///
/// # Errors
/// The content is malformed (see [`ContentError`]).
pub fn decode_content(content: &str) -> Result<Vec<u8>, ContentError> {
    let parts: Vec<&str> = content.split(',').collect();
    if parts.len() != 2 {
        return Err(ContentError::Invalid);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(parts[1].trim())
        .map_err(|e| ContentError::Base64(e.to_string()))?;
    if parts[0] != "targz" {
        return Err(ContentError::Format(parts[0].to_string()));
    }
    Ok(bytes)
}

/// Reads at most `limit` bytes, then fails: a gzip bomb stops here.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!("content unpacks to more than {} bytes", self.limit)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Walks the whole gzip tar once: refuses entries that climb out of `/` (`..`), enforces
/// the unpacked-size cap `max_unpacked`, and returns the parsed `gostint.yml` (entry `./gostint.yml` or
/// `gostint.yml`) if there is one.
///
/// # Errors
/// Not gzip, not tar, unsafe names, too large, or a bad `gostint.yml`.
pub fn inspect_content(targz: &[u8], max_unpacked: u64) -> Result<Option<Metadata>, ContentError> {
    let gz = flate2::read::GzDecoder::new(targz);
    if gz.header().is_none() {
        return Err(ContentError::Gzip("gzip: invalid header".into()));
    }
    let mut archive = tar::Archive::new(Capped { inner: gz, left: max_unpacked, limit: max_unpacked });
    let mut meta = None;
    let entries = archive.entries().map_err(|e| ContentError::Tar(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ContentError::Tar(e.to_string()))?;
        let path = entry.path().map_err(|e| ContentError::Tar(e.to_string()))?.into_owned();
        if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(ContentError::Tar(format!("unsafe path in archive: {}", path.display())));
        }
        let name = path.to_string_lossy();
        if name == "./gostint.yml" || name == "gostint.yml" {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_METADATA + 1)
                .read_to_string(&mut text)
                .map_err(|e| ContentError::MetaRead(e.to_string()))?;
            if text.len() as u64 > MAX_METADATA {
                return Err(ContentError::MetaRead(format!("gostint.yml is larger than {MAX_METADATA} bytes (1 MiB)")));
            }
            meta = Some(parse_metadata(&text).map_err(ContentError::MetaYaml)?);
        } else {
            // Drain through the cap so the whole archive is checked.
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| ContentError::Tar(e.to_string()))?;
        }
    }
    Ok(meta)
}

/// Parses a metadata YAML document; an empty document is no metadata.
///
/// # Errors
/// The YAML parser's message.
pub fn parse_metadata(text: &str) -> Result<Metadata, String> {
    if text.trim().is_empty() {
        return Ok(Metadata::default());
    }
    // serde-saphyr: pure Rust, panic-free, and its default budget bounds alias expansion
    // ("billion laughs") and nesting, so a hostile gostint.yml costs little.
    // Its messages quote the document with a caret over several lines: the first line
    // (what and where) is what a job's status carries.
    serde_saphyr::from_str::<Option<Metadata>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string().lines().next().unwrap_or("invalid YAML").trim().to_string())
}

/// A tar of regular files `(path, data, mode)` owned by `uid:gid`, for
/// `PUT /containers/{id}/archive?path=/` (one engine call for several files).
pub fn files_tar(files: &[(&str, &[u8], u32)], uid: u64, gid: u64) -> Vec<u8> {
    let mtime = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path.trim_start_matches('/'), *data)
            .expect("writing a tar into memory cannot fail");
    }
    builder.into_inner().expect("writing a tar into memory cannot fail")
}

/// A tar holding one regular file.
pub fn single_file_tar(path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Vec<u8> {
    files_tar(&[(path, data, mode)], uid, gid)
}

/// The first regular file of a tar (what `GET /containers/{id}/archive` returns for one file).
///
/// # Errors
/// Not a tar, or no file in it.
pub fn first_file_of_tar(tar_bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
            return Ok(data);
        }
    }
    Err("no file in archive".to_string())
}

/// The passwd line of the job user (uid/gid 2001).
pub const GOSTINT_PASSWD_LINE: &str = "gostint:x:2001:2001:gostint:/tmp:/bin/sh\n";

/// `/etc/passwd` with the job user appended; a missing final newline is repaired first and
/// a missing file becomes just that line (docs/design.md §3.8).
pub fn patch_passwd(existing: Option<&[u8]>) -> Vec<u8> {
    let mut out = existing.map(<[u8]>::to_vec).unwrap_or_default();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(GOSTINT_PASSWD_LINE.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`, so write the name bytes directly to build hostile tars.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn content_errors_have_the_original_texts() {
        assert_eq!(decode_content("nocomma").unwrap_err().to_string(), "Failed to parse invalid content");
        assert!(decode_content("targz,!!!").unwrap_err().to_string().starts_with("Failed to decode content base64:"));
        assert_eq!(
            decode_content("zip,AAAA").unwrap_err().to_string(),
            "Failed to extract content, unsupported archive format: zip"
        );
        let not_gz = decode_content(&format!("targz,{}", b64(b"hello"))).unwrap();
        assert!(inspect_content(&not_gz, MAX_CONTENT_UNPACKED)
            .unwrap_err()
            .to_string()
            .starts_with("Failed to unzip content:"));
    }

    #[test]
    fn gostint_yml_is_found_with_or_without_dot_slash() {
        for name in ["./gostint.yml", "gostint.yml"] {
            let gz = targz(&[(name, b"container_image: gostint-test/busybox\nsecret_refs:\n  - a@secret/x.y\n")]);
            let meta = inspect_content(&gz, MAX_CONTENT_UNPACKED).unwrap().unwrap();
            assert_eq!(meta.container_image.as_deref(), Some("gostint-test/busybox"));
            assert_eq!(meta.secret_refs, vec!["a@secret/x.y".to_string()]);
        }
        assert_eq!(inspect_content(&targz(&[("./run.sh", b"echo")]), MAX_CONTENT_UNPACKED).unwrap(), None);
        let bad = targz(&[("gostint.yml", b"container_image: [unclosed")]);
        assert!(inspect_content(&bad, MAX_CONTENT_UNPACKED)
            .unwrap_err()
            .to_string()
            .starts_with("Failed parsing yaml in gostint.yml:"));
    }

    #[test]
    fn metadata_yaml_edge_cases() {
        assert_eq!(parse_metadata("").unwrap(), Metadata::default());
        assert_eq!(parse_metadata("---\n").unwrap(), Metadata::default());
        assert_eq!(parse_metadata("~\n").unwrap(), Metadata::default());
        assert_eq!(parse_metadata("# only a comment\n").unwrap(), Metadata::default());
        let m = parse_metadata("---\ncontainer_image: 'x:1'\nsecret_refs: [a@s/x.y, \"b@s/z\"]\nother: 1\n").unwrap();
        assert_eq!(m.container_image.as_deref(), Some("x:1"));
        assert_eq!(m.secret_refs, vec!["a@s/x.y".to_string(), "b@s/z".to_string()]);
        assert!(parse_metadata("secret_refs: 5\n").is_err());
        assert!(parse_metadata("- a\n- b\n").is_err());
        // Aliases expanding to billions of nodes ("billion laughs") are refused, quickly.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in
            ["a", "b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
        {
            let refs = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        // Under a key gostint ignores: only a bounded parser stops this quickly.
        bomb.push_str("container_image: x\nignored: *j\n");
        let started = std::time::Instant::now();
        let verdict = parse_metadata(&bomb);
        eprintln!("alias bomb: {verdict:?} in {:?}", started.elapsed());
        let message = verdict.unwrap_err();
        assert!(message.contains("budget breached"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn a_gostint_yml_over_1_mib_is_refused() {
        let mut big = b"container_image: x\n#".to_vec();
        big.resize((MAX_METADATA + 10) as usize, b'x');
        let e = inspect_content(&targz(&[("gostint.yml", &big)]), MAX_CONTENT_UNPACKED).unwrap_err();
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
        let mut ok = b"container_image: x\n#".to_vec();
        ok.resize(MAX_METADATA as usize - 1, b'x');
        assert!(inspect_content(&targz(&[("gostint.yml", &ok)]), MAX_CONTENT_UNPACKED).unwrap().is_some());
    }

    #[test]
    fn climbing_names_are_refused() {
        let gz = targz(&[("../../etc/evil", b"x")]);
        assert!(inspect_content(&gz, MAX_CONTENT_UNPACKED).unwrap_err().to_string().contains("unsafe path"));
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        // 64 MiB of zeros compress to ~64 KiB; the cap here is 16 MiB.
        let limit = 16 << 20;
        let size: u64 = 64 << 20;
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_path("zeros").unwrap();
        h.set_cksum();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, h.as_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(size >> 20) {
            std::io::Write::write_all(&mut gz, &zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        let err = inspect_content(&bomb, limit).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
    }

    #[test]
    fn passwd_is_repaired_or_created() {
        assert_eq!(patch_passwd(None), GOSTINT_PASSWD_LINE.as_bytes());
        assert_eq!(
            patch_passwd(Some(b"root:x:0:0::/:/bin/sh")),
            format!("root:x:0:0::/:/bin/sh\n{GOSTINT_PASSWD_LINE}").as_bytes()
        );
    }

    #[test]
    fn single_file_tars_round_trip() {
        let t = single_file_tar("/secrets.yml", b"---\n", 0o444, 0, 0);
        assert_eq!(first_file_of_tar(&t).unwrap(), b"---\n");
    }
}
