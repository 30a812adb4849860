//! `er`: experience replay. Every step trains on the current batch together with a
//! batch drawn from the balanced memory of earlier stages, so the pairwise term also
//! relates new-modality items to stored old-modality items.

use crate::error::Result;
use crate::experiment::LearnerSpec;
use crate::learners::{Footprint, Learner};
use crate::memory::Memory;
use crate::trainer::{ModalityTrain, StageData, StageState, Trainer};

/// Replay state: the memory.
pub struct Er {
    memory: Memory,
    replay_batch: usize,
}

impl Er {
    /// From the checked `[learner]` keys `memory`, `replay_batch`.
    pub fn new(spec: &LearnerSpec) -> Self {
        Self { memory: Memory::new(spec.memory), replay_batch: spec.replay_batch }
    }
}

impl Learner for Er {
    fn save_state(&self, state: &mut crate::checkpoint::LearnerState) -> Result<()> {
        self.memory.save(state)
    }

    fn load_state(
        &mut self,
        state: &crate::checkpoint::LearnerState,
        _model: &seqmodal_model::UnifiedModel,
    ) -> Result<()> {
        self.memory.load(state)
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let mut st = StageState::with_opt(trainer.optimizer(&[stage.modality_name(trainer)])?);
        let (memory, rb) = (&self.memory, self.replay_batch);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let mut items = batch.to_vec();
            items.extend(memory.sample(rb, t.rng).into_iter().map(|s| s.item));
            t.step(st.opt()?, &items)
        })?;
        self.memory.add_stage(&stage.items(), trainer.data, trainer.rng);
        Ok(())
    }

    fn footprint(&self, data: &[ModalityTrain]) -> Footprint {
        self.memory.footprint(data)
    }
}
