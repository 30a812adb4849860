//! Captures which code is built (git commit and whether the tree had uncommitted changes)
//! for the provenance every run and report records. Without git (a source tarball) both are
//! left empty and the binary says "unknown".

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").current_dir(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let here = Path::new(&manifest);
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(here, &["rev-parse", "HEAD"]).unwrap_or_default();
    // Tracked files only: untracked scratch files do not change what is built.
    let dirty = match commit.is_empty() {
        true => String::new(),
        false => git(here, &["status", "--porcelain", "--untracked-files=no"])
            .map(|s| (!s.is_empty()).to_string())
            .unwrap_or_default(),
    };
    println!("cargo:rustc-env=SEQMODAL_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=SEQMODAL_GIT_DIRTY={dirty}");
    // Rerun when HEAD moves (checkout, commit: the index is rewritten) or a source changes (dirty
    // flag); cargo scans directories recursively.
    for args in [["rev-parse", "--git-path", "HEAD"], ["rev-parse", "--git-path", "index"]] {
        if let Some(p) = git(here, &args) {
            println!("cargo:rerun-if-changed={}", here.join(p).display());
        }
    }
    if !commit.is_empty() {
        let root = here.join("../..");
        for p in ["crates", "Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", root.join(p).display());
        }
    }
}
