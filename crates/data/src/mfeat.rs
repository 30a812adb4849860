//! Loader for UCI Multiple Features (handwritten digits, six views).
//!
//! Layout (see `datasets/mfeat/PROVENANCE.md`): `mfeat-{fac,fou,kar,mor,pix,zer}.csv`,
//! each a header line then 2000 rows of `d` features and the digit label as the
//! last field; `split_seed0_1500_500.json` holds 0-based row ids for `train` and `test`.
//! Row i is the same digit in every view, so the views are aligned.

use std::path::Path;

use crate::dataset::{Dataset, Modality, Split};
use crate::error::{DataError, Result};
use crate::matrix::{Labels, Matrix};
use crate::read_text;

/// The six views, in file (alphabetical) order.
pub const MFEAT_VIEWS: [&str; 6] = ["fac", "fou", "kar", "mor", "pix", "zer"];
const SPLIT_FILE: &str = "split_seed0_1500_500.json";

#[derive(serde::Deserialize)]
struct SplitFile {
    train: Vec<usize>,
    test: Vec<usize>,
}

/// Loads the six mfeat views from a directory (raw features, not standardised).
pub fn load_mfeat(dir: &Path) -> Result<Dataset> {
    let split_path = dir.join(SPLIT_FILE);
    if !split_path.is_file() {
        return Err(DataError::Missing { path: split_path, hint: "train/test row ids".into() });
    }
    let split: SplitFile = serde_json::from_str(&read_text(&split_path)?).map_err(|e| DataError::Parse {
        path: split_path.clone(),
        line: e.line(),
        message: format!("bad split file: {e}"),
    })?;
    // Each row once, in one split only: a repeated or shared id would train on test rows.
    let mut seen = std::collections::BTreeMap::new();
    for (name, ids) in [("train", &split.train), ("test", &split.test)] {
        for &id in ids {
            if let Some(first) = seen.insert(id, name) {
                return Err(DataError::Shape {
                    context: split_path.display().to_string(),
                    message: format!("row id {id} is listed in {name} and already in {first}: ids must be unique and the splits disjoint"),
                });
            }
        }
    }
    let mut labels_ref: Option<(Vec<usize>, String)> = None;
    let mut modalities = Vec::new();
    for view in MFEAT_VIEWS {
        let path = dir.join(format!("mfeat-{view}.csv"));
        if !path.is_file() {
            return Err(DataError::Missing { path, hint: format!("view '{view}'") });
        }
        let (features, labels) = read_view(&path)?;
        match &labels_ref {
            None => labels_ref = Some((labels, path.display().to_string())),
            Some((first, first_path)) => {
                if first.len() != labels.len() {
                    return Err(DataError::Shape {
                        context: path.display().to_string(),
                        message: format!(
                            "{} rows but {first_path} has {} (views must be row-aligned)",
                            labels.len(),
                            first.len()
                        ),
                    });
                }
                if first != &labels {
                    return Err(DataError::Shape {
                        context: path.display().to_string(),
                        message: format!("labels disagree with {first_path} (views must be row-aligned)"),
                    });
                }
            }
        }
        let n = features.rows();
        for (name, ids) in [("train", &split.train), ("test", &split.test)] {
            if let Some(&bad) = ids.iter().find(|&&i| i >= n) {
                return Err(DataError::Shape {
                    context: split_path.display().to_string(),
                    message: format!("{name} id {bad} out of range for {n} rows in {}", path.display()),
                });
            }
        }
        modalities.push((view, features));
    }
    let (ids, _) =
        labels_ref.ok_or_else(|| DataError::Missing { path: dir.into(), hint: "no views".into() })?;
    let classes = ids.iter().max().map_or(0, |m| m + 1);
    let all_labels = Labels::from_class_ids(&ids, classes)?;
    let modalities = modalities
        .into_iter()
        .map(|(view, f)| {
            Modality::new(
                view,
                Split { features: f.select(&split.train), labels: all_labels.select(&split.train) },
                Split { features: f.select(&split.test), labels: all_labels.select(&split.test) },
            )
        })
        .collect();
    let ds = Dataset {
        name: "mfeat".into(),
        class_names: (0..classes).map(|c| format!("digit {c}")).collect(),
        modalities,
        aligned: true,
    };
    ds.validate()?;
    Ok(ds)
}

/// Reads one view: header line, then rows of `d` features + integer label.
fn read_view(path: &Path) -> Result<(Matrix, Vec<usize>)> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate();
    let header_fields = match lines.next() {
        Some((_, h)) => h.trim_end_matches('\r').split(',').count(),
        None => return Err(DataError::Parse { path: path.into(), line: 1, message: "empty file".into() }),
    };
    if header_fields < 2 {
        return Err(DataError::Parse {
            path: path.into(),
            line: 1,
            message: "header must list the feature columns and the label column".into(),
        });
    }
    let d = header_fields - 1;
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != d + 1 {
            return Err(DataError::Parse {
                path: path.into(),
                line: i + 1,
                message: format!("{} fields, header has {}", fields.len(), d + 1),
            });
        }
        for (c, f) in fields[..d].iter().enumerate() {
            let v: f64 = f.trim().parse().map_err(|_| DataError::Parse {
                path: path.into(),
                line: i + 1,
                message: format!("column {c}: '{f}' is not a number"),
            })?;
            if !v.is_finite() {
                return Err(DataError::Parse {
                    path: path.into(),
                    line: i + 1,
                    message: format!("column {c}: non-finite value {v}"),
                });
            }
            data.push(v as f32);
        }
        let lab = fields[d].trim();
        labels.push(lab.parse::<usize>().map_err(|_| DataError::Parse {
            path: path.into(),
            line: i + 1,
            message: format!("label '{lab}' is not a non-negative integer"),
        })?);
    }
    Ok((Matrix::new(labels.len(), d, data)?, labels))
}
