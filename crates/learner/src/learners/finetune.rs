//! `finetune`: plain sequential training, the lower bound every strategy must beat.

use crate::error::Result;
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "finetune",
    role: Role::LowerBound,
    summary: "sequential fine-tuning on each stage's data only; keeps nothing",
    keys: Vec::new,
    build: |_| Ok(Box::new(Finetune)),
};

/// Trains on the current stage's data only and keeps nothing from earlier stages.
#[derive(Debug, Default)]
pub struct Finetune;

impl Learner for Finetune {
    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let mut st = StageState::with_opt(trainer.optimizer(&[stage.modality_name(trainer)])?);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| t.step(st.opt()?, batch))
    }
}
