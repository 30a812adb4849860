//! `agem`: averaged gradient episodic memory (Chaudhry et al. 2019).
//!
//! Each step computes the current batch's gradient g and a memory batch's gradient
//! g_ref; when they conflict (g·g_ref < 0) g is projected to
//! `g − (g·g_ref / g_ref·g_ref) g_ref`, so the step does not increase the memory loss.

use crate::error::Result;
use crate::experiment::LearnerSpec;
use crate::learners::params::grad_dot;
use crate::learners::{Footprint, Learner};
use crate::memory::Memory;
use crate::trainer::{ModalityTrain, StageData, StageState, Trainer};

/// A-GEM state: the memory.
pub struct Agem {
    memory: Memory,
    replay_batch: usize,
}

impl Agem {
    /// From the checked `[learner]` keys `memory`, `replay_batch`.
    pub fn new(spec: &LearnerSpec) -> Self {
        Self { memory: Memory::new(spec.memory), replay_batch: spec.replay_batch }
    }
}

impl Learner for Agem {
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
        let name = stage.modality_name(trainer).to_string();
        let vars = trainer.model.vars_for(&[&name]);
        let mut st = StageState::with_opt(trainer.optimizer(&[&name])?);
        let (memory, rb) = (&self.memory, self.replay_batch);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let (_, loss) = t.forward(batch)?;
            let mut grads = t.backward(&loss.total)?;
            if !memory.is_empty() {
                let mem: Vec<_> = memory.sample(rb, t.rng).into_iter().map(|s| s.item).collect();
                let (_, mloss) = t.forward(&mem)?;
                let gref = t.backward(&mloss.total)?;
                let dot = grad_dot(&vars, &grads, &gref)?;
                if dot < 0.0 {
                    let norm = grad_dot(&vars, &gref, &gref)?.max(1e-12);
                    for v in &vars {
                        if let (Some(g), Some(r)) = (grads.get(v.as_tensor()), gref.get(v.as_tensor())) {
                            let projected = (g - r.affine(dot / norm, 0.0)?)?;
                            grads.insert(v.as_tensor(), projected);
                        }
                    }
                }
            }
            t.apply(st.opt()?, &grads, batch.len())?;
            Ok(loss.total.to_scalar::<f32>()? as f64)
        })?;
        self.memory.add_stage(&stage.items(), trainer.data, trainer.rng);
        Ok(())
    }

    fn footprint(&self, data: &[ModalityTrain]) -> Footprint {
        self.memory.footprint(data)
    }
}
