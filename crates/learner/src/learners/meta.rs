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
//! the memory. The old modalities' term, `replay_distill · mean (h(θ') − h_old)²` (the replay
//! family's code distillation, called `alpha` here before every replay learner had it), takes
//! the previous stage's model's codes as targets on the replayed rows, or on the current batch
//! without a memory (`memory = 0`).

use crate::checkpoint::LearnerState;
use crate::error::Result;
use crate::footprint::Footprint;
use crate::keys::{Key, KeyDefault, Search, Values};
use crate::learners::params::{restore, sgd, snapshot};
use crate::learners::replay::{self, Replay};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{Item, ModalityTrain, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "meta",
    role: Role::Strategy,
    summary: "the seed paper's meta-learning: fast weights on the new modality, slow update on memory and new",
    keys,
    build: |v| Ok(Box::new(Meta::new(v)?)),
};

fn keys() -> Vec<Key> {
    let mut keys = replay::keys(0.6, 10.0);
    keys.extend([
        Key::number("inner_lr", 0.01, true, "SGD learning rate of the fast weights").search(Search::Log(1e-3, 0.1)),
        Key::count("inner_steps", 1, 1, "fast-weight steps per batch").search(Search::Ints(1, 5)),
        Key::number("meta_lr", 1e-3, true, "Adam learning rate of the slow update (default: [train] lr)")
            .default_to(KeyDefault::TrainLr)
            .search(Search::Log(1e-4, 1e-2)),
        Key::flag("first_order", true, "first-order meta-gradient (second order is not available)"),
    ]);
    keys
}

/// Meta-learner state.
pub struct Meta {
    replay: Replay,
    inner_lr: f64,
    inner_steps: usize,
    meta_lr: f64,
}

impl Meta {
    fn new(v: &Values) -> Result<Self> {
        if !v.flag("first_order")? {
            return Err(v.at("first_order").err(
                "second-order meta-gradients need gradients of gradients, which candle's autograd does not \
                 provide; use first_order = true"
                    .into(),
            ));
        }
        Ok(Self {
            // The previous model is the old modalities' target even without a memory.
            replay: Replay::new(v)?.keep_previous_model(),
            inner_lr: v.float("inner_lr")?,
            inner_steps: v.count("inner_steps")?,
            meta_lr: v.float("meta_lr")?,
        })
    }
}

impl Learner for Meta {
    fn check(&self, ds: &seqmodal_data::Dataset, trained: &[&str]) -> Result<()> {
        self.replay.check(ds, trained)
    }

    fn save_state(&self, state: &mut LearnerState) -> Result<()> {
        self.replay.save(state)
    }

    fn load_state(&mut self, state: &LearnerState, model: &seqmodal_model::UnifiedModel) -> Result<()> {
        self.replay.load(state, model)
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let name = stage.modality_name(trainer).to_string();
        let vars = trainer.model.vars_for(&[&name]);
        let mut opt = trainer.optimizer(&[&name])?;
        candle_nn::Optimizer::set_learning_rate(&mut opt, self.meta_lr);
        let mut st = StageState::with_opt(opt);
        let (replay, lr, k) = (&self.replay, self.inner_lr, self.inner_steps);
        let first_stage = replay.is_fresh();
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
            items.extend(replay.sample(replay.batch, t));
            // The old modalities' term: the previous model's codes as targets, on the
            // (noisy) replayed rows when there is a memory, else on the current batch.
            let parts = replay.parts(t, &items, &name)?;
            let (out, loss) = t.forward_parts(&parts)?;
            let total = replay.with_distill(loss.total, &out.h, &parts, &name)?;
            let grads = t.backward(&total)?;
            restore(&vars, &slow)?;
            t.apply(st.opt()?, &grads, items.len())?;
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        self.replay.end_stage(&stage.items(), trainer)
    }

    fn footprint(&self, data: &[ModalityTrain]) -> Footprint {
        self.replay.footprint(data)
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn first_order_must_stay_true_and_meta_lr_follows_train_lr() {
        let e = check_body(&super::ENTRY, "first_order = false").unwrap_err().to_string();
        assert!(e.starts_with("exp.toml:3: learner.first_order: second-order"), "{e}");
        let v = check_body(&super::ENTRY, "").unwrap();
        assert_eq!((v.float("meta_lr").unwrap(), v.float("replay_noise").unwrap()), (1e-3, 0.6));
        assert_eq!(v.float("replay_distill").unwrap(), 10.0);
        let e = check_body(&super::ENTRY, "alpha = 10").unwrap_err().to_string();
        assert!(e.contains("learner.alpha: not a key of learner 'meta'") && e.contains("replay_distill"), "{e}");
    }
}
