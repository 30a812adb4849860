//! Loader for the Wikipedia image–text dataset (Rasiwasia et al. 2010).
//!
//! Layout (see `datasets/wiki/PROVENANCE.md`): `raw_features.mat` (MAT v5) with
//! `I_tr`/`I_te` (128-d SIFT BoW) and `T_tr`/`T_te` (10-d LDA), plus
//! `trainset_txt_img_cat.list` / `testset_txt_img_cat.list` whose row i labels
//! row i of the matrices (category 1..10 in the last tab-separated field), and
//! `categories.list` with the class names.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Modality, Split};
use crate::error::{DataError, Result};
use crate::matrix::{Labels, Matrix};
use crate::read_text;

/// Loads the Wikipedia dataset from a directory (raw features, not standardised).
pub fn load_wiki(dir: &Path) -> Result<Dataset> {
    let mat_path = require(dir, "raw_features.mat", "MAT v5 file with I_tr, I_te, T_tr, T_te")?;
    let class_names = read_categories(&require(dir, "categories.list", "one class name per line")?)?;
    let train_ids =
        read_list(&require(dir, "trainset_txt_img_cat.list", "train split labels")?, class_names.len())?;
    let test_ids =
        read_list(&require(dir, "testset_txt_img_cat.list", "test split labels")?, class_names.len())?;

    let bytes =
        std::fs::read(&mat_path).map_err(|source| DataError::Io { path: mat_path.clone(), source })?;
    let mat =
        crate::mat_v5::parse(&bytes).map_err(|message| DataError::Mat { path: mat_path.clone(), message })?;
    let classes = class_names.len();
    let train_labels = Labels::from_class_ids(&train_ids, classes)?;
    let test_labels = Labels::from_class_ids(&test_ids, classes)?;
    let mut modalities = Vec::new();
    for (name, tr, te) in [("image", "I_tr", "I_te"), ("text", "T_tr", "T_te")] {
        let train = mat_matrix(&mat, &mat_path, tr)?;
        let test = mat_matrix(&mat, &mat_path, te)?;
        check_rows(&mat_path, tr, &train, train_ids.len(), "trainset_txt_img_cat.list")?;
        check_rows(&mat_path, te, &test, test_ids.len(), "testset_txt_img_cat.list")?;
        modalities.push(Modality::new(
            name,
            Split { features: train, labels: train_labels.clone() },
            Split { features: test, labels: test_labels.clone() },
        ));
    }
    let ds = Dataset { name: "wiki".into(), class_names, modalities, aligned: true };
    ds.validate()?;
    Ok(ds)
}

fn require(dir: &Path, file: &str, hint: &str) -> Result<PathBuf> {
    let p = dir.join(file);
    if p.is_file() {
        Ok(p)
    } else {
        Err(DataError::Missing { path: p, hint: hint.into() })
    }
}

fn check_rows(path: &Path, var: &str, m: &Matrix, expected: usize, list: &str) -> Result<()> {
    if m.rows() != expected {
        return Err(DataError::Shape {
            context: format!("{}: variable {var}", path.display()),
            message: format!("{} rows but {list} has {expected} lines", m.rows()),
        });
    }
    Ok(())
}

/// Reads a 2-D real numeric variable (MAT stores column-major) as a row-major f32 matrix.
fn mat_matrix(mat: &matfile::MatFile, path: &Path, name: &str) -> Result<Matrix> {
    let arr = mat.find_by_name(name).ok_or_else(|| DataError::Mat {
        path: path.to_path_buf(),
        message: format!("variable '{name}' not found"),
    })?;
    let size = arr.size();
    if size.len() != 2 {
        return Err(DataError::Mat {
            path: path.to_path_buf(),
            message: format!("variable '{name}' has {} dimensions, expected 2", size.len()),
        });
    }
    let (rows, cols) = (size[0], size[1]);
    let col_major: Vec<f64> = match arr.data() {
        matfile::NumericData::Double { real, .. } => real.clone(),
        matfile::NumericData::Single { real, .. } => real.iter().map(|&v| v as f64).collect(),
        _ => {
            return Err(DataError::Mat {
                path: path.to_path_buf(),
                message: format!("variable '{name}' is not a floating-point matrix"),
            })
        }
    };
    let mut data = vec![0f32; rows * cols];
    for c in 0..cols {
        for r in 0..rows {
            data[r * cols + c] = col_major[c * rows + r] as f32;
        }
    }
    Matrix::new(rows, cols, data)
}

fn read_categories(path: &Path) -> Result<Vec<String>> {
    let text = read_text(path)?;
    let names: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.is_empty() {
        return Err(DataError::Parse { path: path.into(), line: 1, message: "no class names".into() });
    }
    Ok(names)
}

/// Parses `text_id<TAB>image_id<TAB>category` lines into 0-based class ids.
fn read_list(path: &Path, classes: usize) -> Result<Vec<usize>> {
    let text = read_text(path)?;
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let field = line.split('\t').nth(2).ok_or_else(|| DataError::Parse {
            path: path.into(),
            line: i + 1,
            message: "expected 3 tab-separated fields: text_id, image_id, category".into(),
        })?;
        let cat: usize = field.trim().parse().map_err(|_| DataError::Parse {
            path: path.into(),
            line: i + 1,
            message: format!("category '{}' is not an integer", field.trim()),
        })?;
        if cat == 0 || cat > classes {
            return Err(DataError::Parse {
                path: path.into(),
                line: i + 1,
                message: format!("category {cat} outside 1..={classes}"),
            });
        }
        ids.push(cat - 1);
    }
    Ok(ids)
}
