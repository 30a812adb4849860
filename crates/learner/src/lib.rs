//! Continual-learning strategies for the unified cross-modal model, the experiment
//! file format, and the stage runner that trains and evaluates stage by stage.

pub mod checkpoint;
mod error;
pub mod evaluate;
pub mod experiment;
pub mod learners;
pub mod memory;
pub mod overrides;
mod runner;
pub mod train_log;
mod trainer;

pub use checkpoint::LearnerState;
pub use error::{LearnerError, Result};
pub use evaluate::EvalRow;
pub use experiment::{Experiment, ExperimentFile};
pub use learners::{Footprint, Learner, LearnerKind};
pub use memory::Memory;
pub use runner::{build_model, run, EpochEnd, Observer, RunOptions, RunResult, Silent};
pub use train_log::{EpochRecord, TrainLog, TRAIN_LOG_COLUMNS};
pub use trainer::{Item, ModalityTrain, StageCheckpoints, StageData, StageState, Trainer};
