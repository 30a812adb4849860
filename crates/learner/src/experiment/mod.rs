//! Experiment files in layers: the file as written ([`file`], serde schema), its checker
//! ([`check`], errors naming file, line and key), and the checked [`Experiment`] here, which
//! everything downstream trusts. Loading the dataset it names lives in [`crate::dataset`].

mod check;
pub mod file;

use std::path::{Path, PathBuf};

use toml::Spanned;

use seqmodal_data::{Dataset, DatasetKind, Drift, LoadOptions, SyntheticParams};
use seqmodal_hamming::Metric;
use seqmodal_model::{AdapterKind, LossWeights};

pub use file::{
    DatasetSection, DriftSection, EvalSection, ExperimentFile, LearnerSection, ModelSection, RampValue,
    StageSection, TrainSection,
};

use crate::error::{LearnerError, Result};
use crate::keys::Values;
use crate::learners::{Learner, LearnerEntry, Registry, Role};
pub use crate::trainer::TrainSpec;

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
    /// `validation`: fraction of the training rows drawn as validation queries, and its
    /// line (for errors found on loading); `None`: evaluate on the test split.
    pub validation: Option<(f64, usize)>,
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

/// Checked `[learner]`: the registered learner and its checked keys (defaults filled in).
#[derive(Clone, Debug)]
pub struct LearnerSpec {
    /// The learner, as registered.
    pub entry: &'static LearnerEntry,
    /// Its keys.
    pub values: Values,
}

impl PartialEq for LearnerSpec {
    fn eq(&self, other: &Self) -> bool {
        self.entry.name == other.entry.name && self.values == other.values
    }
}

impl LearnerSpec {
    /// The learner's name (`[learner] kind`).
    pub fn name(&self) -> &'static str {
        self.entry.name
    }

    /// The learner's role in comparisons.
    pub fn role(&self) -> Role {
        self.entry.role
    }

    /// A fresh learner with these keys.
    pub fn build(&self) -> Result<Box<dyn Learner>> {
        (self.entry.build)(&self.values)
    }
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

impl Experiment {
    /// Reads, overrides, parses and checks an experiment file (no dataset access).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        Self::load_with(path, overrides, &Registry::builtin())
    }

    /// [`Experiment::load`] with the learners of `registry` (e.g. one defined outside this crate).
    pub fn load_with(path: &Path, overrides: &[String], registry: &Registry) -> Result<Self> {
        let (file, text) = ExperimentFile::read(path, overrides)?;
        file.check_with(&text, path, registry).map_err(|e| {
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

    /// Checks the stages against the dataset (modalities exist, class ids in range, every
    /// stage has training rows), then the learner's own needs ([`Learner::check`]).
    pub fn check_dataset(&self, ds: &Dataset) -> Result<()> {
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
        let trained: Vec<&str> = self.stages.iter().map(|s| s.modality.as_str()).collect();
        self.learner.build()?.check(ds, &trained)
    }
}

impl Experiment {
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
            validation: d.validation.map(|(f, _)| Spanned::new(0..0, f)),
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
            if d.kind == DatasetKind::Mat73 || d.load.train.is_some() || d.validation.is_some() {
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
            learner: self.learner.values.to_section(),
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
