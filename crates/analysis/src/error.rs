//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading, summarising or plotting results.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A filesystem operation failed on `path`.
    #[error("{op} {path}", path = path.display())]
    Io {
        /// What was being done ("write", "rename", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// polars failed to build, write or parse a CSV table.
    #[error("csv {path}", path = path.display())]
    Polars {
        /// The CSV file involved.
        path: PathBuf,
        /// The underlying polars error.
        source: polars::error::PolarsError,
    },
    /// A CSV file does not have the expected columns or a cell does not parse.
    #[error("csv {path}: column `{column}`{row}: {message}", path = path.display(), row = row.map(|r| format!(" row {r}")).unwrap_or_default())]
    Schema {
        /// The CSV file involved.
        path: PathBuf,
        /// The offending column.
        column: String,
        /// 1-based data row (header excluded), when one cell is at fault.
        row: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Records do not form a complete accuracy matrix of one run.
    #[error("accuracy matrix: {0}")]
    Matrix(String),
    /// JSON serialisation failed.
    #[error("json {path}", path = path.display())]
    Json {
        /// The JSON file being written.
        path: PathBuf,
        /// The underlying serde_json error.
        source: serde_json::Error,
    },
    /// Drawing or encoding a figure failed.
    #[error("figure {path}: {message}", path = path.display())]
    Plot {
        /// The figure file being produced.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, AnalysisError>;
