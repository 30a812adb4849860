//! `mer`: meta-experience replay (Riemer et al. 2019), within-batch Reptile.
//!
//! For each incoming batch: remember θ₀; split the batch into `inner_steps` pieces,
//! each joined with its share of a memory batch, and take one SGD step (`inner_lr`)
//! on each in turn; then move only part of the way, `θ ← θ₀ + β (θ_k − θ₀)`. Reptile
//! turns the sequence of steps into an update that favours gradient agreement between
//! new and replayed samples.

use crate::error::Result;
use crate::experiment::LearnerSpec;
use crate::learners::params::{restore, sgd, snapshot};
use crate::learners::{Footprint, Learner};
use crate::memory::Memory;
use crate::trainer::{Item, ModalityTrain, StageData, StageState, Trainer};

/// MER state: the memory and its rates.
pub struct Mer {
    memory: Memory,
    replay_batch: usize,
    inner_lr: f64,
    inner_steps: usize,
    beta: f64,
}

impl Mer {
    /// From the checked `[learner]` keys.
    pub fn new(spec: &LearnerSpec) -> Self {
        Self {
            memory: Memory::new(spec.memory),
            replay_batch: spec.replay_batch,
            inner_lr: spec.inner_lr,
            inner_steps: spec.inner_steps,
            beta: spec.beta,
        }
    }
}

impl Learner for Mer {
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
        let (memory, rb, lr, k, beta) =
            (&self.memory, self.replay_batch, self.inner_lr, self.inner_steps, self.beta);
        // SGD inside each batch and a Reptile step: no optimiser state across epochs.
        let mut st = StageState::default();
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, _, batch| {
            let start = snapshot(&vars)?;
            let piece = batch.len().div_ceil(k).max(1);
            let mut loss_sum = 0.0;
            let mut n = 0;
            for chunk in batch.chunks(piece) {
                let mut items: Vec<Item> = chunk.to_vec();
                items.extend(memory.sample(rb.div_ceil(k), t.rng).into_iter().map(|s| s.item));
                let (_, loss) = t.forward(&items)?;
                let grads = t.backward(&loss.total)?;
                sgd(&vars, &grads, lr)?;
                loss_sum += loss.total.to_scalar::<f32>()? as f64;
                n += 1;
                t.samples += items.len() as u64;
            }
            // θ ← θ₀ + β (θ_k − θ₀)
            let moved: Vec<_> = vars
                .iter()
                .zip(&start)
                .map(|(v, s)| s + (v.as_tensor() - s)?.affine(beta, 0.0)?)
                .collect::<candle_core::Result<_>>()?;
            restore(&vars, &moved)?;
            t.steps += 1;
            Ok(loss_sum / n.max(1) as f64)
        })?;
        self.memory.add_stage(&stage.items(), trainer.data, trainer.rng);
        Ok(())
    }

    fn footprint(&self, data: &[ModalityTrain]) -> Footprint {
        self.memory.footprint(data)
    }
}
