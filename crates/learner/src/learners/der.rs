//! `der`: dark experience replay, DER++ (Buzzega et al. 2020).
//!
//! The memory stores each sample's classifier logits from when it was stored. Each step
//! adds `α · mean (z_mem − z_stored)²` on one memory batch and `β ·` the model loss
//! (labels) on a second memory batch.

use candle_core::Tensor;

use crate::error::Result;
use crate::experiment::LearnerSpec;
use crate::learners::{Footprint, Learner};
use crate::memory::Memory;
use crate::trainer::{Item, ModalityTrain, StageData, StageState, Trainer};

/// DER++ state: memory with stored logits.
pub struct Der {
    memory: Memory,
    replay_batch: usize,
    alpha: f64,
    beta: f64,
}

impl Der {
    /// From the checked `[learner]` keys `memory`, `replay_batch`, `alpha`, `beta`.
    pub fn new(spec: &LearnerSpec) -> Self {
        Self {
            memory: Memory::new(spec.memory),
            replay_batch: spec.replay_batch,
            alpha: spec.alpha,
            beta: spec.beta,
        }
    }
}

impl Learner for Der {
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
        let (memory, rb, alpha, beta) = (&self.memory, self.replay_batch, self.alpha, self.beta);
        let classes = trainer.data.first().map_or(1, |d| d.classes);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let (_, loss) = t.forward(batch)?;
            let mut total = loss.total;
            let mut samples = batch.len();
            if !memory.is_empty() {
                let first = memory.sample(rb, t.rng);
                let items: Vec<Item> = first.iter().map(|s| s.item).collect();
                let order = Trainer::output_order(&items);
                let mut target = Vec::with_capacity(order.len() * classes);
                for it in &order {
                    let s = first.iter().find(|s| s.item == *it);
                    match s.and_then(|s| s.logits.as_ref()) {
                        Some(l) => target.extend_from_slice(l),
                        None => target.extend(std::iter::repeat_n(0f32, classes)),
                    }
                }
                let (out, _) = t.forward(&items)?;
                let target = Tensor::from_vec(target, (order.len(), classes), out.logits.device())?;
                let logit_term = (&out.logits - target)?.sqr()?.mean_all()?;
                let second: Vec<Item> = memory.sample(rb, t.rng).into_iter().map(|s| s.item).collect();
                let (_, label_loss) = t.forward(&second)?;
                total = ((total + logit_term.affine(alpha, 0.0)?)? + label_loss.total.affine(beta, 0.0)?)?;
                samples += items.len() + second.len();
            }
            let grads = t.backward(&total)?;
            t.apply(st.opt()?, &grads, samples)?;
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        self.memory.add_stage(&stage.items(), trainer.data, trainer.rng);
        // Record logits for newly stored samples with the model as it is now.
        let missing: Vec<Item> =
            self.memory.stored().iter().filter(|s| s.logits.is_none()).map(|s| s.item).collect();
        for chunk in missing.chunks(256) {
            let order = Trainer::output_order(chunk);
            let out = trainer.model.forward(&trainer.batch_parts(chunk)?)?;
            let rows = out.logits.to_vec2::<f32>()?;
            for (it, row) in order.into_iter().zip(rows) {
                self.memory.set_logits(it, row);
            }
        }
        Ok(())
    }

    fn footprint(&self, data: &[ModalityTrain]) -> Footprint {
        self.memory.footprint(data)
    }
}
