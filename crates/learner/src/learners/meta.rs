//! `meta`: the seed paper's meta-learning against forgetting, in our formulation.
//!
//! For a batch B_new of the current modality and a batch B_mem from the memory of
//! earlier modalities (replayed with feature noise and, with weight `alpha`, the previous
//! model's codes as distillation targets), `meta_objective` picks the meta step:
//!
//! ```text
//! maml:        θ' = θ − α ∇θ L(θ; B_new)                  (inner_steps times, α = inner_lr)
//!              g  = ∇θ' L(θ'; B_mem ∪ B_new)               first_order = true  (FOMAML)
//!              g  = Π (I − α H_new(θ_i)) ∇θ' L(θ'; …)      first_order = false (MAML; Hessian-vector
//!                                                           products by finite differences of gradients)
//! alternating: SGD steps at α over B_new,1, B_mem,1, B_new,2, B_mem,2, … (inner_steps pieces of
//!              each; the order flips every batch), g = (θ − θ_end) / α  (Reptile / MER)
//! θ ← Adam_meta_lr(g)
//! ```
//!
//! `meta_step = false` is the ablation: the same batches, noise, distillation and
//! optimiser, with every gradient taken at θ (θ' = θ): no inner movement, no Hessian term.
//! Without a memory (`memory = 0`) the old modalities' term is
//! `α_d · mean (h(θ'; B_new) − h_old(B_new))²`: the previous stage's model's codes on
//! the current batch are the targets.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use seqmodal_model::{BatchPart, UnifiedModel};

use crate::error::Result;
use crate::experiment::LearnerSpec;
use crate::learners::params::{grad_vectors, maml_meta_gradient, restore, sgd, snapshot};
use crate::learners::{Footprint, Learner};
use crate::memory::Memory;
use crate::trainer::{Item, ModalityTrain, StageData, StageState, Trainer};

/// Distance in parameter space of the two probe points of a finite-difference
/// Hessian-vector product from θ (`params::hvp`): small against the weights' scale, large
/// enough that the difference of two f32 gradients is not rounding noise.
pub const HVP_STEP: f64 = 1e-2;

/// Which meta step `meta` takes (`[learner] meta_objective`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaObjective {
    /// Inner steps on the new batch, meta-gradient of the replay loss at the adapted
    /// weights: first-order (FOMAML) or with the Hessian term (`first_order = false`).
    Maml,
    /// Reptile/MER-style sequential SGD steps alternating new and memory pieces.
    Alternating,
}

impl MetaObjective {
    /// Every objective, in documentation order.
    pub const ALL: [MetaObjective; 2] = [MetaObjective::Maml, MetaObjective::Alternating];

    /// The key's value naming this objective.
    pub fn as_str(self) -> &'static str {
        match self {
            MetaObjective::Maml => "maml",
            MetaObjective::Alternating => "alternating",
        }
    }

    /// The objective a key value names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Meta-learner state.
pub struct Meta {
    memory: Memory,
    replay_batch: usize,
    inner_lr: f64,
    inner_steps: usize,
    meta_lr: f64,
    alpha: f64,
    replay_noise: f64,
    meta_step: bool,
    first_order: bool,
    objective: MetaObjective,
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
            meta_step: spec.meta_step,
            first_order: spec.first_order,
            objective: spec.meta_objective,
            old: None,
        }
    }
}

/// What one batch's meta step reads (borrowed from [`Meta`] for the stage).
struct Step<'m> {
    vars: &'m [Var],
    name: &'m str,
    memory: &'m Memory,
    old: Option<&'m UnifiedModel>,
    replay_batch: usize,
    inner_lr: f64,
    inner_steps: usize,
    alpha: f64,
    noise: f64,
    meta_step: bool,
    first_order: bool,
}

