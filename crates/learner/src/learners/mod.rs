//! Strategies that train the unified model across stages.
//!
//! A learner sees the current stage's training rows and, if it keeps them, what it
//! stored from earlier stages; [`crate::Trainer`] gives it batching and optimiser
//! steps. `docs/learners.md` says what each keeps, costs, and its keys.

mod agem;
mod der;
mod er;
mod ewc;
mod finetune;
mod joint;
mod lwf;
mod mer;
mod meta;
mod paired;
pub mod params;
mod si;

use std::str::FromStr;

pub use agem::Agem;
pub use der::Der;
pub use er::Er;
pub use ewc::Ewc;
pub use finetune::Finetune;
pub use joint::Joint;
pub use lwf::Lwf;
pub use mer::Mer;
pub use meta::{Meta, MetaObjective};
pub use paired::Paired;
pub use si::Si;

use crate::error::Result;
use crate::experiment::LearnerSpec;
use crate::trainer::{StageData, Trainer};

/// The strategies seqmodal implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LearnerKind {
    /// Sequential fine-tuning on each stage's data only; keeps nothing.
    Finetune,
    /// Trains on the union of every stage's data so far (non-sequential reference).
    Joint,
    /// Parallel paradigm: all modalities together on aligned pairs (DCMH-style).
    Paired,
    /// Online elastic weight consolidation.
    Ewc,
    /// Synaptic intelligence.
    Si,
    /// Learning without forgetting (distillation of the previous model).
    Lwf,
    /// Experience replay from a balanced memory.
    Er,
    /// Averaged gradient episodic memory.
    Agem,
    /// Dark experience replay (DER++).
    Der,
    /// Meta-experience replay (Reptile over replayed batches).
    Mer,
    /// The seed paper's meta-learning: fast weights on the new modality, slow update on memory ∪ new.
    Meta,
}

impl LearnerKind {
    /// Every kind, in documentation order.
    pub const ALL: [LearnerKind; 11] = [
        LearnerKind::Finetune,
        LearnerKind::Joint,
        LearnerKind::Paired,
        LearnerKind::Ewc,
        LearnerKind::Si,
        LearnerKind::Lwf,
        LearnerKind::Er,
        LearnerKind::Agem,
        LearnerKind::Der,
        LearnerKind::Mer,
        LearnerKind::Meta,
    ];

    /// Name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            LearnerKind::Finetune => "finetune",
            LearnerKind::Joint => "joint",
            LearnerKind::Paired => "paired",
            LearnerKind::Ewc => "ewc",
            LearnerKind::Si => "si",
            LearnerKind::Lwf => "lwf",
            LearnerKind::Er => "er",
            LearnerKind::Agem => "agem",
            LearnerKind::Der => "der",
            LearnerKind::Mer => "mer",
            LearnerKind::Meta => "meta",
        }
    }

    /// The `[learner]` keys this kind reads (besides `kind`).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            LearnerKind::Finetune | LearnerKind::Joint | LearnerKind::Paired => &[],
            LearnerKind::Ewc => &["lambda", "gamma", "fisher_samples"],
            LearnerKind::Si => &["c", "xi"],
            LearnerKind::Lwf => &["alpha", "temperature"],
            LearnerKind::Er | LearnerKind::Agem => &["memory", "replay_batch"],
            LearnerKind::Der => &["memory", "replay_batch", "alpha", "beta"],
            LearnerKind::Mer => &["memory", "replay_batch", "inner_lr", "inner_steps", "beta"],
            LearnerKind::Meta => &[
                "memory",
                "replay_batch",
                "inner_lr",
                "inner_steps",
                "meta_lr",
                "first_order",
                "alpha",
                "replay_noise",
                "meta_step",
                "meta_objective",
            ],
        }
    }

    /// Builds the learner from its checked keys.
    pub fn build(spec: &LearnerSpec) -> Box<dyn Learner> {
        match spec.kind {
            LearnerKind::Finetune => Box::new(Finetune),
            LearnerKind::Joint => Box::new(Joint::default()),
            LearnerKind::Paired => Box::new(Paired::default()),
            LearnerKind::Ewc => Box::new(Ewc::new(spec)),
            LearnerKind::Si => Box::new(Si::new(spec)),
            LearnerKind::Lwf => Box::new(Lwf::new(spec)),
            LearnerKind::Er => Box::new(Er::new(spec)),
            LearnerKind::Agem => Box::new(Agem::new(spec)),
            LearnerKind::Der => Box::new(Der::new(spec)),
            LearnerKind::Mer => Box::new(Mer::new(spec)),
            LearnerKind::Meta => Box::new(Meta::new(spec)),
        }
    }
}

impl FromStr for LearnerKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown learner '{s}' (known: {})", known.join(", "))
        })
    }
}

/// What a learner keeps between stages, for `summary.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Footprint {
    /// Samples held in memory at the end of the run.
    pub memory_samples: usize,
    /// Bytes of stored features, labels and targets.
    pub memory_bytes: usize,
    /// Extra parameter-sized tensors kept (anchors, Fisher, importance, old model).
    pub extra_param_copies: usize,
}

/// A continual-learning strategy.
pub trait Learner {
    /// Checks that the learner can run on this dataset (e.g. `paired` needs aligned data).
    fn check(&self, _ds: &seqmodal_data::Dataset) -> Result<()> {
        Ok(())
    }

    /// Trains the model for one stage. `stage` holds the rows this stage may see.
    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()>;

    /// Puts what the learner keeps between stages into a checkpoint.
    fn save_state(&self, _state: &mut crate::checkpoint::LearnerState) -> Result<()> {
        Ok(())
    }

    /// Restores what [`Learner::save_state`] kept; `model` is the restored model (the
    /// template for a kept previous model).
    fn load_state(
        &mut self,
        _state: &crate::checkpoint::LearnerState,
        _model: &seqmodal_model::UnifiedModel,
    ) -> Result<()> {
        Ok(())
    }

    /// What the learner keeps (memory, copies of parameters).
    fn footprint(&self, _trainer_data: &[crate::trainer::ModalityTrain]) -> Footprint {
        Footprint::default()
    }
}
