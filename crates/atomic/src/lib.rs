//! Atomic file replacement: readers see the old file or the new one, never a torn one, and
//! after a crash or a reboot the new file is whole or absent. Every output of seqmodal (run
//! tables, figures, reports, checkpoints) is written this way.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("out.txt");
//! seqmodal_atomic::write(&path, b"done").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"done");
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A failed step of an atomic write, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}", path.display())]
pub struct AtomicError {
    /// What was being done ("create", "write", "fsync", "rename into", ...).
    pub op: &'static str,
    /// The file or directory involved.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

/// Distinguishes temp names of concurrent writers within one process (the pid separates
/// processes), so two writers of one path never share a temp file.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AtomicError {
    let path = path.to_path_buf();
    move |source| AtomicError { op, path, source }
}

/// Writes `bytes` to `path` atomically (see [`write_with`]).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), AtomicError> {
    write_with(path, |tmp| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        f.write_all(bytes)
    })
}

/// Lets `fill` write the new content to a temp path next to `path` (for writers that take a
/// path, e.g. a safetensors save), then fsyncs it and renames it over `path`. The parent
/// directory is created if missing; the temp file lives beside the target because `rename`
/// is only atomic within one filesystem, and is removed if anything fails.
pub fn write_with(path: &Path, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<(), AtomicError> {
    let file_name = path.file_name().ok_or_else(|| AtomicError {
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
    let written = (|| -> Result<(), AtomicError> {
        fill(&tmp).map_err(io_err("write", &tmp))?;
        // Data must be on disk before the rename makes it visible.
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err("fsync", &tmp))?;
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
        write(&p, b"first").unwrap();
        write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn error_names_path_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way makes the rename fail.
        let p = dir.path().join("d");
        fs::create_dir_all(p.join("x")).unwrap();
        let err = write(&p, b"x").unwrap_err().to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A failing writer: its error is reported and nothing is left.
        let q = dir.path().join("q.bin");
        let err = write_with(&q, |tmp| {
            fs::write(tmp, b"partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.op, "write");
        assert!(!q.exists() && fs::read_dir(dir.path()).unwrap().count() == 1);
    }
}
