//! Build facts that each run directory records (`provenance.rs`): the git commit m2m was
//! built from, when built from a checkout, and the burn version in the workspace's
//! `Cargo.lock`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let lock = Path::new("../Cargo.lock");
    println!("cargo:rerun-if-changed=../Cargo.lock");
    let burn = std::fs::read_to_string(lock).ok().and_then(|text| locked_version(&text, "burn"));
    println!("cargo:rustc-env=M2M_BURN_VERSION={}", burn.as_deref().unwrap_or("unknown"));
    if let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=M2M_GIT_COMMIT={commit}");
        // Rebuilt when HEAD moves: the files that say where it points, where they exist
        // (a path that does not exist would rerun this script on every build).
        for file in ["HEAD", "packed-refs"].map(String::from).into_iter().chain(git(&["symbolic-ref", "-q", "HEAD"])) {
            if let Some(path) = git(&["rev-parse", "--git-path", &file]).filter(|p| Path::new(p).exists()) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

/// The version of package `name` in a `Cargo.lock`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let version = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(version.to_string());
        }
    }
    None
}

/// `git ARGS` in this package's folder, its trimmed output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
