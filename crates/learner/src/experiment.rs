//! Experiment files: the raw TOML form ([`ExperimentFile`]), validated once into the
//! typed, checked [`Experiment`] that everything downstream trusts.
//!
//! Parsing rejects unknown keys and wrong types (toml names line and key); `check`
//! rejects values out of range, unknown learners, metrics and adapters; and
//! `check_dataset` rejects modalities and classes the dataset does not have — each
//! error names the file, the line and the dotted key.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use seqmodal_data::{Dataset, DatasetKind, Drift, LoadOptions, SyntheticParams};
use seqmodal_hamming::Metric;
use seqmodal_model::{AdapterKind, LossWeights};

use crate::error::{LearnerError, Result};
use crate::learners::{LearnerKind, MetaObjective};

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

/// `[learner]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerSection {
    /// Strategy name.
    pub kind: Spanned<String>,
    /// Samples kept from earlier stages, over all of them (default 0; 200 for replay learners).
    pub memory: Option<Spanned<i64>>,
    /// Memory samples per step (default: `[train] batch`).
    pub replay_batch: Option<Spanned<i64>>,
    /// EWC penalty strength.
    pub lambda: Option<Spanned<f64>>,
    /// Online-EWC decay of the old Fisher.
    pub gamma: Option<Spanned<f64>>,
    /// EWC: rows of a stage whose per-sample gradients estimate its Fisher.
    pub fisher_samples: Option<Spanned<i64>>,
    /// SI penalty strength.
    pub c: Option<Spanned<f64>>,
    /// SI damping.
    pub xi: Option<Spanned<f64>>,
    /// Distillation weight (LwF, DER++ logits, meta without memory).
    pub alpha: Option<Spanned<f64>>,
    /// DER++ label-replay weight; MER within-batch Reptile rate.
    pub beta: Option<Spanned<f64>>,
    /// LwF softmax temperature.
    pub temperature: Option<Spanned<f64>>,
    /// Inner-loop (fast-weight) learning rate of `meta` / `mer`.
    pub inner_lr: Option<Spanned<f64>>,
    /// Inner-loop steps of `meta` / `mer`.
    pub inner_steps: Option<Spanned<i64>>,
    /// Slow (outer) learning rate of `meta`.
    pub meta_lr: Option<Spanned<f64>>,
    /// `meta`: first-order meta-gradient (true); false adds the Hessian term of `maml`
    /// by finite-difference Hessian-vector products.
    pub first_order: Option<Spanned<bool>>,
    /// `meta`: std of Gaussian noise added to replayed (standardised) features.
    pub replay_noise: Option<Spanned<f64>>,
    /// `meta`: take the meta step (true); false is the ablation θ' = θ.
    pub meta_step: Option<Spanned<bool>>,
    /// `meta`: the meta objective, `"maml"` or `"alternating"`.
    pub meta_objective: Option<Spanned<String>>,
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

/// How the retrieval database of a modality is encoded at each evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabasePolicy {
    /// Re-encode with the current model.
    Reencode,
    /// Keep the codes made when the modality was last trained (untrained: current model).
    Frozen,
}

impl DatabasePolicy {
    /// Name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabasePolicy::Reencode => "reencode",
            DatabasePolicy::Frozen => "frozen",
        }
    }
}

/// A checked experiment: every value typed and in range.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    /// The file it came from (for messages).
    pub source: PathBuf,
    /// Experiment name.
    pub name: String,
    /// Seed.
    pub seed: u64,
    /// Dataset to load.
    pub dataset: DatasetSpec,
    /// Model hyper-parameters (dataset-dependent sizes are filled at run time).
    pub model: ModelSpec,
    /// Learner and its keys.
    pub learner: LearnerSpec,
    /// Default training settings.
    pub train: TrainSpec,
    /// The stage schedule.
    pub stages: Vec<StageSpec>,
    /// Metrics, `map` first.
    pub metrics: Vec<Metric>,
    /// Database encoding policy.
    pub database: DatabasePolicy,
}

/// Checked `[dataset]`.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// Loader.
    pub kind: DatasetKind,
    /// Directory as written in the file (empty for `synthetic`).
    pub path: String,
    /// Standardise per modality.
    pub standardize: bool,
    /// Generator settings of a `synthetic` dataset.
    pub synthetic: Option<SyntheticParams>,
    /// Query/database/training split settings of a file dataset (default for `synthetic`).
    pub load: LoadOptions,
    /// Lines of the `queries` and `train` keys (0 when absent), for errors found on loading.
    pub split_lines: (usize, usize),
}

/// Most stages one `[[stages]]` entry may expand into with `repeat`.
pub const MAX_REPEAT: usize = 1000;

/// Longest code seqmodal trains (the Hamming engine itself takes any length).
pub const MAX_BITS: usize = 4096;

