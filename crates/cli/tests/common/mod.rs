//! Helpers shared by the CLI's integration tests (each test file is its own crate, so a
//! helper one of them does not use is not dead code).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs the `seqmodal` binary with `args` in `cwd`.
pub fn seqmodal(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqmodal")).current_dir(cwd).args(args).output().unwrap()
}

/// A finished command's stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
