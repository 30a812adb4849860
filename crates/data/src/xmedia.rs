//! Loader for PKU XMedia (Peng et al.): 20 classes, five media types, each with its own
//! train/test split and no pairing across media (the modalities are not aligned).
//!
//! Layout (see `datasets/README.md`): MATLAB files (v7.3 or v5; one per modality or all in
//! one) in a directory, holding for each modality prefix `img`, `txt`, `aud`, `vid`, `3d`
//! the variables `<p>_train_fea`, `<p>_test_fea` (one sample per MATLAB row) and
//! `<p>_train_lab`, `<p>_test_lab` (class-id vectors, 1-based as MATLAB writes them, or
//! 0-based when any id is 0; a multi-hot matrix is accepted too). The 3-D prefix also
//! reads `threed_...`, since a MATLAB variable name cannot start with a digit.

use std::path::Path;

use crate::dataset::{Dataset, Modality, Split};
use crate::error::{DataError, Result};
use crate::mat::{Dest, MatSet};
use crate::mat73::{read_features, sample_count};
use crate::matrix::{Labels, Matrix};

/// Modality names and the variable prefixes they are read from, in dataset order.
pub const XMEDIA_MODALITIES: [(&str, &str); 5] =
    [("image", "img"), ("text", "txt"), ("audio", "aud"), ("video", "vid"), ("3d", "3d")];

const HINT: &str = "PKU XMedia feature files (<p>_train_fea, <p>_test_fea, <p>_train_lab, <p>_test_lab \
                    for p = img, txt, aud, vid, 3d); datasets/README.md says where to get them";

/// Loads XMedia from a directory of MATLAB files (or one file holding every variable).
pub fn load_xmedia(path: &Path) -> Result<Dataset> {
    let set = MatSet::open(path, HINT)?;
    let mut raw = Vec::new();
    for (name, prefix) in XMEDIA_MODALITIES {
        let p =
            if prefix == "3d" && set.find("3d_train_fea").is_none() && set.find("threed_train_fea").is_some()
            {
                "threed"
            } else {
                prefix
            };
        let mut splits = Vec::new();
        for s in ["train", "test"] {
            let (fea, lab) = (format!("{p}_{s}_fea"), format!("{p}_{s}_lab"));
            let n = sample_count(&set, &lab, &[&fea])?;
            let dest: Vec<Dest> = (0..n).map(|i| Some((0, i))).collect();
            let [features] = read_features(&set, &fea, &dest, &[n])?;
            let [labels] = read_features(&set, &lab, &dest, &[n])?;
            splits.push((features, labels, lab));
        }
        let test = splits.pop();
        let train = splits.pop();
        if let (Some(tr), Some(te)) = (train, test) {
            if tr.0.cols() != te.0.cols() {
                return Err(DataError::Variable {
                    path: set.root.clone(),
                    name: format!("{p}_test_fea"),
                    message: format!(
                        "{} features per sample but {p}_train_fea has {}",
                        te.0.cols(),
                        tr.0.cols()
                    ),
                });
            }
            raw.push((name, tr, te));
        }
    }
    // Class ids are 1-based (MATLAB) unless some label vector holds a 0.
    let mut min_id = f32::INFINITY;
    let mut classes = 0usize;
    for (_, tr, te) in &raw {
        for (_, l, _) in [tr, te] {
            if l.cols() == 1 {
                min_id = l.data().iter().fold(min_id, |a, &b| a.min(b));
            } else {
                classes = classes.max(l.cols());
            }
        }
    }
    let base = if min_id == 0.0 { 0.0 } else { 1.0 };
    let mut ids_of = Vec::new();
    for (_, tr, te) in &raw {
        for (_, l, var) in [tr, te] {
            if l.cols() == 1 {
                let ids = class_ids(l, base).map_err(|m| DataError::Variable {
                    path: set.root.clone(),
                    name: var.clone(),
                    message: m,
                })?;
                classes = classes.max(ids.iter().max().map_or(0, |m| m + 1));
                ids_of.push(Some(ids));
            } else {
                ids_of.push(None);
            }
        }
    }
    let mut ids_iter = ids_of.into_iter();
    let mut modalities = Vec::new();
    for (name, tr, te) in raw {
        let mut split = |(features, l, var): (Matrix, Matrix, String)| -> Result<Split> {
            let labels = match ids_iter.next().flatten() {
                Some(ids) => Labels::from_class_ids(&ids, classes)?,
                None if l.cols() == classes => Labels::from_multi_hot(
                    l.rows(),
                    l.cols(),
                    l.data().iter().map(|&v| u8::from(v != 0.0)).collect(),
                )?,
                None => {
                    return Err(DataError::Variable {
                        path: set.root.clone(),
                        name: var,
                        message: format!(
                            "{} label columns, other label variables give {classes} classes",
                            l.cols()
                        ),
                    })
                }
            };
            Ok(Split { features, labels })
        };
        let train = split(tr)?;
        let test = split(te)?;
        modalities.push(Modality::new(name, train, test));
    }
    let ds = Dataset {
        name: "xmedia".into(),
        class_names: (0..classes).map(|c| format!("class {c}")).collect(),
        modalities,
        aligned: false,
    };
    ds.validate()?;
    Ok(ds)
}

/// Integral, in-range class ids shifted by `base`.
fn class_ids(l: &Matrix, base: f32) -> std::result::Result<Vec<usize>, String> {
    l.data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() != 0.0 || v < base {
                Err(format!("label {v} at row {i} is not a class id (ids are {}-based)", base as u8))
            } else {
                Ok((v - base) as usize)
            }
        })
        .collect()
}
