//! `der`: dark experience replay, DER++ (Buzzega et al. 2020).
//!
//! The memory stores each sample's classifier logits from when it was stored. Each step
//! adds `α · mean (z_mem − z_stored)²` on one memory batch and `β ·` the model loss
//! (labels) on a second memory batch.

use candle_core::Tensor;

use crate::error::Result;
use crate::keys::{Key, Search, Values};
use crate::learners::replay::{self, Replay};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{Item, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "der",
    role: Role::Strategy,
    summary: "dark experience replay (DER++): replays stored logits and labels",
    keys,
    build: |v| Ok(Box::new(Der::new(v)?)),
};

fn keys() -> Vec<Key> {
    let mut keys = replay::keys(0.0, 0.0);
    keys.extend([
        Key::number("alpha", 0.5, false, "weight of the stored-logit term").search(Search::Log(0.01, 10.0)),
        Key::number("beta", 0.5, false, "weight of the label term on a second memory batch")
            .search(Search::Log(0.01, 10.0)),
    ]);
    keys
}

/// DER++ state: memory with stored logits.
pub struct Der {
    replay: Replay,
    alpha: f64,
    beta: f64,
}

impl Der {
    fn new(v: &Values) -> Result<Self> {
        Ok(Self { replay: Replay::new(v)?, alpha: v.float("alpha")?, beta: v.float("beta")? })
    }
}

impl Learner for Der {
    replay::delegate_state!();

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let name = stage.modality_name(trainer).to_string();
        let mut st = StageState::with_opt(trainer.optimizer(&[&name])?);
        let (replay, alpha, beta) = (&self.replay, self.alpha, self.beta);
        let classes = trainer.data.first().map_or(1, |d| d.classes);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let (_, loss) = t.forward(batch)?;
            let mut total = loss.total;
            let mut samples = batch.len();
            if !replay.memory.is_empty() {
                let first = replay.memory.sample(replay.batch, t.rng);
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
                let parts = replay.parts(t, &items, &name)?;
                let (out, _) = t.forward_parts(&parts)?;
                let target = Tensor::from_vec(target, (order.len(), classes), out.logits.device())?;
                let logit_term = (&out.logits - target)?.sqr()?.mean_all()?;
                let second = replay.sample(replay.batch, t);
                let second_parts = replay.parts(t, &second, &name)?;
                let (_, label_loss) = t.forward_parts(&second_parts)?;
                total = ((total + logit_term.affine(alpha, 0.0)?)? + label_loss.total.affine(beta, 0.0)?)?;
                total = replay.with_distill(total, &out.h, &parts, &name)?;
                samples += items.len() + second.len();
            }
            let grads = t.backward(&total)?;
            t.apply(st.opt()?, &grads, samples)?;
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        self.replay.end_stage(&stage.items(), trainer)?;
        // Record logits for newly stored samples with the model as it is now.
        let missing: Vec<Item> =
            self.replay.memory.stored().iter().filter(|s| s.logits.is_none()).map(|s| s.item).collect();
        for chunk in missing.chunks(256) {
            let order = Trainer::output_order(chunk);
            let out = trainer.model.forward(&trainer.batch_parts(chunk)?)?;
            let rows = out.logits.to_vec2::<f32>()?;
            for (it, row) in order.into_iter().zip(rows) {
                self.replay.memory.set_logits(it, row);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn keys_and_their_rules() {
        let v = check_body(&super::ENTRY, "alpha = 2").unwrap();
        assert_eq!((v.float("alpha").unwrap(), v.float("beta").unwrap()), (2.0, 0.5));
        let e = check_body(&super::ENTRY, "beta = -0.5").unwrap_err().to_string();
        assert_eq!(e, "exp.toml:3: learner.beta: must be a finite number >= 0, got -0.5");
    }
}
