//! Records the git commit of the build as `GOSTINT_BUILD_COMMIT` (`unknown` without git or
//! outside a checkout, e.g. a source tarball); a set `GOSTINT_BUILD_COMMIT` wins (image builds
//! that copy the sources without `.git`).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GOSTINT_BUILD_COMMIT");
    let commit = std::env::var("GOSTINT_BUILD_COMMIT").ok().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
            _ => "unknown".to_string(),
        }
    });
    println!("cargo:rustc-env=GOSTINT_BUILD_COMMIT={}", commit.trim());
    // Rebuild when HEAD moves (a branch ref or a detached HEAD).
    let git_path = |p: &str| {
        Command::new("git")
            .args(["rev-parse", "--git-path", p])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(head) = git_path("HEAD") {
        println!("cargo:rerun-if-changed={head}");
        if let Some(r) =
            std::fs::read_to_string(&head).ok().and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
        {
            if let Some(refp) = git_path(&r) {
                println!("cargo:rerun-if-changed={refp}");
            }
        }
    }
}
