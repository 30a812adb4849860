//! `meta`: the seed paper's meta-learning against forgetting, in our formulation.
//!
//! For a batch B_new of the current modality and a batch B_mem from the memory of
//! earlier modalities (replayed with `replay_noise` on their features and, with weight
//! `replay_distill`, the previous model's codes as distillation targets), `meta_objective`
//! picks the meta step:
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
//! `replay_distill · mean (h(θ'; B_new) − h_old(B_new))²`: the previous stage's model's codes
//! on the current batch are the targets.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use seqmodal_model::BatchPart;

use crate::error::Result;
use crate::keys::{Key, KeyDefault, Search, Values};
use crate::learners::params::{grad_vectors, maml_meta_gradient, restore, sgd, snapshot};
use crate::learners::replay::{self, Replay};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{Item, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "meta",
    role: Role::Strategy,
    summary: "the seed paper's meta-learning: fast weights on the new modality, slow update on memory and new",
    keys,
    build: |v| Ok(Box::new(Meta::new(v)?)),
};

/// The names `meta_objective` takes.
const OBJECTIVES: &[&str] = &["maml", "alternating"];

fn keys() -> Vec<Key> {
    let mut keys = replay::keys(0.6, 10.0);
    keys.extend([
        Key::number("inner_lr", 0.01, true, "SGD learning rate of the fast weights").search(Search::Log(1e-3, 0.1)),
        Key::count("inner_steps", 1, 1, "fast-weight steps per batch").search(Search::Ints(1, 5)),
        Key::number("meta_lr", 1e-3, true, "Adam learning rate of the slow update (default: [train] lr)")
            .default_to(KeyDefault::TrainLr)
            .search(Search::Log(1e-4, 1e-2)),
        Key::flag(
            "first_order",
            true,
            "first-order meta-gradient; false adds maml's Hessian term (finite-difference Hessian-vector products)",
        ),
        Key::flag("meta_step", true, "take the meta step; false is the ablation θ' = θ (same batches and options)"),
        Key::choice(
            "meta_objective",
            OBJECTIVES,
            "maml",
            "maml: inner steps on the new batch; alternating: Reptile steps over new and memory pieces",
        ),
    ]);
    keys
}

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

/// Meta-learner state.
pub struct Meta {
    replay: Replay,
    inner_lr: f64,
    inner_steps: usize,
    meta_lr: f64,
    meta_step: bool,
    first_order: bool,
    objective: MetaObjective,
}

impl Meta {
    fn new(v: &Values) -> Result<Self> {
        let objective = match v.choice("meta_objective")? {
            "alternating" => MetaObjective::Alternating,
            _ => MetaObjective::Maml,
        };
        let first_order = v.flag("first_order")?;
        if !first_order && objective != MetaObjective::Maml {
            return Err(v.at("first_order").err(
                "the second-order term belongs to meta_objective = \"maml\"; \"alternating\" is first-order \
                 by construction"
                    .into(),
            ));
        }
        Ok(Self {
            // The previous model is the old modalities' target even without a memory.
            replay: Replay::new(v)?.keep_previous_model(),
            inner_lr: v.float("inner_lr")?,
            inner_steps: v.count("inner_steps")?,
            meta_lr: v.float("meta_lr")?,
            meta_step: v.flag("meta_step")?,
            first_order,
            objective,
        })
    }
}

/// What one batch's meta step reads (borrowed from [`Meta`] for the stage).
struct Step<'m> {
    vars: &'m [Var],
    name: &'m str,
    replay: &'m Replay,
    inner_lr: f64,
    inner_steps: usize,
    meta_step: bool,
    first_order: bool,
}

impl Step<'_> {
    /// Model loss of `parts` plus the replay family's distillation term.
    fn loss(&self, t: &mut Trainer<'_>, parts: &[BatchPart]) -> Result<Tensor> {
        let (out, loss) = t.forward_parts(parts)?;
        self.replay.with_distill(loss.total, &out.h, parts, self.name)
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
        items.extend(self.replay.sample(self.replay.batch, t));
        let parts = self.replay.parts(t, &items, self.name)?;
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
        let mem = self.replay.sample(self.replay.batch, t);
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
            let parts = if replayed { self.replay.parts(t, piece, self.name)? } else { t.batch_parts(piece)? };
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
    replay::delegate_state!();

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let name = stage.modality_name(trainer).to_string();
        let vars = trainer.model.vars_for(&[&name]);
        let mut opt = trainer.optimizer(&[&name])?;
        candle_nn::Optimizer::set_learning_rate(&mut opt, self.meta_lr);
        let mut st = StageState::with_opt(opt);
        let step = Step {
            vars: &vars,
            name: &name,
            replay: &self.replay,
            inner_lr: self.inner_lr,
            inner_steps: self.inner_steps,
            meta_step: self.meta_step,
            first_order: self.first_order,
        };
        let objective = self.objective;
        let first_stage = self.replay.is_fresh();
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
        self.replay.end_stage(&stage.items(), trainer)
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn keys_defaults_and_rules() {
        let v = check_body(&super::ENTRY, "").unwrap();
        assert_eq!((v.float("meta_lr").unwrap(), v.float("replay_noise").unwrap()), (1e-3, 0.6));
        assert_eq!(v.float("replay_distill").unwrap(), 10.0);
        assert!(v.flag("meta_step").unwrap() && v.flag("first_order").unwrap());
        assert_eq!(v.choice("meta_objective").unwrap(), "maml");
        // Second order is real for maml, and refused where the objective has no Hessian term.
        assert!(check_body(&super::ENTRY, "first_order = false").is_ok());
        let e = check_body(&super::ENTRY, "first_order = false\nmeta_objective = \"alternating\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("exp.toml:3: learner.first_order: the second-order term"), "{e}");
        let e = check_body(&super::ENTRY, "meta_objective = \"reptile\"").unwrap_err().to_string();
        assert!(e.contains("learner.meta_objective: unknown value 'reptile' (known: maml, alternating)"), "{e}");
        let e = check_body(&super::ENTRY, "alpha = 10").unwrap_err().to_string();
        assert!(e.contains("learner.alpha: not a key of learner 'meta'") && e.contains("replay_distill"), "{e}");
    }
}
