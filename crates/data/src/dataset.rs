//! A multimodal dataset: named modalities with train (retrieval) and test (query) splits.

use crate::error::{DataError, Result};
use crate::matrix::{Labels, Matrix};

/// One split (train or test) of one modality: features and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Features, one row per sample.
    pub features: Matrix,
    /// Multi-hot labels, one row per sample.
    pub labels: Labels,
}

/// One modality (view): a name and its two splits.
#[derive(Clone, Debug, PartialEq)]
pub struct Modality {
    /// Name used in experiment files (`image`, `text`, `fac`, ...).
    pub name: String,
    /// Training split; also the retrieval database at evaluation.
    pub train: Split,
    /// Test split; the queries at evaluation.
    pub test: Split,
}

impl Modality {
    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.train.features.cols()
    }
}

/// A dataset of several modalities sharing one label space.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Short dataset name (`wiki`, `mfeat`).
    pub name: String,
    /// Class names, in label-column order.
    pub class_names: Vec<String>,
    /// The modalities in file order.
    pub modalities: Vec<Modality>,
    /// Whether row i of every modality's split is the same underlying item (aligned pairs).
    pub aligned: bool,
}

impl Dataset {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Modality by name.
    pub fn modality(&self, name: &str) -> Option<&Modality> {
        self.modalities.iter().find(|m| m.name == name)
    }

    /// Index of a modality by name.
    pub fn modality_index(&self, name: &str) -> Option<usize> {
        self.modalities.iter().position(|m| m.name == name)
    }

    /// Names of all modalities, in dataset order.
    pub fn modality_names(&self) -> Vec<String> {
        self.modalities.iter().map(|m| m.name.clone()).collect()
    }

    /// Checks shapes, label widths, row counts and finiteness of every split.
    pub fn validate(&self) -> Result<()> {
        let classes = self.classes();
        for m in &self.modalities {
            for (split_name, split) in [("train", &m.train), ("test", &m.test)] {
                let ctx = format!("dataset '{}', modality '{}', {split_name} split", self.name, m.name);
                if split.features.rows() != split.labels.rows() {
                    return Err(DataError::Shape {
                        context: ctx,
                        message: format!(
                            "{} feature rows but {} label rows",
                            split.features.rows(),
                            split.labels.rows()
                        ),
                    });
                }
                if split.labels.classes() != classes {
                    return Err(DataError::Shape {
                        context: ctx,
                        message: format!(
                            "{} label columns, dataset has {classes} classes",
                            split.labels.classes()
                        ),
                    });
                }
                if split.features.cols() != m.dim() {
                    return Err(DataError::Shape {
                        context: ctx,
                        message: format!(
                            "{} feature columns, train split has {}",
                            split.features.cols(),
                            m.dim()
                        ),
                    });
                }
                if split.features.rows() == 0 {
                    return Err(DataError::Shape { context: ctx, message: "no rows".into() });
                }
                if let Some((row, col, value)) = split.features.find_non_finite() {
                    return Err(DataError::NonFinite { context: ctx, row, col, value });
                }
            }
        }
        Ok(())
    }

    /// Standardises every modality to zero mean and unit variance per feature, with
    /// statistics fitted on the training split only (test rows use the train statistics,
    /// so no test information leaks into training). Constant features get scale 1.
    pub fn standardize(&mut self) {
        for m in &mut self.modalities {
            let (mean, scale) = fit_standardizer(&m.train.features);
            apply_standardizer(&mut m.train.features, &mean, &scale);
            apply_standardizer(&mut m.test.features, &mean, &scale);
        }
    }
}

/// Per-column mean and 1/std (population std, f64 accumulation).
fn fit_standardizer(x: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.rows(), x.cols());
    let mut mean = vec![0f64; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(x.row(i)) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut var = vec![0f64; d];
    for i in 0..n {
        for ((s, &v), m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
            *s += (v as f64 - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .map(|s| {
            let sd = (s / n.max(1) as f64).sqrt();
            if sd > 1e-12 {
                1.0 / sd
            } else {
                1.0
            }
        })
        .collect();
    (mean, scale)
}

fn apply_standardizer(x: &mut Matrix, mean: &[f64], scale: &[f64]) {
    let d = x.cols();
    for (i, v) in x.data_mut().iter_mut().enumerate() {
        let c = i % d;
        *v = ((*v as f64 - mean[c]) * scale[c]) as f32;
    }
}
