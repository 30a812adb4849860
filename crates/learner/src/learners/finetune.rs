//! `finetune`: plain sequential training, the lower bound every strategy must beat.

use crate::error::Result;
use crate::learners::Learner;
use crate::trainer::{StageData, StageState, Trainer};

/// Trains on the current stage's data only and keeps nothing from earlier stages.
#[derive(Debug, Default)]
pub struct Finetune;

impl Learner for Finetune {
    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let mut st = StageState::with_opt(trainer.optimizer(&[stage.modality_name(trainer)])?);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| t.step(st.opt()?, batch))
    }
}
