//! Loader for the generic `.npz` format: one NumPy archive per dataset.
//!
//! Members (see `docs/experiments.md` and `datasets/README.md`): `<m>_train`, `<m>_test`
//! (features of modality `<m>`, float32/float64, shape (rows, features)), and labels
//! shared by aligned modalities (`labels_train`, `labels_test`) or per modality
//! (`<m>_labels_train`, `<m>_labels_test`): a (rows, classes) multi-hot matrix of
//! bool/uint8/int (or integral floats) or a (rows,) vector of 0-based class ids.
//! Written by `np.savez` (stored) or `np.savez_compressed` (deflate).
//!
//! Each member is streamed from the archive and converted chunk by chunk into the
//! dataset's `f32` matrix, so a large array is in memory once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Modality, Split};
use crate::error::{DataError, Result};
use crate::matrix::{Labels, Matrix};
use seqmodal_npy::{self as npy, RawLabels};

/// File name looked for when `path` is a directory.
pub const NPZ_FILE: &str = "dataset.npz";

/// Loads a dataset from an `.npz` file, or from `dataset.npz` inside a directory.
pub fn load_npz(path: &Path) -> Result<Dataset> {
    let file_path = if path.is_dir() { path.join(NPZ_FILE) } else { path.to_path_buf() };
    if !file_path.is_file() {
        return Err(DataError::Missing {
            path: file_path,
            hint: "npz dataset; datasets/README.md says how to make one with numpy".into(),
        });
    }
    let file = File::open(&file_path).map_err(|source| DataError::Io { path: file_path.clone(), source })?;
    // A buffered file, not a memory map: pages of a mapped file count towards the
    // process's resident memory, so a map would show the data twice.
    let zip = zip::ZipArchive::new(BufReader::with_capacity(1 << 20, file)).map_err(|e| DataError::Mat {
        path: file_path.clone(),
        message: format!("not a readable .npz (zip) archive: {e}"),
    })?;
    let names = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(|e| DataError::Mat { path: file_path.clone(), message: format!("bad member name: {e}") })?;
    let mut order: Vec<String> = Vec::new();
    let mut members: BTreeMap<String, String> = BTreeMap::new();
    for entry in &names {
        let Some(key) = entry.strip_suffix(".npy") else {
            return Err(var_err(&file_path, entry, "not a .npy member (written by np.savez?)"));
        };
        let modality = if let Some(m) = key.strip_suffix("_labels_train").or(key.strip_suffix("_labels_test"))
        {
            m
        } else if key == "labels_train" || key == "labels_test" {
            ""
        } else if let Some(m) = key.strip_suffix("_train").or(key.strip_suffix("_test")) {
            m
        } else {
            return Err(var_err(
                &file_path,
                key,
                "unexpected array: names are <modality>_train, <modality>_test, labels_train, labels_test \
                 or <modality>_labels_train/_test",
            ));
        };
        if !modality.is_empty() && !order.iter().any(|m| m == modality) {
            order.push(modality.to_string());
        }
        members.insert(key.to_string(), entry.clone());
    }
    let mut npz = Npz { path: file_path.clone(), zip, members };
    if order.is_empty() {
        return Err(DataError::Mat { path: file_path.clone(), message: "no <modality>_train arrays".into() });
    }
    let shared_train = npz.labels("labels_train")?;
    let shared_test = npz.labels("labels_test")?;
    let mut parts = Vec::new();
    for m in &order {
        let mut split = |s: &str| -> Result<(Matrix, RawLabelsRef)> {
            let key = format!("{m}_{s}");
            let features = npz.features(&key)?.ok_or_else(|| {
                var_err(&file_path, &key, "missing (every modality needs _train and _test)")
            })?;
            let own = npz.labels(&format!("{m}_labels_{s}"))?;
            let labels = match own {
                Some(l) => RawLabelsRef::Own(l),
                None => RawLabelsRef::Shared,
            };
            Ok((features, labels))
        };
        let train = split("train")?;
        let test = split("test")?;
        parts.push((m.clone(), train, test));
    }
    // The label space is the widest any label array needs.
    let mut classes = 0;
    for l in parts
        .iter()
        .flat_map(|(_, tr, te)| [&tr.1, &te.1])
        .filter_map(RawLabelsRef::own)
        .chain(shared_train.iter())
        .chain(shared_test.iter())
    {
        classes = classes.max(l.classes());
    }
    // Class ids size the label matrix: a corrupt id must not ask for terabytes.
    if classes > Labels::MAX_CLASSES {
        return Err(DataError::Parse {
            path: file_path,
            line: 0,
            message: format!(
                "labels need {classes} classes (largest class id + 1); at most {} are supported",
                Labels::MAX_CLASSES
            ),
        });
    }
    let mut aligned = true;
    let mut modalities = Vec::new();
    for (m, (ftr, ltr), (fte, lte)) in parts {
        let mut make = |s: &str, features: Matrix, l: RawLabelsRef| -> Result<Split> {
            let (key, raw) = match &l {
                RawLabelsRef::Own(raw) => (format!("{m}_labels_{s}"), raw),
                RawLabelsRef::Shared => {
                    let shared = if s == "train" { &shared_train } else { &shared_test };
                    let raw = shared.as_ref().ok_or_else(|| {
                        var_err(
                            &file_path,
                            &format!("{m}_labels_{s}"),
                            &format!("missing, and no labels_{s} either"),
                        )
                    })?;
                    (format!("labels_{s}"), raw)
                }
            };
            if matches!(l, RawLabelsRef::Own(_)) {
                aligned = false;
            }
            if raw.rows() != features.rows() {
                return Err(var_err(
                    &file_path,
                    &key,
                    &format!("{} label rows but {m}_{s} has {} rows", raw.rows(), features.rows()),
                ));
            }
            let labels = to_labels(raw, classes).map_err(|msg| var_err(&file_path, &key, &msg))?;
            Ok(Split { features, labels })
        };
        let train = make("train", ftr, ltr)?;
        let test = make("test", fte, lte)?;
        if train.features.cols() != test.features.cols() {
            return Err(var_err(
                &file_path,
                &format!("{m}_test"),
                &format!(
                    "{} feature columns but {m}_train has {}",
                    test.features.cols(),
                    train.features.cols()
                ),
            ));
        }
        modalities.push(Modality::new(m, train, test));
    }
    // Shared labels describe aligned rows only when every modality has the same row counts.
    aligned &= modalities.windows(2).all(|w| {
        w[0].train.features.rows() == w[1].train.features.rows()
            && w[0].test.features.rows() == w[1].test.features.rows()
    });
    let ds = Dataset {
        name: dataset_name(&file_path),
        class_names: (0..classes).map(|c| format!("class {c}")).collect(),
        modalities,
        aligned,
    };
    ds.validate()?;
    Ok(ds)
}

