//! Continual-learning strategies for the unified cross-modal model, the experiment
//! file format, and the stage runner that trains and evaluates stage by stage.

pub mod checker;
pub mod checkpoint;
pub mod dataset;
mod error;
pub mod evaluate;
pub mod experiment;
mod footprint;
pub mod keys;
pub mod learners;
pub mod memory;
mod observer;
pub mod overrides;
mod runner;
pub mod train_log;
mod trainer;

pub use checker::Checker;
pub use checkpoint::LearnerState;
pub use error::{LearnerError, Result};
pub use evaluate::EvalRow;
pub use experiment::{Experiment, ExperimentFile};
pub use footprint::Footprint;
pub use keys::{Key, KeyDefault, Search, Values};
pub use learners::{Learner, LearnerEntry, Registry, Role};
pub use memory::Memory;
pub use observer::{EpochEnd, Observer, Silent};
pub use runner::{build_model, run, RunOptions, RunResult};
pub use train_log::{EpochRecord, TrainLog, TRAIN_LOG_COLUMNS};
pub use trainer::{Item, ModalityTrain, StageCheckpoints, StageData, StageState, Trainer};

// docs/adding-a-learner.md's worked example runs as a doctest, so the guide cannot drift.
#[doc = include_str!("../../../docs/adding-a-learner.md")]
#[cfg(doctest)]
pub struct AddingALearner;