/// Checked `[model]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Code length.
    pub bits: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Adapter layout.
    pub adapter: AdapterKind,
    /// Loss weights.
    pub loss: LossWeights,
}

/// Checked `[learner]`: every key of the chosen kind, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnerSpec {
    /// Strategy.
    pub kind: LearnerKind,
    /// Memory budget in samples (0 for learners without memory).
    pub memory: usize,
    /// Line of the `memory` key (0 when absent), for dataset-dependent errors.
    pub memory_line: usize,
    /// Memory samples per step.
    pub replay_batch: usize,
    /// EWC penalty strength.
    pub lambda: f64,
    /// Online-EWC decay.
    pub gamma: f64,
    /// EWC Fisher sample size.
    pub fisher_samples: usize,
    /// SI strength.
    pub c: f64,
    /// SI damping.
    pub xi: f64,
    /// Distillation weight.
    pub alpha: f64,
    /// DER++ label weight / MER Reptile rate.
    pub beta: f64,
    /// LwF temperature.
    pub temperature: f64,
    /// Inner learning rate.
    pub inner_lr: f64,
    /// Inner steps.
    pub inner_steps: usize,
    /// Outer learning rate.
    pub meta_lr: f64,
    /// First-order meta-gradient.
    pub first_order: bool,
    /// Replay feature noise.
    pub replay_noise: f64,
    /// Meta step on (false: the ablation θ' = θ).
    pub meta_step: bool,
    /// Meta objective.
    pub meta_objective: MetaObjective,
}

/// Checked `[train]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    /// Epochs per stage.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Epochs between in-stage checkpoints; 0: checkpoints after stages only.
    pub checkpoint_every: usize,
}

/// Checked stage.
#[derive(Clone, Debug, PartialEq)]
pub struct StageSpec {
    /// Modality trained in this stage.
    pub modality: String,
    /// Class filter (0-based ids), if any.
    pub classes: Option<Vec<usize>>,
    /// Epochs of this stage.
    pub epochs: usize,
    /// Drift of this stage's data (identity when the stage has none).
    pub drift: Drift,
    /// Line of the stage's `modality` key, for dataset-dependent errors.
    pub line: usize,
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

    /// Validates every value that does not need the dataset.
    pub fn check(&self, text: &str, path: &Path) -> Result<Experiment> {
        let ck = Checker { text, path };
        let at = |span, key: &str, message| ck.err(span, key, message);
        let positive = |v: &Option<Spanned<i64>>, key: &str, default| ck.int(v, key, default, 1);
        let weight = |v: &Option<Spanned<f64>>, key: &str, default| ck.float(v, key, default, false);
        let name = self.name.get_ref();
        if name.trim().is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            // The name is a directory under runs/: `..` would write beside it.
            return Err(at(
                self.name.span(),
                "name",
                "must be non-empty, not . or .., and contain no path separators".into(),
            ));
        }
        let kind = DatasetKind::from_str(self.dataset.kind.get_ref())
            .map_err(|e| at(self.dataset.kind.span(), "dataset.kind", e.to_string()))?;
        let adapter = ck.choice(
            &self.model.adapter,
            "model.adapter",
            "adapter",
            AdapterKind::PerModality,
            &[AdapterKind::PerModality, AdapterKind::SharedPad],
            AdapterKind::as_str,
        )?;
        let defaults = LossWeights::default();
        let model = ModelSpec {
            bits: ck.int_at_most(&self.model.bits, "model.bits", 64, MAX_BITS)?,
            hidden: positive(&self.model.hidden, "model.hidden", 512)?,
            adapter,
            loss: LossWeights {
                classification: weight(
                    &self.model.classification,
                    "model.classification",
                    defaults.classification,
                )?,
                pairwise: weight(&self.model.pairwise, "model.pairwise", defaults.pairwise)?,
                quantization: weight(&self.model.quantization, "model.quantization", defaults.quantization)?,
            },
        };
        let learner_kind = LearnerKind::from_str(self.learner.kind.get_ref())
            .map_err(|m| at(self.learner.kind.span(), "learner.kind", m))?;
        let train = TrainSpec {
            epochs: positive(&self.train.epochs, "train.epochs", 30)?,
            batch: positive(&self.train.batch, "train.batch", 128)?,
            lr: ck.float(&self.train.lr, "train.lr", 1e-3, true)?,
            checkpoint_every: ck.int(&self.train.checkpoint_every, "train.checkpoint_every", 0, 1)?,
        };
        let learner = self.check_learner(learner_kind, &train, text, path)?;
        if self.stages.is_empty() {
            return Err(LearnerError::Invalid {
                path: path.into(),
                line: 0,
                key: "stages".into(),
                message: "no [[stages]]: add at least one `[[stages]]` table with a `modality` key".into(),
            });
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.iter().enumerate() {
            let classes = match &s.classes {
                None => None,
                Some(c) => {
                    if c.get_ref().is_empty() {
                        return Err(at(
                            c.span(),
                            &format!("stages[{i}].classes"),
                            "must not be empty".into(),
                        ));
                    }
                    if let Some(bad) = c.get_ref().iter().find(|&&v| v < 0) {
                        return Err(at(
                            c.span(),
                            &format!("stages[{i}].classes"),
                            format!("class id {bad} < 0"),
                        ));
                    }
                    Some(c.get_ref().iter().map(|&v| v as usize).collect())
                }
            };
            let epochs = positive(&s.epochs, &format!("stages[{i}].epochs"), train.epochs)?;
            // Bounded: a typo like `repeat = 233333333` would otherwise expand into
            // hundreds of millions of stages before anything runs (found by fuzzing).
            let repeat = ck.int_at_most(&s.repeat, &format!("stages[{i}].repeat"), 1, MAX_REPEAT)?;
            for k in 0..repeat {
                let drift = match &s.drift {
                    None => Drift::default(),
                    Some(d) => check_drift(d.get_ref(), k, repeat)
                        .map_err(|(key, m)| at(d.span(), &format!("stages[{i}].drift.{key}"), m))?,
                };
                stages.push(StageSpec {
                    modality: s.modality.get_ref().clone(),
                    classes: classes.clone(),
                    epochs,
                    drift,
                    line: line_of(text, s.modality.span().start),
                });
            }
        }
        let mut metrics = vec![Metric::Map];
        for m in self.eval.metrics.iter().flatten() {
            let metric =
                Metric::from_str(m.get_ref()).map_err(|e| at(m.span(), "eval.metrics", e.to_string()))?;
            if !metrics.contains(&metric) {
                metrics.push(metric);
            }
        }
        let database = ck.choice(
            &self.eval.database,
            "eval.database",
            "database policy",
            DatabasePolicy::Reencode,
            &[DatabasePolicy::Reencode, DatabasePolicy::Frozen],
            DatabasePolicy::as_str,
        )?;
        Ok(Experiment {
            database,
            source: path.into(),
            name: self.name.get_ref().clone(),
            seed: self.seed.unwrap_or(0),
            dataset: self.check_dataset_section(kind, &ck)?,
            model,
            learner,
            train,
            stages,
            metrics,
        })
    }
}

