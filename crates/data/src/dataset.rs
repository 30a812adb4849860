//! A multimodal dataset: named modalities with train, test (query) and retrieval-database
//! splits.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};
use crate::matrix::{Labels, Matrix};

/// Salt of the training-subset draw, so it is not the query draw of the same seed.
const TRAIN_DRAW: u64 = 0x7452_4149_4e5f_5355;
/// Salt of the validation draw, so it is neither the query nor the training-subset draw.
const VALIDATION_DRAW: u64 = 0x5641_4c49_4441_5445;

/// One split (train or test) of one modality: features and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Features, one row per sample.
    pub features: Matrix,
    /// Multi-hot labels, one row per sample.
    pub labels: Labels,
}

impl Split {
    /// The rows `rows` of this split, in that order.
    pub fn select(&self, rows: &[usize]) -> Split {
        Split { features: self.features.select(rows), labels: self.labels.select(rows) }
    }
}

/// One modality (view): a name, its training and test (query) splits and, when it is more
/// than the training split, its retrieval database.
#[derive(Clone, Debug, PartialEq)]
pub struct Modality {
    /// Name used in experiment files (`image`, `text`, `fac`, ...).
    pub name: String,
    /// Training split: the rows learners train on (and the database when `database` is `None`).
    pub train: Split,
    /// Test split; the queries at evaluation.
    pub test: Split,
    /// Retrieval database when it is not the training split: a superset of it, e.g. every
    /// non-query row while training uses a 10 000-row subset ([`Dataset::subsample_training`]).
    pub database: Option<Split>,
}

impl Modality {
    /// A modality whose training split is also its retrieval database.
    pub fn new(name: impl Into<String>, train: Split, test: Split) -> Modality {
        Modality { name: name.into(), train, test, database: None }
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.train.features.cols()
    }

    /// The retrieval database: `database` if set, else the training split.
    pub fn database(&self) -> &Split {
        self.database.as_ref().unwrap_or(&self.train)
    }
}

/// `k` of the rows `0..n`, drawn with a seeded shuffle and returned in ascending order.
pub(crate) fn draw_rows(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    all.truncate(k);
    all.sort_unstable();
    all
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
            let splits =
                [("train", Some(&m.train)), ("test", Some(&m.test)), ("database", m.database.as_ref())];
            for (split_name, split) in splits.into_iter().filter_map(|(n, s)| Some((n, s?))) {
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

    /// Keeps `train` rows of every modality's database for training, drawn with a seeded
    /// shuffle (in database order); the database itself stays whole. Modalities with the
    /// same database size get the same rows, so aligned datasets stay aligned. `train`
    /// equal to the database size changes nothing. Errors (`dataset.train`) when a modality
    /// has fewer database rows than `train`.
    pub fn subsample_training(&mut self, train: usize, seed: u64) -> Result<()> {
        for m in &self.modalities {
            let n = m.database().features.rows();
            if train == 0 || train > n {
                return Err(DataError::Setting {
                    key: "train".into(),
                    message: format!(
                        "{train} training rows asked, but modality '{}' of dataset '{}' has {n} database rows \
                         (training rows are drawn from the database)",
                        m.name, self.name
                    ),
                });
            }
        }
        for m in &mut self.modalities {
            let n = m.database().features.rows();
            if train == n {
                continue;
            }
            let rows = draw_rows(n, train, seed ^ TRAIN_DRAW);
            let subset = m.database().select(&rows);
            let old_train = std::mem::replace(&mut m.train, subset);
            if m.database.is_none() {
                m.database = Some(old_train);
            }
        }
        Ok(())
    }

    /// Replaces the evaluation protocol by a validation one drawn from the training rows only:
    /// a seeded `fraction` of each modality's training rows becomes its queries, the other
    /// training rows are both what learners train on and the retrieval database, and the
    /// test split (and any larger database) is dropped, so nothing of it can be seen. On an
    /// aligned dataset every modality gets the same row indices (rows stay paired); otherwise
    /// each modality has its own draw. Errors (`dataset.validation`) when `fraction` is not in
    /// (0, 1) or leaves a modality without a query or without a training row.
    pub fn validation_split(&mut self, fraction: f64, seed: u64) -> Result<()> {
        if !(fraction.is_finite() && fraction > 0.0 && fraction < 1.0) {
            return Err(DataError::Setting {
                key: "validation".into(),
                message: format!("must be a fraction in (0, 1), got {fraction}"),
            });
        }
        let rows: Vec<usize> = self.modalities.iter().map(|m| m.train.features.rows()).collect();
        if self.aligned && rows.windows(2).any(|w| w[0] != w[1]) {
            return Err(DataError::Setting {
                key: "validation".into(),
                message: format!(
                    "dataset '{}' is aligned but its modalities have different training rows ({rows:?})",
                    self.name
                ),
            });
        }
        for (m, &n) in self.modalities.iter().zip(&rows) {
            let k = validation_rows(n, fraction);
            if k == 0 || k == n {
                return Err(DataError::Setting {
                    key: "validation".into(),
                    message: format!(
                        "{fraction} of the {n} training rows of modality '{}' (dataset '{}') is {k} queries, \
                         leaving {} training rows: both must be at least 1",
                        m.name,
                        self.name,
                        n - k
                    ),
                });
            }
        }
        for (i, (m, &n)) in self.modalities.iter_mut().zip(&rows).enumerate() {
            // Aligned: one draw for all (same n, same seed); otherwise one draw per modality.
            let salt = if self.aligned { 0 } else { i as u64 + 1 };
            let queries = draw_rows(n, validation_rows(n, fraction), seed ^ VALIDATION_DRAW ^ salt);
            let mut is_query = vec![false; n];
            queries.iter().for_each(|&r| is_query[r] = true);
            let rest: Vec<usize> = (0..n).filter(|&r| !is_query[r]).collect();
            m.test = m.train.select(&queries);
            m.train = m.train.select(&rest);
            m.database = None;
        }
        Ok(())
    }

    /// Standardises every modality to zero mean and unit variance per feature, with
    /// statistics fitted on the training split only (test and database rows use the train
    /// statistics, so no test information leaks into training). Constant features get scale 1.
    pub fn standardize(&mut self) {
        for m in &mut self.modalities {
            let (mean, scale) = fit_standardizer(&m.train.features);
            apply_standardizer(&mut m.train.features, &mean, &scale);
            apply_standardizer(&mut m.test.features, &mean, &scale);
            if let Some(db) = &mut m.database {
                apply_standardizer(&mut db.features, &mean, &scale);
            }
        }
    }
}

/// Validation queries of `n` training rows at `fraction`: rounded to the nearest row.
fn validation_rows(n: usize, fraction: f64) -> usize {
    (n as f64 * fraction).round() as usize
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
