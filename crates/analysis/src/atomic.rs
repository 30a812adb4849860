//! Atomic file replacement: readers see the old file or the new one, never a torn one.

use crate::error::{AnalysisError, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temp names of concurrent writers within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AnalysisError {
    let path = path.to_path_buf();
    move |source| AnalysisError::Io { op, path, source }
}

/// Write `bytes` to `path` atomically: temp file in the same dir, fsync, rename. Never leaves a half-written file.
///
/// The parent directory is created if missing. The temp file lives next to the
/// target because `rename` is only atomic within one filesystem.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| AnalysisError::Io {
        op: "write",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> Result<()> {
        let mut f =
            OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        // Data must be on disk before the rename makes it visible.
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into", path))
    })();
    if written.is_err() {
        // Best effort: a stray temp file is harmless but untidy.
        let _ = fs::remove_file(&tmp);
        return written;
    }
    // Persist the directory entry too; not every platform can open a directory, so best effort.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.txt");
        atomic_write(&p, b"first").unwrap();
        atomic_write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn error_names_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way makes the rename fail.
        let p = dir.path().join("d");
        fs::create_dir_all(p.join("x")).unwrap();
        let err = atomic_write(&p, b"x").unwrap_err().to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
