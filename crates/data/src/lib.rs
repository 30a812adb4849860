//! Datasets for seqmodal: loaders (`wiki`, `mfeat`, `npz`, `mat73`, `xmedia`), the synthetic benchmark, drift
//! transforms, splits, labels and per-modality standardisation.
//!
//! Every loader returns a [`Dataset`] whose labels are multi-hot (single-label data
//! is one-hot), so multi-label datasets fit without changes downstream.

mod dataset;
mod drift;
mod error;
mod mat;
mod mat73;
mod mat_v5;
mod matrix;
mod mfeat;
mod npz;
pub mod synthetic;
mod wiki;
mod xmedia;

use std::path::Path;

pub use dataset::{Dataset, Modality, Split};
pub use drift::Drift;
pub use error::{DataError, Result};
pub use mat73::load_mat73;
pub use matrix::{Labels, Matrix};
pub use mfeat::{load_mfeat, MFEAT_VIEWS};
pub use npz::{load_npz, NPZ_FILE};
pub use synthetic::{generate as generate_synthetic, SyntheticParams};
pub use wiki::load_wiki;
pub use xmedia::{load_xmedia, XMEDIA_MODALITIES};

/// Dataset formats with a loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Wikipedia image–text (MAT v5 + split lists).
    Wiki,
    /// UCI Multiple Features, six views (CSV + split JSON).
    Mfeat,
    /// Generated in memory ([`synthetic`]); no files.
    Synthetic,
    /// One NumPy `.npz` archive: `<modality>_train/_test` arrays plus labels.
    Npz,
    /// MATLAB v7.3 image–text benchmarks (MIRFlickr-25K, NUS-WIDE, IAPR TC-12).
    Mat73,
    /// PKU XMedia: five modalities from per-modality MATLAB feature files.
    Xmedia,
}

impl DatasetKind {
    /// All kinds, for error messages and help.
    pub const ALL: [DatasetKind; 6] = [
        DatasetKind::Wiki,
        DatasetKind::Mfeat,
        DatasetKind::Synthetic,
        DatasetKind::Npz,
        DatasetKind::Mat73,
        DatasetKind::Xmedia,
    ];

    /// The name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Wiki => "wiki",
            DatasetKind::Mfeat => "mfeat",
            DatasetKind::Synthetic => "synthetic",
            DatasetKind::Npz => "npz",
            DatasetKind::Mat73 => "mat73",
            DatasetKind::Xmedia => "xmedia",
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

/// How a loaded dataset is split (`[dataset]` keys `queries`, `train`, `seed`).
///
/// Three parts, as in the DCMH-style protocol: the queries (test split), the retrieval
/// database, and the training rows, a subset of the database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Number of query (test) rows drawn from an unsplit file (`mat73` with `IAll/YAll/LAll`);
    /// every other row is the database.
    pub queries: Option<usize>,
    /// Number of training rows drawn from each modality's database (default: the whole
    /// database); the database stays whole ([`Dataset::subsample_training`]).
    pub train: Option<usize>,
    /// Seed of the query and training draws.
    pub seed: u64,
}

/// Loads a dataset of `kind` from `path` (raw features; call [`Dataset::standardize`]).
/// The synthetic kind has no files: use [`generate_synthetic`].
pub fn load(kind: DatasetKind, path: &Path) -> Result<Dataset> {
    load_with(kind, path, &LoadOptions::default())
}

/// [`load`] with split settings: `queries` (only `mat73` files without their own split
/// draw queries; an error elsewhere) and `train` (a training subset of the database, any kind).
pub fn load_with(kind: DatasetKind, path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    if opts.queries.is_some() && kind != DatasetKind::Mat73 {
        return Err(DataError::Setting {
            key: "queries".into(),
            message: format!("'{}' datasets come with their own queries (test split)", kind.as_str()),
        });
    }
    let mut ds = load_split(kind, path, opts)?;
    if let Some(train) = opts.train {
        ds.subsample_training(train, opts.seed)?;
    }
    Ok(ds)
}

/// Loads queries and database (= training split) of a dataset.
fn load_split(kind: DatasetKind, path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let loader: fn(&Path) -> Result<Dataset> = match kind {
        DatasetKind::Wiki => load_wiki,
        DatasetKind::Mfeat => load_mfeat,
        // These take a file or a directory and name what is missing themselves.
        DatasetKind::Npz => return load_npz(path),
        DatasetKind::Mat73 => return mat73::load_queries_database(path, opts),
        DatasetKind::Xmedia => return load_xmedia(path),
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
