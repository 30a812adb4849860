//! Datasets for seqmodal: loaders (`wiki`, `mfeat`), splits, labels and
//! per-modality standardisation.
//!
//! Every loader returns a [`Dataset`] whose labels are multi-hot (single-label data
//! is one-hot), so multi-label datasets fit without changes downstream.

mod dataset;
mod error;
mod matrix;
mod mfeat;
mod wiki;

use std::path::Path;

pub use dataset::{Dataset, Modality, Split};
pub use error::{DataError, Result};
pub use matrix::{Labels, Matrix};
pub use mfeat::{load_mfeat, MFEAT_VIEWS};
pub use wiki::load_wiki;

/// Dataset formats with a loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Wikipedia image–text (MAT v5 + split lists).
    Wiki,
    /// UCI Multiple Features, six views (CSV + split JSON).
    Mfeat,
}

impl DatasetKind {
    /// All kinds, for error messages and help.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Wiki, DatasetKind::Mfeat];

    /// The name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Wiki => "wiki",
            DatasetKind::Mfeat => "mfeat",
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| DataError::UnknownKind(s.to_string()))
    }
}

/// Loads a dataset of `kind` from `path` (raw features; call [`Dataset::standardize`]).
pub fn load(kind: DatasetKind, path: &Path) -> Result<Dataset> {
    if !path.is_dir() {
        return Err(DataError::Missing {
            path: path.into(),
            hint: format!("{} dataset directory", kind.as_str()),
        });
    }
    match kind {
        DatasetKind::Wiki => load_wiki(path),
        DatasetKind::Mfeat => load_mfeat(path),
    }
}

/// Reads a whole text file, naming it on error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io { path: path.into(), source })
}