/// An open archive and its members by key (`image_train` -> `image_train.npy`).
struct Npz {
    path: PathBuf,
    zip: zip::ZipArchive<BufReader<File>>,
    members: BTreeMap<String, String>,
}

impl Npz {
    /// Opens member `key` and parses its `.npy` header (None when absent).
    fn open(&mut self, key: &str) -> Result<Option<(zip::read::ZipFile<'_, BufReader<File>>, npy::Header)>> {
        let Some(entry) = self.members.get(key) else { return Ok(None) };
        let mut f = self
            .zip
            .by_name(entry)
            .map_err(|e| var_err(&self.path, key, &format!("cannot read member: {e}")))?;
        let h = npy::read_header(&mut f).map_err(|e| var_err(&self.path, key, &e.to_string()))?;
        // The zip directory knows the member's size: a header announcing more data than that
        // is corrupt, and must not size an allocation first.
        if h.data_bytes() as u64 > f.size() {
            let message = format!(
                "header shape {:?} needs {} bytes of data but the member holds {}: truncated or corrupt",
                h.shape,
                h.data_bytes(),
                f.size()
            );
            return Err(var_err(&self.path, key, &message));
        }
        Ok(Some((f, h)))
    }

    /// A feature matrix, checked finite.
    fn features(&mut self, key: &str) -> Result<Option<Matrix>> {
        let path = self.path.clone();
        let Some((mut f, h)) = self.open(key)? else { return Ok(None) };
        if !h.dtype.is_float() {
            return Err(var_err(&path, key, "features must be float32 or float64"));
        }
        let (rows, cols, data) =
            npy::read_f32_matrix(&mut f, &h).map_err(|e| var_err(&path, key, &e.to_string()))?;
        let m = Matrix::new(rows, cols, data)?;
        if let Some((row, col, value)) = m.find_non_finite() {
            return Err(DataError::NonFinite {
                context: format!("{}: {key}", path.display()),
                row,
                col,
                value,
            });
        }
        Ok(Some(m))
    }

    /// A label array (multi-hot or class ids).
    fn labels(&mut self, key: &str) -> Result<Option<RawLabels>> {
        let path = self.path.clone();
        let Some((mut f, h)) = self.open(key)? else { return Ok(None) };
        npy::read_labels(&mut f, &h, Labels::MAX_CLASSES)
            .map(Some)
            .map_err(|e| var_err(&path, key, &e.to_string()))
    }
}

enum RawLabelsRef {
    Own(RawLabels),
    Shared,
}

impl RawLabelsRef {
    fn own(&self) -> Option<&RawLabels> {
        match self {
            RawLabelsRef::Own(l) => Some(l),
            RawLabelsRef::Shared => None,
        }
    }
}

/// Multi-hot labels in a label space of `classes` columns.
pub(crate) fn to_labels(raw: &RawLabels, classes: usize) -> std::result::Result<Labels, String> {
    match raw {
        RawLabels::Ids(ids) => Labels::from_class_ids(ids, classes).map_err(|e| e.to_string()),
        RawLabels::MultiHot { rows, classes: c, data } => {
            if *c != classes {
                return Err(format!("{c} label columns, other label arrays have {classes} classes"));
            }
            Labels::from_multi_hot(*rows, *c, data.clone()).map_err(|e| e.to_string())
        }
    }
}

fn var_err(path: &Path, name: &str, message: &str) -> DataError {
    DataError::Variable { path: path.into(), name: name.into(), message: message.into() }
}

/// `dir/dataset.npz` is named after `dir`; any other file after its stem.
fn dataset_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if stem == "dataset" {
        if let Some(dir) = path.parent().and_then(Path::file_name) {
            return dir.to_string_lossy().into_owned();
        }
    }
    stem
}
