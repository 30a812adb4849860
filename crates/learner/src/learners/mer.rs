//! `mer`: meta-experience replay (Riemer et al. 2019), within-batch Reptile.
//!
//! For each incoming batch: remember θ₀; split the batch into `inner_steps` pieces,
//! each joined with its share of a memory batch, and take one SGD step (`inner_lr`)
//! on each in turn; then move only part of the way, `θ ← θ₀ + β (θ_k − θ₀)` (β = `reptile_rate`, called
//! `beta` before it was renamed, as DER++'s `beta` is another thing). Reptile
//! turns the sequence of steps into an update that favours gradient agreement between
//! new and replayed samples.

use crate::error::Result;
use crate::keys::{Key, Search, Values};
use crate::learners::params::{restore, sgd, snapshot};
use crate::learners::replay::{self, Replay};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{Item, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "mer",
    role: Role::Strategy,
    summary: "meta-experience replay: within-batch Reptile over new and replayed samples",
    keys,
    build: |v| Ok(Box::new(Mer::new(v)?)),
};

fn keys() -> Vec<Key> {
    let mut keys = replay::keys(0.0, 0.0);
    keys.extend([
        Key::number("reptile_rate", 0.3, false, "Reptile rate β: the share of the within-batch move kept")
            .search(Search::Linear(0.05, 1.0)),
        Key::number("inner_lr", 0.03, true, "SGD learning rate of the within-batch steps")
            .search(Search::Log(1e-3, 0.3)),
        Key::count("inner_steps", 4, 1, "pieces (SGD steps) each batch is split into").search(Search::Ints(1, 8)),
    ]);
    keys
}

/// MER state: the memory and its rates.
pub struct Mer {
    replay: Replay,
    inner_lr: f64,
    inner_steps: usize,
    beta: f64,
}

impl Mer {
    fn new(v: &Values) -> Result<Self> {
        Ok(Self {
            replay: Replay::new(v)?,
            inner_lr: v.float("inner_lr")?,
            inner_steps: v.count("inner_steps")?,
            beta: v.float("reptile_rate")?,
        })
    }
}

impl Learner for Mer {
    replay::delegate_state!();

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let name = stage.modality_name(trainer).to_string();
        let vars = trainer.model.vars_for(&[&name]);
        let (replay, lr, k, beta) = (&self.replay, self.inner_lr, self.inner_steps, self.beta);
        // SGD inside each batch and a Reptile step: no optimiser state across epochs.
        let mut st = StageState::default();
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, _, batch| {
            let start = snapshot(&vars)?;
            let piece = batch.len().div_ceil(k).max(1);
            let mut loss_sum = 0.0;
            let mut n = 0;
            for chunk in batch.chunks(piece) {
                let mut items: Vec<Item> = chunk.to_vec();
                items.extend(replay.sample(replay.batch.div_ceil(k), t));
                let parts = replay.parts(t, &items, &name)?;
                let (out, loss) = t.forward_parts(&parts)?;
                let total = replay.with_distill(loss.total, &out.h, &parts, &name)?;
                let grads = t.backward(&total)?;
                sgd(&vars, &grads, lr)?;
                loss_sum += total.to_scalar::<f32>()? as f64;
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
        self.replay.end_stage(&stage.items(), trainer)
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn keys_and_their_rules() {
        let v = check_body(&super::ENTRY, "").unwrap();
        assert_eq!((v.float("inner_lr").unwrap(), v.count("inner_steps").unwrap()), (0.03, 4));
        let e = check_body(&super::ENTRY, "inner_lr = 0").unwrap_err().to_string();
        assert_eq!(e, "exp.toml:3: learner.inner_lr: must be a finite number > 0, got 0");
        assert_eq!(check_body(&super::ENTRY, "reptile_rate = 0.5").unwrap().float("reptile_rate").unwrap(), 0.5);
        // DER++'s label weight is `beta`; MER's Reptile rate has its own name.
        let e = check_body(&super::ENTRY, "beta = 0.3").unwrap_err().to_string();
        assert!(e.contains("learner.beta: not a key of learner 'mer'") && e.contains("reptile_rate"), "{e}");
    }
}
