//! Loader for PKU XMedia (Peng et al.): 20 classes, five media types, each with its own
//! train/test split and no pairing across media (the modalities are not aligned).
//!
//! Two layouts (see `datasets/README.md`), found by variable name across the MATLAB files
//! (v7.3 or v5) of a directory or in one file:
//!
//! - PKU's published `XMediaFeatures.mat` (as read by PKU's and Peng Hu's loaders, e.g.
//!   `penghu-cs/SDML` `data_loader.py`): features `I_tr_CNN`/`I_te_CNN` (image, CNN; else
//!   `I_tr`/`I_te`, BoVW), `T_tr_BOW`/`T_te_BOW` (text, bag of words; else `T_tr`/`T_te`,
//!   LDA), `A_tr`/`A_te` (audio, MFCC), `V_tr_CNN`/`V_te_CNN` (video frames, CNN; else
//!   `V_tr`/`V_te`), `d3_tr`/`d3_te` (3-D, LightField), and class columns
//!   `tr<M>Cat`/`te<M>Cat` for M = `Img`, `Txt`, `Aud`, `Vid`, `3d`;
//! - per-prefix names `<p>_train_fea`, `<p>_test_fea`, `<p>_train_lab`, `<p>_test_lab` for
//!   p = `img`, `txt`, `aud`, `vid`, `3d` (or `threed`).
//!
//! Features are one sample per MATLAB row; labels are class-id vectors (1-based as MATLAB
//! writes them, or 0-based when any id is 0) or multi-hot matrices.

use std::path::Path;

use crate::dataset::{Dataset, Modality, Split};
use crate::error::{DataError, Result};
use crate::mat::{Dest, MatSet};
use crate::mat73::{read_features, sample_count};
use crate::matrix::{class_ids, Labels, Matrix};

/// Modality names and the variable prefixes they are read from, in dataset order.
pub const XMEDIA_MODALITIES: [(&str, &str); 5] =
    [("image", "img"), ("text", "txt"), ("audio", "aud"), ("video", "vid"), ("3d", "3d")];

/// Feature variables (train, test) of one modality, in order of preference.
type FeaturePairs = &'static [(&'static str, &'static str)];

/// PKU `XMediaFeatures.mat`, per modality: feature variable pairs and the infix of the
/// category variables.
const PKU_LAYOUT: [(&str, FeaturePairs, &str); 5] = [
    ("image", &[("I_tr_CNN", "I_te_CNN"), ("I_tr", "I_te")], "Img"),
    ("text", &[("T_tr_BOW", "T_te_BOW"), ("T_tr", "T_te")], "Txt"),
    ("audio", &[("A_tr", "A_te")], "Aud"),
    ("video", &[("V_tr_CNN", "V_te_CNN"), ("V_tr", "V_te")], "Vid"),
    ("3d", &[("d3_tr", "d3_te")], "3d"),
];

const HINT: &str = "PKU XMedia features (XMediaFeatures.mat: I_tr_CNN, T_tr_BOW, A_tr, V_tr_CNN, d3_tr, \
                    trImgCat, ... or <p>_train_fea/<p>_train_lab for p = img, txt, aud, vid, 3d); \
                    datasets/README.md says where to get them";

/// The variables of one modality: `[train, test]` features and labels.
struct Vars {
    name: &'static str,
    features: [String; 2],
    labels: [String; 2],
}

/// The variables to read, by layout: PKU's names when the files have `trImgCat`.
fn layout(set: &MatSet) -> Vec<Vars> {
    if set.find("trImgCat").is_some() || set.find("trTxtCat").is_some() {
        return PKU_LAYOUT
            .iter()
            .map(|&(name, pairs, cat)| {
                let (tr, te) =
                    pairs.iter().copied().find(|(tr, _)| set.find(tr).is_some()).unwrap_or(pairs[0]);
                Vars {
                    name,
                    features: [tr.into(), te.into()],
                    labels: [format!("tr{cat}Cat"), format!("te{cat}Cat")],
                }
            })
            .collect();
    }
    XMEDIA_MODALITIES
        .iter()
        .map(|&(name, prefix)| {
            let p = if prefix == "3d"
                && set.find("3d_train_fea").is_none()
                && set.find("threed_train_fea").is_some()
            {
                "threed"
            } else {
                prefix
            };
            Vars {
                name,
                features: [format!("{p}_train_fea"), format!("{p}_test_fea")],
                labels: [format!("{p}_train_lab"), format!("{p}_test_lab")],
            }
        })
        .collect()
}

/// Loads XMedia from a directory of MATLAB files (or one file holding every variable).
pub fn load_xmedia(path: &Path) -> Result<Dataset> {
    let set = MatSet::open(path, HINT)?;
    let mut raw = Vec::new();
    for v in layout(&set) {
        let mut splits = Vec::new();
        for (fea, lab) in v.features.iter().zip(&v.labels) {
            let n = sample_count(&set, lab, &[fea])?;
            let dest: Vec<Dest> = (0..n).map(|i| Some((0, i))).collect();
            let [features] = read_features(&set, fea, &dest, &[n])?;
            let [labels] = read_features(&set, lab, &dest, &[n])?;
            splits.push((features, labels, lab.clone()));
        }
        let test = splits.pop();
        let train = splits.pop();
        if let (Some(tr), Some(te)) = (train, test) {
            if tr.0.cols() != te.0.cols() {
                return Err(DataError::Variable {
                    path: set.root.clone(),
                    name: v.features[1].clone(),
                    message: format!(
                        "{} features per sample but {} has {}",
                        te.0.cols(),
                        v.features[0],
                        tr.0.cols()
                    ),
                });
            }
            raw.push((v.name, tr, te));
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
                let ids = class_ids(l.data(), base).map_err(|m| DataError::Variable {
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
