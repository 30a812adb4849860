//! `meta`: the seed paper's meta-learning against forgetting, in our formulation.
//!
//! For a batch B_new of the current modality and a batch B_mem from the memory of
//! earlier modalities:
//!
//! ```text
//! θ'  = θ − α ∇θ L(θ; B_new)                      (inner_steps times, α = inner_lr)
//! θ  ← Adam_meta_lr( ∇θ' L(θ'; B_mem ∪ B_new) )   (first-order meta-gradient)
//! ```
//!
//! The slow weights move in the direction that, after adapting to the new modality,
//! still serves the old ones: the update rewards steps on new data that do not hurt
//! the memory. Without a memory (`memory = 0`) the old modalities' term is
//! `α_d · mean (h(θ'; B_new) − h_old(B_new))²`: the previous stage's model's codes on
//! the current batch are the targets.

use seqmodal_model::UnifiedModel;

use crate::error::Result;
use crate::experiment::LearnerSpec;
use crate::learners::params::{restore, sgd, snapshot};
use crate::learners::{Footprint, Learner};
use crate::memory::Memory;
use crate::trainer::{Item, ModalityTrain, StageData, StageState, Trainer};

/// Meta-learner state.
pub struct Meta {
    memory: Memory,
    replay_batch: usize,
    inner_lr: f64,
    inner_steps: usize,
    meta_lr: f64,
    alpha: f64,
    replay_noise: f64,
    old: Option<UnifiedModel>,
}

impl Meta {
    /// From the checked `[learner]` keys.
    pub fn new(spec: &LearnerSpec) -> Self {
        Self {
            memory: Memory::new(spec.memory),
            replay_batch: spec.replay_batch,
            inner_lr: spec.inner_lr,
            inner_steps: spec.inner_steps,
            meta_lr: spec.meta_lr,
            alpha: spec.alpha,
            replay_noise: spec.replay_noise,
            old: None,
        }
    }
}

impl Learner for Meta {
    fn save_state(&self, state: &mut crate::checkpoint::LearnerState) -> Result<()> {
        self.memory.save(state)?;
        if let Some(old) = &self.old {
            state.put_model("old", old);
        }
        Ok(())
    }

    fn load_state(
        &mut self,
        state: &crate::checkpoint::LearnerState,
        model: &seqmodal_model::UnifiedModel,
    ) -> Result<()> {
        self.memory.load(state)?;
        self.old = state.model("old", model)?;
        Ok(())
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let name = stage.modality_name(trainer).to_string();
        let vars = trainer.model.vars_for(&[&name]);
        let mut opt = trainer.optimizer(&[&name])?;
        candle_nn::Optimizer::set_learning_rate(&mut opt, self.meta_lr);
        let mut st = StageState::with_opt(opt);
        let (memory, rb, lr, k, alpha) =
            (&self.memory, self.replay_batch, self.inner_lr, self.inner_steps, self.alpha);
        let noise = self.replay_noise;
        let old = self.old.as_ref();
        let first_stage = memory.is_empty() && self.old.is_none();
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            if first_stage {
                // Nothing to protect yet: plain training on the first modality.
                return t.step(st.opt()?, batch);
            }
            let slow = snapshot(&vars)?;
            for _ in 0..k {
                let (_, loss) = t.forward(batch)?;
                let grads = t.backward(&loss.total)?;
                sgd(&vars, &grads, lr)?;
            }
            let mut items: Vec<Item> = batch.to_vec();
            items.extend(memory.sample(rb, t.rng).into_iter().map(|s| s.item));
            let parts = t.replay_parts(&items, &name, noise)?;
            let (out, loss) = t.forward_parts(&parts)?;
            let mut total = loss.total;
            if let Some(old) = old {
                // The old modalities' term: the previous model's codes as targets, on the
                // (noisy) replayed rows when there is a memory, else on the current batch.
                // Parts are grouped by modality with the current batch first, so every
                // part after it holds replayed rows only.
                let skip = usize::from(parts.first().is_some_and(|p| p.modality == name));
                let term = if memory.is_empty() {
                    Some((out.h.clone(), old.forward(&parts)?.h))
                } else if parts.len() > skip {
                    let current_rows = if skip == 1 { parts[0].x.dim(0)? } else { 0 };
                    let h = out.h.narrow(0, current_rows, out.h.dim(0)? - current_rows)?;
                    Some((h, old.forward(&parts[skip..])?.h))
                } else {
                    None
                };
                if let Some((h, targets)) = term {
                    let d = (h - targets.detach())?.sqr()?.mean_all()?;
                    total = (total + d.affine(alpha, 0.0)?)?;
                }
            }
            let grads = t.backward(&total)?;
            restore(&vars, &slow)?;
            t.apply(st.opt()?, &grads, items.len())?;
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        self.memory.add_stage(&stage.items(), trainer.data, trainer.rng);
        self.old = Some(trainer.model.frozen_copy()?);
        Ok(())
    }

    fn footprint(&self, data: &[ModalityTrain]) -> Footprint {
        let mut f = self.memory.footprint(data);
        f.extra_param_copies = usize::from(self.old.is_some());
        f
    }
}
