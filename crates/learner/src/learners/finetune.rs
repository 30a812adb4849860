//! `finetune`: plain sequential training, the lower bound every strategy must beat.

use crate::error::Result;
use crate::learners::Learner;
use crate::trainer::{StageData, Trainer};

/// Trains on the current stage's data only and keeps nothing from earlier stages.
#[derive(Debug, Default)]
pub struct Finetune;

impl Learner for Finetune {
    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let mut opt = trainer.optimizer(&[stage.modality_name(trainer)])?;
        trainer.epochs(stage.epochs, &stage.items(), |t, batch| t.step(&mut opt, batch))
    }
}
