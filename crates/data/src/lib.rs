//! Datasets for seqmodal: loaders (`wiki`, `mfeat`), the synthetic benchmark, drift
//! transforms, splits, labels and per-modality standardisation.
//!
//! Every loader returns a [`Dataset`] whose labels are multi-hot (single-label data
//! is one-hot), so multi-label datasets fit without changes downstream.

mod dataset;
mod drift;
mod error;
mod matrix;
mod mfeat;
pub mod synthetic;
mod wiki;

use std::path::Path;

pub use dataset::{Dataset, Modality, Split};
pub use drift::Drift;
pub use error::{DataError, Result};
pub use matrix::{Labels, Matrix};
pub use mfeat::{load_mfeat, MFEAT_VIEWS};
pub use synthetic::{generate as generate_synthetic, SyntheticParams};
pub use wiki::load_wiki;

/// Dataset formats with a loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Wikipedia image–text (MAT v5 + split lists).
    Wiki,
    /// UCI Multiple Features, six views (CSV + split JSON).
    Mfeat,
    /// Generated in memory ([`synthetic`]); no files.
    Synthetic,
}

impl DatasetKind {
    /// All kinds, for error messages and help.
    pub const ALL: [DatasetKind; 3] = [DatasetKind::Wiki, DatasetKind::Mfeat, DatasetKind::Synthetic];

    /// The name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Wiki => "wiki",
            DatasetKind::Mfeat => "mfeat",
            DatasetKind::Synthetic => "synthetic",
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            DataError::UnknownKind(format!("unknown dataset kind '{s}' (known: {})", known.join(", ")))
        })
    }
}

/// Loads a dataset of `kind` from `path` (raw features; call [`Dataset::standardize`]).
/// The synthetic kind has no files: use [`generate_synthetic`].
pub fn load(kind: DatasetKind, path: &Path) -> Result<Dataset> {
    let loader: fn(&Path) -> Result<Dataset> = match kind {
        DatasetKind::Wiki => load_wiki,
        DatasetKind::Mfeat => load_mfeat,
        DatasetKind::Synthetic => {
            return Err(DataError::UnknownKind(
                "synthetic datasets are generated from [dataset] keys, not loaded from a path".into(),
            ))
        }
    };
    if !path.is_dir() {
        return Err(DataError::Missing {
            path: path.into(),
            hint: format!("{} dataset directory", kind.as_str()),
        });
    }
    loader(path)
}

/// Reads a whole text file, naming it on error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io { path: path.into(), source })
}