impl Experiment {
    /// Reads, overrides, parses and checks an experiment file (no dataset access).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let (file, text) = ExperimentFile::read(path, overrides)?;
        file.check(&text, path).map_err(|e| {
            // A value that came from --set is named as such: its line is not in the file.
            if let LearnerError::Invalid { key, message, .. } = &e {
                if let Some(assignment) = crate::overrides::setting(overrides, key) {
                    return LearnerError::Override {
                        assignment: assignment.into(),
                        message: message.clone(),
                    };
                }
            }
            e
        })
    }

    /// Checks the stages against the dataset: modalities exist, class ids in range,
    /// and every stage has training rows.
    pub fn check_dataset(&self, ds: &Dataset) -> Result<()> {
        // A memory cannot hold more than the stages ever show.
        let mut seen: Vec<&str> = self.stages.iter().map(|s| s.modality.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        let rows: usize = seen.iter().filter_map(|m| ds.modality(m)).map(|m| m.train.features.rows()).sum();
        if self.learner.memory > rows {
            return Err(LearnerError::Invalid {
                path: self.source.clone(),
                line: self.learner.memory_line,
                key: "learner.memory".into(),
                message: format!(
                    "{} samples, but the stages' training data has only {rows} rows",
                    self.learner.memory
                ),
            });
        }
        for (i, s) in self.stages.iter().enumerate() {
            let Some(m) = ds.modality(&s.modality) else {
                return Err(LearnerError::Invalid {
                    path: self.source.clone(),
                    line: s.line,
                    key: format!("stages[{i}].modality"),
                    message: format!(
                        "unknown modality '{}' (dataset '{}' has: {})",
                        s.modality,
                        ds.name,
                        ds.modality_names().join(", ")
                    ),
                });
            };
            if let Some(w) = &s.drift.class_prior {
                if w.len() != ds.classes() {
                    return Err(LearnerError::Invalid {
                        path: self.source.clone(),
                        line: s.line,
                        key: format!("stages[{i}].drift.class_prior"),
                        message: format!(
                            "{} weights, dataset '{}' has {} classes",
                            w.len(),
                            ds.name,
                            ds.classes()
                        ),
                    });
                }
            }
            if let Some(classes) = &s.classes {
                if let Some(bad) = classes.iter().find(|&&c| c >= ds.classes()) {
                    return Err(LearnerError::Invalid {
                        path: self.source.clone(),
                        line: s.line,
                        key: format!("stages[{i}].classes"),
                        message: format!(
                            "class id {bad} out of range: dataset '{}' has classes 0..{}",
                            ds.name,
                            ds.classes() - 1
                        ),
                    });
                }
                let rows =
                    (0..m.train.labels.rows()).filter(|&r| classes.iter().any(|&c| m.train.labels.has(r, c)));
                if rows.count() == 0 {
                    return Err(LearnerError::Invalid {
                        path: self.source.clone(),
                        line: s.line,
                        key: format!("stages[{i}].classes"),
                        message: "no training rows of these classes".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Loads (or generates) the dataset, standardised when the file asks for it. A split
    /// key that does not fit the data (`queries + train` more than the rows, `queries` on a
    /// file with its own queries) is an error naming the file, the line and the key.
    pub fn load_dataset(&self) -> Result<Dataset> {
        let mut ds = match &self.dataset.synthetic {
            Some(params) => seqmodal_data::generate_synthetic(params)?,
            None => seqmodal_data::load_with(self.dataset.kind, &self.dataset_dir(), &self.dataset.load)
                .map_err(|e| match e {
                    seqmodal_data::DataError::Setting { key, message } => {
                        let (queries, train) = self.dataset.split_lines;
                        let line = match key.as_str() {
                            "queries" => queries,
                            "train" => train,
                            _ => 0,
                        };
                        LearnerError::Invalid {
                            path: self.source.clone(),
                            line,
                            key: format!("dataset.{key}"),
                            message,
                        }
                    }
                    other => other.into(),
                })?,
        };
        if self.dataset.standardize {
            ds.standardize();
        }
        Ok(ds)
    }

    /// Resolves the dataset directory: as written (relative to the working directory),
    /// else relative to each folder above the experiment file.
    pub fn dataset_dir(&self) -> PathBuf {
        let p = PathBuf::from(&self.dataset.path);
        if p.is_absolute() || p.exists() {
            return p;
        }
        let mut dir = self.source.parent();
        while let Some(d) = dir {
            let cand = d.join(&p);
            if cand.exists() {
                return cand;
            }
            dir = d.parent();
        }
        p
    }

    /// The resolved `[dataset]` table (generator settings spelled out for `synthetic`).
    fn dataset_section(&self) -> DatasetSection {
        let d = &self.dataset;
        let sp = |v| Spanned::new(0..0, v);
        let mut s = DatasetSection {
            kind: sp(d.kind.as_str().into()),
            path: (d.synthetic.is_none()).then(|| sp(d.path.clone())),
            standardize: Some(d.standardize),
            modalities: None,
            dims: None,
            classes: None,
            labels_per_item: None,
            train: None,
            test: None,
            queries: None,
            latent: None,
            spread: None,
            noise: None,
            nonlinearity: None,
            seed: None,
        };
        if let Some(p) = &d.synthetic {
            let int = |v: usize| Some(Spanned::new(0..0, v as i64));
            let float = |v: f64| Some(Spanned::new(0..0, v));
            s.modalities = Some(Spanned::new(0..0, p.modalities.clone()));
            s.dims = Some(Spanned::new(0..0, p.dims.iter().map(|&v| v as i64).collect()));
            s.classes = int(p.classes);
            s.labels_per_item =
                Some(Spanned::new(0..0, vec![p.labels_per_item.0 as i64, p.labels_per_item.1 as i64]));
            s.train = int(p.train);
            s.test = int(p.test);
            s.latent = int(p.latent);
            s.spread = float(p.spread);
            s.noise = float(p.noise);
            s.nonlinearity = float(p.nonlinearity);
            s.seed = Some(p.seed);
        }
        if d.synthetic.is_none() {
            let int = |v: Option<usize>| v.map(|v| Spanned::new(0..0, v as i64));
            s.queries = int(d.load.queries);
            s.train = int(d.load.train);
            // The draw seed matters only when something is drawn.
            if d.kind == DatasetKind::Mat73 || d.load.train.is_some() {
                s.seed = Some(d.load.seed);
            }
        }
        s
    }

    /// The fully resolved experiment (every default filled in) as TOML text.
    pub fn to_toml(&self) -> String {
        let sp = |v| Spanned::new(0..0, v);
        let file = ExperimentFile {
            name: sp(self.name.clone()),
            seed: Some(self.seed),
            dataset: self.dataset_section(),
            model: ModelSection {
                bits: Some(Spanned::new(0..0, self.model.bits as i64)),
                hidden: Some(Spanned::new(0..0, self.model.hidden as i64)),
                adapter: Some(sp(self.model.adapter.as_str().into())),
                classification: Some(Spanned::new(0..0, self.model.loss.classification)),
                pairwise: Some(Spanned::new(0..0, self.model.loss.pairwise)),
                quantization: Some(Spanned::new(0..0, self.model.loss.quantization)),
            },
            learner: self.learner.to_section(),
            train: TrainSection {
                epochs: Some(Spanned::new(0..0, self.train.epochs as i64)),
                batch: Some(Spanned::new(0..0, self.train.batch as i64)),
                lr: Some(Spanned::new(0..0, self.train.lr)),
                checkpoint_every: (self.train.checkpoint_every > 0)
                    .then(|| Spanned::new(0..0, self.train.checkpoint_every as i64)),
            },
            stages: self
                .stages
                .iter()
                .map(|s| StageSection {
                    modality: sp(s.modality.clone()),
                    classes: s
                        .classes
                        .as_ref()
                        .map(|c| Spanned::new(0..0, c.iter().map(|&v| v as i64).collect())),
                    epochs: Some(Spanned::new(0..0, s.epochs as i64)),
                    drift: DriftSection::of(&s.drift).map(|d| Spanned::new(0..0, d)),
                    repeat: None,
                })
                .collect(),
            eval: EvalSection {
                metrics: Some(self.metrics.iter().map(|m| sp(m.to_string())).collect()),
                database: Some(sp(self.database.as_str().into())),
            },
        };
        // Serialising plain data types into TOML cannot fail.
        toml::to_string(&file).unwrap_or_default()
    }
}

/// Range checks shared by every section; errors name the file, the line and the key.
struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    fn err(&self, span: std::ops::Range<usize>, key: &str, message: String) -> LearnerError {
        LearnerError::Invalid {
            path: self.path.into(),
            line: line_of(self.text, span.start),
            key: key.into(),
            message,
        }
    }

    /// An integer `>= min` (default when absent).
    fn int(&self, v: &Option<Spanned<i64>>, key: &str, default: usize, min: i64) -> Result<usize> {
        match v {
            None => Ok(default),
            Some(s) if *s.get_ref() >= min => Ok(*s.get_ref() as usize),
            Some(s) => {
                let bound =
                    if min == 1 { "a positive integer".to_string() } else { format!("an integer >= {min}") };
                Err(self.err(s.span(), key, format!("must be {bound}, got {}", s.get_ref())))
            }
        }
    }

    /// A finite number `> 0` (`strictly_positive`) or `>= 0` (default when absent).
    fn float(
        &self,
        v: &Option<Spanned<f64>>,
        key: &str,
        default: f64,
        strictly_positive: bool,
    ) -> Result<f64> {
        let Some(s) = v else { return Ok(default) };
        let x = *s.get_ref();
        if x.is_finite() && (x > 0.0 || (!strictly_positive && x == 0.0)) {
            Ok(x)
        } else {
            let bound = if strictly_positive { "> 0" } else { ">= 0" };
            Err(self.err(s.span(), key, format!("must be a finite number {bound}, got {x}")))
        }
    }

    /// A positive integer no larger than `max` (default when absent).
    fn int_at_most(&self, v: &Option<Spanned<i64>>, key: &str, default: usize, max: usize) -> Result<usize> {
        let n = self.int(v, key, default, 1)?;
        match v {
            Some(s) if n > max => Err(self.err(s.span(), key, format!("at most {max} supported, got {n}"))),
            _ => Ok(n),
        }
    }

    /// A list of positive integers.
    fn positive_list(&self, v: &Spanned<Vec<i64>>, key: &str) -> Result<Vec<usize>> {
        match v.get_ref().iter().find(|&&x| x < 1) {
            Some(bad) => {
                Err(self.err(v.span(), key, format!("every entry must be a positive integer, got {bad}")))
            }
            None => Ok(v.get_ref().iter().map(|&x| x as usize).collect()),
        }
    }

    /// One of `options`, named by `name` (default when absent).
    fn choice<T: Copy>(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        what: &str,
        default: T,
        options: &[T],
        name: fn(T) -> &'static str,
    ) -> Result<T> {
        let Some(s) = v else { return Ok(default) };
        options.iter().copied().find(|&o| name(o) == s.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = options.iter().map(|&o| name(o)).collect();
            self.err(s.span(), key, format!("unknown {what} '{}' (known: {})", s.get_ref(), known.join(", ")))
        })
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The drift of repeat `k` of `n`, range-checked; errors are (key, message).
fn check_drift(d: &DriftSection, k: usize, n: usize) -> std::result::Result<Drift, (&'static str, String)> {
    let value = |v: Option<RampValue>, key: &'static str, default: f64, ok: fn(f64) -> bool, want: &str| {
        let Some(v) = v else { return Ok(default) };
        let ends = match v {
            RampValue::Fixed(x) => [x, x],
            RampValue::Ramp { from, to } => [from, to],
        };
        match ends.into_iter().find(|&x| !(x.is_finite() && ok(x))) {
            Some(bad) => Err((key, format!("must be {want}, got {bad}"))),
            None => Ok(v.at(k, n)),
        }
    };
    let class_prior = match &d.class_prior {
        None => None,
        Some(w) if w.iter().all(|x| x.is_finite() && *x >= 0.0) && w.iter().any(|&x| x > 0.0) => {
            Some(w.clone())
        }
        Some(_) => return Err(("class_prior", "weights must be finite, >= 0, and not all 0".into())),
    };
    Ok(Drift {
        noise: value(d.noise, "noise", 0.0, |x| x >= 0.0, "a number >= 0")?,
        rotation: value(d.rotation, "rotation", 0.0, |_| true, "a finite angle in degrees")?,
        scale: value(d.scale, "scale", 1.0, |_| true, "a finite number")?,
        shift: value(d.shift, "shift", 0.0, |_| true, "a finite number")?,
        dropout: value(d.dropout, "dropout", 0.0, |x| (0.0..1.0).contains(&x), "in [0, 1)")?,
        class_prior,
    })
}

impl DriftSection {
    /// The table that reproduces `d` (only the keys that change something).
    fn of(d: &Drift) -> Option<Self> {
        let v = |x: f64, default: f64| (x != default).then_some(RampValue::Fixed(x));
        let s = DriftSection {
            noise: v(d.noise, 0.0),
            rotation: v(d.rotation, 0.0),
            scale: v(d.scale, 1.0),
            shift: v(d.shift, 0.0),
            dropout: v(d.dropout, 0.0),
            class_prior: d.class_prior.clone(),
        };
        (s != DriftSection::default()).then_some(s)
    }
}

impl ExperimentFile {
    /// Checks `[dataset]`: a path for file formats, generator keys only for `synthetic`.
    fn check_dataset_section(&self, kind: DatasetKind, ck: &Checker<'_>) -> Result<DatasetSpec> {
        let d = &self.dataset;
        let synthetic_keys: [(&str, Option<std::ops::Range<usize>>); 10] = [
            ("modalities", d.modalities.as_ref().map(Spanned::span)),
            ("dims", d.dims.as_ref().map(Spanned::span)),
            ("classes", d.classes.as_ref().map(Spanned::span)),
            ("labels_per_item", d.labels_per_item.as_ref().map(Spanned::span)),
            ("train", d.train.as_ref().map(Spanned::span)),
            ("test", d.test.as_ref().map(Spanned::span)),
            ("latent", d.latent.as_ref().map(Spanned::span)),
            ("spread", d.spread.as_ref().map(Spanned::span)),
            ("noise", d.noise.as_ref().map(Spanned::span)),
            ("nonlinearity", d.nonlinearity.as_ref().map(Spanned::span)),
        ];
        if kind != DatasetKind::Synthetic {
            // `train` (training rows drawn from the database) is a key of every kind.
            if let Some((key, Some(span))) = synthetic_keys.iter().find(|(k, s)| s.is_some() && *k != "train")
            {
                let message = if *key == "test" {
                    format!(
                        "the rows generated for a synthetic test split; '{}' files come with their queries{}",
                        kind.as_str(),
                        if kind == DatasetKind::Mat73 { " or draw them with `queries = N`" } else { "" }
                    )
                } else {
                    format!("only a key of kind = \"synthetic\", not of '{}'", kind.as_str())
                };
                return Err(ck.err(span.clone(), &format!("dataset.{key}"), message));
            }
            if let (Some(q), false) = (&d.queries, kind == DatasetKind::Mat73) {
                return Err(ck.err(
                    q.span(),
                    "dataset.queries",
                    format!(
                        "'{}' datasets come with their own queries (test split); `queries` draws them \
                         from a mat73 file with one IAll/YAll/LAll set",
                        kind.as_str()
                    ),
                ));
            }
            let Some(path) = &d.path else {
                return Err(ck.err(
                    d.kind.span(),
                    "dataset.path",
                    format!("missing: kind '{}' reads its files from a directory", kind.as_str()),
                ));
            };
            let rows = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<usize>> {
                v.as_ref().map(|_| ck.int(v, key, 0, 1)).transpose()
            };
            let load = LoadOptions {
                queries: rows(&d.queries, "dataset.queries")?,
                train: rows(&d.train, "dataset.train")?,
                seed: d.seed.unwrap_or(0),
            };
            let line = |v: &Option<Spanned<i64>>| v.as_ref().map_or(0, |v| line_of(ck.text, v.span().start));
            return Ok(DatasetSpec {
                kind,
                path: path.get_ref().clone(),
                standardize: d.standardize.unwrap_or(true),
                synthetic: None,
                load,
                split_lines: (line(&d.queries), line(&d.train)),
            });
        }
        if let Some(p) = &d.path {
            return Err(ck.err(
                p.span(),
                "dataset.path",
                "a synthetic dataset is generated; remove `path`".into(),
            ));
        }
        if let Some(q) = &d.queries {
            return Err(ck.err(
                q.span(),
                "dataset.queries",
                "a synthetic dataset generates its queries: `test` rows per modality".into(),
            ));
        }
        let defaults = SyntheticParams::default();
        let modalities = d.modalities.as_ref().map_or(defaults.modalities.clone(), |m| m.get_ref().clone());
        let dims = match &d.dims {
            None if d.modalities.is_none() => defaults.dims.clone(),
            None => {
                return Err(ck.err(d.kind.span(), "dataset.dims", "give one width per modality".into()));
            }
            Some(v) => ck.positive_list(v, "dataset.dims")?,
        };
        let labels_per_item = match &d.labels_per_item {
            None => defaults.labels_per_item,
            Some(v) => match ck.positive_list(v, "dataset.labels_per_item")?[..] {
                [lo, hi] => (lo, hi),
                _ => return Err(ck.err(v.span(), "dataset.labels_per_item", "write [min, max]".into())),
            },
        };
        let params = SyntheticParams {
            modalities,
            dims,
            classes: ck.int(&d.classes, "dataset.classes", defaults.classes, 1)?,
            labels_per_item,
            train: ck.int(&d.train, "dataset.train", defaults.train, 1)?,
            test: ck.int(&d.test, "dataset.test", defaults.test, 1)?,
            latent: ck.int(&d.latent, "dataset.latent", defaults.latent, 1)?,
            spread: ck.float(&d.spread, "dataset.spread", defaults.spread, false)?,
            noise: ck.float(&d.noise, "dataset.noise", defaults.noise, false)?,
            nonlinearity: ck.float(&d.nonlinearity, "dataset.nonlinearity", defaults.nonlinearity, false)?,
            seed: d.seed.unwrap_or(defaults.seed),
        };
        // The remaining cross-key checks (names distinct, widths per modality, labels per
        // item within the classes) live with the generator; report them at `[dataset]`.
        params.check().map_err(|e| ck.err(d.kind.span(), "dataset", e.to_string()))?;
        Ok(DatasetSpec {
            kind,
            path: String::new(),
            standardize: d.standardize.unwrap_or(true),
            synthetic: Some(params),
            load: LoadOptions::default(),
            split_lines: (0, 0),
        })
    }
}

impl ExperimentFile {
    /// Checks the `[learner]` keys: each must belong to the chosen kind and be in range.
    fn check_learner(
        &self,
        kind: LearnerKind,
        train: &TrainSpec,
        text: &str,
        path: &Path,
    ) -> Result<LearnerSpec> {
        let l = &self.learner;
        let keys = kind.keys();
        let ck = Checker { text, path };
        let invalid = |span, key: &str, message| ck.err(span, &format!("learner.{key}"), message);
        let given: [(&str, Option<std::ops::Range<usize>>); 17] = [
            ("meta_step", l.meta_step.as_ref().map(Spanned::span)),
            ("meta_objective", l.meta_objective.as_ref().map(Spanned::span)),
            ("replay_noise", l.replay_noise.as_ref().map(Spanned::span)),
            ("replay_batch", l.replay_batch.as_ref().map(Spanned::span)),
            ("lambda", l.lambda.as_ref().map(Spanned::span)),
            ("gamma", l.gamma.as_ref().map(Spanned::span)),
            ("fisher_samples", l.fisher_samples.as_ref().map(Spanned::span)),
            ("c", l.c.as_ref().map(Spanned::span)),
            ("xi", l.xi.as_ref().map(Spanned::span)),
            ("alpha", l.alpha.as_ref().map(Spanned::span)),
            ("beta", l.beta.as_ref().map(Spanned::span)),
            ("temperature", l.temperature.as_ref().map(Spanned::span)),
            ("inner_lr", l.inner_lr.as_ref().map(Spanned::span)),
            ("inner_steps", l.inner_steps.as_ref().map(Spanned::span)),
            ("meta_lr", l.meta_lr.as_ref().map(Spanned::span)),
            ("first_order", l.first_order.as_ref().map(Spanned::span)),
            // memory = 0 is accepted everywhere so one file can sweep over learners.
            ("memory", l.memory.as_ref().filter(|m| *m.get_ref() != 0).map(Spanned::span)),
        ];
        for (key, span) in given {
            if let Some(span) = span {
                if !keys.contains(&key) {
                    let known = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
                    return Err(invalid(
                        span,
                        key,
                        format!("not a key of learner '{}' (its keys: {known})", kind.as_str()),
                    ));
                }
            }
        }
        let float = |v: &Option<Spanned<f64>>, key: &str, default, strictly_positive| {
            ck.float(v, &format!("learner.{key}"), default, strictly_positive)
        };
        let count = |v: &Option<Spanned<i64>>, key: &str, default, min| {
            ck.int(v, &format!("learner.{key}"), default, min)
        };
        let uses_memory = keys.contains(&"memory");
        let memory = count(&l.memory, "memory", if uses_memory { 200 } else { 0 }, 0)?;
        let meta_objective = match &l.meta_objective {
            None => MetaObjective::Maml,
            Some(s) => MetaObjective::parse(s.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = MetaObjective::ALL.iter().map(|o| o.as_str()).collect();
                invalid(
                    s.span(),
                    "meta_objective",
                    format!("unknown objective '{}' (known: {})", s.get_ref(), known.join(", ")),
                )
            })?,
        };
        let first_order = l.first_order.as_ref().is_none_or(|s| *s.get_ref());
        if let Some(s) =
            l.first_order.as_ref().filter(|_| !first_order && meta_objective != MetaObjective::Maml)
        {
            return Err(invalid(
                s.span(),
                "first_order",
                format!(
                    "the second-order term belongs to meta_objective = \"maml\"; \"{}\" is first-order by \
                     construction",
                    meta_objective.as_str()
                ),
            ));
        }
        let is = |k: LearnerKind| kind == k;
        Ok(LearnerSpec {
            kind,
            memory,
            memory_line: l.memory.as_ref().map_or(0, |m| line_of(text, m.span().start)),
            replay_batch: count(&l.replay_batch, "replay_batch", train.batch, 1)?,
            lambda: float(&l.lambda, "lambda", 100.0, false)?,
            gamma: float(&l.gamma, "gamma", 0.9, false)?,
            fisher_samples: count(&l.fisher_samples, "fisher_samples", 1000, 1)?,
            c: float(&l.c, "c", 0.5, false)?,
            xi: float(&l.xi, "xi", 1e-3, true)?,
            alpha: float(
                &l.alpha,
                "alpha",
                match kind {
                    LearnerKind::Der => 0.5,
                    LearnerKind::Meta => 10.0,
                    _ => 1.0,
                },
                false,
            )?,
            beta: float(&l.beta, "beta", if is(LearnerKind::Mer) { 0.3 } else { 0.5 }, false)?,
            temperature: float(&l.temperature, "temperature", 2.0, true)?,
            inner_lr: float(&l.inner_lr, "inner_lr", if is(LearnerKind::Mer) { 0.03 } else { 0.01 }, true)?,
            inner_steps: count(&l.inner_steps, "inner_steps", if is(LearnerKind::Mer) { 4 } else { 1 }, 1)?,
            meta_lr: float(&l.meta_lr, "meta_lr", train.lr, true)?,
            first_order,
            meta_step: l.meta_step.as_ref().is_none_or(|s| *s.get_ref()),
            meta_objective,
            replay_noise: float(
                &l.replay_noise,
                "replay_noise",
                if is(LearnerKind::Meta) { 0.6 } else { 0.0 },
                false,
            )?,
        })
    }
}

impl LearnerSpec {
    /// The `[learner]` table with exactly the keys of this kind, values resolved.
    pub fn to_section(&self) -> LearnerSection {
        let keys = self.kind.keys();
        let f = |key: &str, v: f64| keys.contains(&key).then(|| Spanned::new(0..0, v));
        let i = |key: &str, v: usize| keys.contains(&key).then(|| Spanned::new(0..0, v as i64));
        LearnerSection {
            kind: Spanned::new(0..0, self.kind.as_str().into()),
            memory: i("memory", self.memory),
            replay_batch: i("replay_batch", self.replay_batch),
            lambda: f("lambda", self.lambda),
            gamma: f("gamma", self.gamma),
            fisher_samples: i("fisher_samples", self.fisher_samples),
            c: f("c", self.c),
            xi: f("xi", self.xi),
            alpha: f("alpha", self.alpha),
            beta: f("beta", self.beta),
            temperature: f("temperature", self.temperature),
            inner_lr: f("inner_lr", self.inner_lr),
            inner_steps: i("inner_steps", self.inner_steps),
            meta_lr: f("meta_lr", self.meta_lr),
            first_order: keys.contains(&"first_order").then(|| Spanned::new(0..0, self.first_order)),
            replay_noise: f("replay_noise", self.replay_noise),
            meta_step: keys.contains(&"meta_step").then(|| Spanned::new(0..0, self.meta_step)),
            meta_objective: keys
                .contains(&"meta_objective")
                .then(|| Spanned::new(0..0, self.meta_objective.as_str().to_string())),
        }
    }
}
