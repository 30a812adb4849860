//! Typed errors of the data crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading or checking a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A dataset directory or file does not exist.
    #[error("dataset file not found: {path} ({hint})")]
    Missing {
        /// The path that does not exist.
        path: PathBuf,
        /// What the file is for.
        hint: String,
    },
    /// A file's content is malformed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when not line-oriented).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A MAT file could not be read or lacks a variable.
    #[error("{path}: {message}")]
    Mat {
        /// The MAT file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One named array of a file (an `.npz` member, a MAT variable) is missing or unusable.
    #[error("{path}: {name}: {message}")]
    Variable {
        /// The file.
        path: PathBuf,
        /// The array or variable name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Shapes or row counts disagree.
    #[error("{context}: {message}")]
    Shape {
        /// Where (file, modality, split).
        context: String,
        /// What disagrees.
        message: String,
    },
    /// A value is NaN or infinite.
    #[error("{context}: non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// Where (file, modality, split).
        context: String,
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
        /// The value.
        value: f64,
    },
    /// A dataset kind that has no loader (the message lists the known ones).
    #[error("{0}")]
    UnknownKind(String),
    /// A loader setting (`[dataset]` key such as `test` or `train`) does not fit the data.
    #[error("dataset.{key}: {message}")]
    Setting {
        /// The `[dataset]` key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A synthetic-dataset parameter is out of range.
    #[error("dataset.{key}: {message}")]
    Synthetic {
        /// The `[dataset]` key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Result alias of the data crate.
pub type Result<T> = std::result::Result<T, DataError>;
