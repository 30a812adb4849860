//! Atomic file replacement (the `seqmodal-atomic` crate) with this crate's error type.

use std::path::Path;

use crate::error::{AnalysisError, Result};

/// Write `bytes` to `path` atomically: temp file in the same dir, fsync, rename. Never leaves a
/// half-written file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    seqmodal_atomic::write(path, bytes).map_err(|e| AnalysisError::Io {
        op: e.op,
        path: e.path,
        source: e.source,
    })
}
