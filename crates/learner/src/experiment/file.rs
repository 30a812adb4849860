//! The experiment file as written: the serde schema of every section, parsed with spans
//! so the checker ([`super::check`]) can name the line of every value.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{LearnerError, Result};
pub use crate::keys::LearnerSection;

/// Raw experiment file, as written by a user (every optional key may be absent).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// Experiment name (default output dir `runs/<name>/`).
    pub name: Spanned<String>,
    /// Seed of initialisation, shuffling and sampling.
    pub seed: Option<u64>,
    /// `[dataset]`
    pub dataset: DatasetSection,
    /// `[model]`
    #[serde(default)]
    pub model: ModelSection,
    /// `[learner]`
    pub learner: LearnerSection,
    /// `[train]`
    #[serde(default)]
    pub train: TrainSection,
    /// `[[stages]]`
    #[serde(default)]
    pub stages: Vec<StageSection>,
    /// `[eval]`
    #[serde(default)]
    pub eval: EvalSection,
}

/// `[dataset]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// Loader: `wiki`, `mfeat`, `synthetic`, `npz`, `mat73` or `xmedia`.
    pub kind: Spanned<String>,
    /// Directory (or, for `npz`/`mat73`, file) of the dataset (not for `synthetic`).
    pub path: Option<Spanned<String>>,
    /// Standardise each modality with train-split statistics (default true).
    pub standardize: Option<bool>,
    /// `synthetic`: modality names.
    pub modalities: Option<Spanned<Vec<String>>>,
    /// `synthetic`: feature width per modality.
    pub dims: Option<Spanned<Vec<i64>>>,
    /// `synthetic`: number of classes.
    pub classes: Option<Spanned<i64>>,
    /// `synthetic`: `[min, max]` labels per item (`[1, 1]`: single-label).
    pub labels_per_item: Option<Spanned<Vec<i64>>>,
    /// `synthetic`: training (= database) rows generated per modality; file kinds: training
    /// rows drawn from each modality's database (default: all of it; the database stays whole).
    pub train: Option<Spanned<i64>>,
    /// `synthetic`: test (query) rows generated per modality.
    pub test: Option<Spanned<i64>>,
    /// `mat73` with one `IAll/YAll/LAll` set: query rows drawn from it (the rest is the database).
    pub queries: Option<Spanned<i64>>,
    /// `synthetic`: latent width.
    pub latent: Option<Spanned<i64>>,
    /// `synthetic`: latent noise around the class prototypes.
    pub spread: Option<Spanned<f64>>,
    /// `synthetic`: per-modality feature noise.
    pub noise: Option<Spanned<f64>>,
    /// `synthetic`: weight of the nonlinear (tanh) part of each modality's map.
    pub nonlinearity: Option<Spanned<f64>>,
    /// `synthetic`: seed of the generated data; file kinds: seed of the query and training
    /// draws (default 0; independent of the run seed).
    pub seed: Option<u64>,
    /// Fraction of each modality's training rows drawn as validation queries (the rest is
    /// the training set and the database; the test split is not used). Any kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Spanned<f64>>,
}

/// `[model]` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Code length (default 64).
    pub bits: Option<Spanned<i64>>,
    /// Hidden width (default 512).
    pub hidden: Option<Spanned<i64>>,
    /// `per-modality` (default) or `shared-pad`.
    pub adapter: Option<Spanned<String>>,
    /// Weight of the classification term (default 1).
    pub classification: Option<Spanned<f64>>,
    /// Weight of the pairwise term (default 1).
    pub pairwise: Option<Spanned<f64>>,
    /// Weight of the quantisation term (default 0.1).
    pub quantization: Option<Spanned<f64>>,
}

/// `[train]` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Epochs per stage (default 30).
    pub epochs: Option<Spanned<i64>>,
    /// Batch size (default 128).
    pub batch: Option<Spanned<i64>>,
    /// Adam learning rate (default 1e-3).
    pub lr: Option<Spanned<f64>>,
    /// Also checkpoint every this many epochs inside a stage (default: after stages only).
    pub checkpoint_every: Option<Spanned<i64>>,
}

/// One `[[stages]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSection {
    /// The modality whose training data this stage sees.
    pub modality: Spanned<String>,
    /// Optional: only training rows with one of these (0-based) classes.
    pub classes: Option<Spanned<Vec<i64>>>,
    /// Optional per-stage override of `[train] epochs`.
    pub epochs: Option<Spanned<i64>>,
    /// Optional drift of this stage's data (training rows and the modality's queries).
    pub drift: Option<Spanned<DriftSection>>,
    /// Optional: expand into this many consecutive stages of the same modality; drift
    /// ramps (`{ from, to }`) move linearly across them.
    pub repeat: Option<Spanned<i64>>,
}

/// A drift value: fixed, or a linear ramp over the stage's repeats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RampValue {
    /// The same value in every repeat.
    Fixed(f64),
    /// `from` in the first repeat, `to` in the last, linear in between.
    Ramp {
        /// First value.
        from: f64,
        /// Last value.
        to: f64,
    },
}

impl RampValue {
    /// The value in repeat `k` of `n` (0-based).
    pub fn at(self, k: usize, n: usize) -> f64 {
        match self {
            RampValue::Fixed(v) => v,
            RampValue::Ramp { from, to } if n > 1 => from + (to - from) * k as f64 / (n - 1) as f64,
            RampValue::Ramp { from, .. } => from,
        }
    }
}

/// A stage's `drift = { ... }` table (see docs/experiments.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSection {
    /// Gaussian feature noise (std, in standardised units).
    pub noise: Option<RampValue>,
    /// Rotation angle in degrees.
    pub rotation: Option<RampValue>,
    /// Feature scale factor.
    pub scale: Option<RampValue>,
    /// Shift along a fixed random direction, in std units.
    pub shift: Option<RampValue>,
    /// Probability of zeroing each feature.
    pub dropout: Option<RampValue>,
    /// Relative class frequencies of the training rows, one weight per class.
    pub class_prior: Option<Vec<f64>>,
}

/// `[eval]` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Metrics (default `["map"]`); `map` is always computed.
    pub metrics: Option<Vec<Spanned<String>>>,
    /// Database codes of earlier modalities: `reencode` (default) or `frozen`.
    pub database: Option<Spanned<String>>,
}

impl ExperimentFile {
    /// Parses TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| LearnerError::Syntax { path: path.into(), message: e.to_string() })
    }

    /// Reads and parses a file, applying `--set key=value` overrides first.
    pub fn read(path: &Path, overrides: &[String]) -> Result<(Self, String)> {
        let original =
            std::fs::read_to_string(path).map_err(|source| LearnerError::Io { path: path.into(), source })?;
        let text = crate::overrides::apply(&original, overrides, path)?;
        match Self::parse(&text, path) {
            Ok(file) => Ok((file, text)),
            // The file parses without the overrides: blame the first override that breaks it,
            // not a line of the merged text the user never wrote.
            Err(e) if !overrides.is_empty() && Self::parse(&original, path).is_ok() => {
                for k in 0..overrides.len() {
                    let partial = crate::overrides::apply(&original, &overrides[..=k], path)?;
                    if let Err(pe) = toml::from_str::<Self>(&partial) {
                        return Err(LearnerError::Override {
                            assignment: overrides[k].clone(),
                            message: crate::overrides::plain_message(pe.message()),
                        });
                    }
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}