impl Step<'_> {
    /// Model loss of `parts` plus the distillation term: `alpha · mean (h − h_old)²` on
    /// the rows of other modalities than the current one (replayed memory) or, without a
    /// memory, on every row.
    fn loss(&self, t: &mut Trainer<'_>, parts: &[BatchPart]) -> Result<Tensor> {
        let (out, loss) = t.forward_parts(parts)?;
        let mut total = loss.total;
        let Some(old) = self.old.filter(|_| self.alpha > 0.0) else {
            return Ok(total);
        };
        let term = if self.memory.is_empty() {
            Some((out.h.clone(), old.forward(parts)?.h))
        } else {
            // Rows of the output follow the parts in order.
            let mut rows = Vec::new();
            let mut replayed = Vec::new();
            let mut offset = 0;
            for p in parts {
                let n = p.x.dim(0)?;
                if p.modality != self.name {
                    rows.push(out.h.narrow(0, offset, n)?);
                    replayed.push(p.clone());
                }
                offset += n;
            }
            if rows.is_empty() {
                None
            } else {
                Some((Tensor::cat(&rows, 0)?, old.forward(&replayed)?.h))
            }
        };
        if let Some((h, targets)) = term {
            let d = (h - targets.detach())?.sqr()?.mean_all()?;
            total = (total + d.affine(self.alpha, 0.0)?)?;
        }
        Ok(total)
    }

    /// `maml`: inner steps on the new batch, then the replay loss's gradient at θ'
    /// (with the Hessian chain when second order). Returns the loss, the meta-gradient
    /// (vars at θ again) and the samples of the update.
    fn maml(&self, t: &mut Trainer<'_>, batch: &[Item]) -> Result<(f64, GradStore, usize)> {
        let slow = snapshot(self.vars)?;
        let second_order = self.meta_step && !self.first_order;
        let mut points = Vec::new();
        if self.meta_step {
            for _ in 0..self.inner_steps {
                if second_order {
                    points.push(snapshot(self.vars)?);
                }
                let (_, loss) = t.forward(batch)?;
                let grads = t.backward(&loss.total)?;
                sgd(self.vars, &grads, self.inner_lr)?;
            }
        }
        let mut items: Vec<Item> = batch.to_vec();
        items.extend(self.memory.sample(self.replay_batch, t.rng).into_iter().map(|s| s.item));
        let parts = t.replay_parts(&items, self.name, self.noise)?;
        let total = self.loss(t, &parts)?;
        let mut grads = t.backward(&total)?;
        if second_order {
            let outer = grad_vectors(self.vars, &grads)?;
            let g = maml_meta_gradient(self.vars, &points, outer, self.inner_lr, HVP_STEP, || {
                let (_, loss) = t.forward(batch)?;
                t.backward(&loss.total)
            })?;
            for (v, g) in self.vars.iter().zip(g) {
                grads.insert(v.as_tensor(), g);
            }
        }
        restore(self.vars, &slow)?;
        Ok((total.to_scalar::<f32>()? as f64, grads, items.len()))
    }

    /// `alternating`: SGD steps over new and memory pieces in turn; the summed piece
    /// gradients are `(θ − θ_end) / inner_lr`, the Reptile direction. With
    /// `meta_step = false` every piece's gradient is taken at θ.
    fn alternating(&self, t: &mut Trainer<'_>, batch: &[Item]) -> Result<(f64, GradStore, usize)> {
        let slow = snapshot(self.vars)?;
        let mem: Vec<Item> =
            self.memory.sample(self.replay_batch, t.rng).into_iter().map(|s| s.item).collect();
        let k = self.inner_steps;
        let new_pieces: Vec<&[Item]> = batch.chunks(batch.len().div_ceil(k).max(1)).collect();
        let mem_pieces: Vec<&[Item]> = mem.chunks(mem.len().div_ceil(k).max(1)).collect();
        // Flipping the order every batch makes both H_mem·g_new and H_new·g_mem appear,
        // so the expected update is the gradient of L_new + L_mem − (α/2) g_new·g_mem.
        let new_first = t.steps.is_multiple_of(2);
        let mut sequence: Vec<(&[Item], bool)> = Vec::new();
        for j in 0..new_pieces.len().max(mem_pieces.len()) {
            let pair = [(new_pieces.get(j), false), (mem_pieces.get(j), true)];
            let ordered = if new_first { [pair[0], pair[1]] } else { [pair[1], pair[0]] };
            sequence.extend(ordered.into_iter().filter_map(|(p, replayed)| p.map(|p| (*p, replayed))));
        }
        let mut sum: Option<Vec<Tensor>> = None;
        let mut last = None;
        let mut loss_sum = 0.0;
        for &(piece, replayed) in &sequence {
            let parts =
                if replayed { t.replay_parts(piece, self.name, self.noise)? } else { t.batch_parts(piece)? };
            let loss = self.loss(t, &parts)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            let grads = t.backward(&loss)?;
            let g = grad_vectors(self.vars, &grads)?;
            sum = Some(match sum {
                None => g,
                Some(s) => s.iter().zip(&g).map(|(a, b)| a + b).collect::<candle_core::Result<_>>()?,
            });
            if self.meta_step {
                sgd(self.vars, &grads, self.inner_lr)?;
            }
            last = Some(grads);
        }
        restore(self.vars, &slow)?;
        let mut grads = last.unwrap_or_default();
        for (v, g) in self.vars.iter().zip(sum.unwrap_or_default()) {
            grads.insert(v.as_tensor(), g);
        }
        Ok((loss_sum / sequence.len().max(1) as f64, grads, batch.len() + mem.len()))
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
        let step = Step {
            vars: &vars,
            name: &name,
            memory: &self.memory,
            old: self.old.as_ref(),
            replay_batch: self.replay_batch,
            inner_lr: self.inner_lr,
            inner_steps: self.inner_steps,
            alpha: self.alpha,
            noise: self.replay_noise,
            meta_step: self.meta_step,
            first_order: self.first_order,
        };
        let objective = self.objective;
        let first_stage = self.memory.is_empty() && self.old.is_none();
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            if first_stage {
                // Nothing to protect yet: plain training on the first modality.
                return t.step(st.opt()?, batch);
            }
            let (loss, grads, samples) = match objective {
                MetaObjective::Maml => step.maml(t, batch)?,
                MetaObjective::Alternating => step.alternating(t, batch)?,
            };
            t.apply(st.opt()?, &grads, samples)?;
            Ok(loss)
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
