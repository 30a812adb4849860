//! `finetune`: plain sequential training, the lower bound every strategy must beat.

use crate::error::Result;
use crate::learners::Learner;
use crate::trainer::{StageData, Trainer};

/// Trains on the current stage's data only and keeps nothing from earlier stages.
#[derive(Debug, Default)]
pub struct Finetune;

impl Learner for Finetune {
    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let pool = stage.items();
        let mut opt = trainer.optimizer(&[stage.modality_name(trainer)])?;
        for epoch in 0..stage.epochs {
            let batches = trainer.shuffled_batches(&pool);
            let mut loss_sum = 0.0;
            for b in &batches {
                loss_sum += trainer.step(&mut opt, b)?.total_value;
            }
            trainer.end_epoch(epoch, loss_sum / batches.len().max(1) as f64);
        }
        Ok(())
    }
}
