//! `ewc`: online elastic weight consolidation (Schwarz et al. 2018).
//!
//! After each stage the diagonal empirical Fisher `F_new = mean_i g_i²` is estimated
//! from per-sample gradients `g_i` (each row's loss on its own, Kirkpatrick et al. 2017)
//! on up to `fisher_samples` rows of that stage, and folded in as `F ← γ·F + F_new`;
//! the anchor `θ*` is the model at that point. Training adds `λ/2 · Σ F (θ − θ*)²`.
//!
//! Per-sample, not per-batch: the square of a batch-mean gradient estimates
//! `ḡ² + Var(g)/B`, which near convergence is about B times smaller than the Fisher,
//! and made `λ` act B times weaker.

use candle_core::Tensor;

use crate::checkpoint::LearnerState;
use crate::error::Result;
use crate::footprint::Footprint;
use crate::keys::{Key, Search, Values};
use crate::learners::params::{snapshot, weighted_distance};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{ModalityTrain, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "ewc",
    role: Role::Strategy,
    summary: "online elastic weight consolidation: a Fisher-weighted pull towards earlier stages' weights",
    keys,
    build: |v| Ok(Box::new(Ewc::new(v)?)),
};

fn keys() -> Vec<Key> {
    vec![
        Key::number("lambda", 100.0, false, "penalty strength λ").search(Search::Log(1.0, 1e4)),
        Key::number("gamma", 0.9, false, "online decay of the old Fisher").search(Search::Linear(0.5, 1.0)),
        Key::count("fisher_samples", 1000, 1, "rows of a stage whose per-sample gradients estimate its Fisher")
            .search(Search::Ints(100, 2000)),
    ]
}

/// Online EWC state: Fisher diagonal and anchor, one tensor per model parameter.
pub struct Ewc {
    lambda: f64,
    gamma: f64,
    fisher_samples: usize,
    fisher: Vec<Tensor>,
    anchor: Vec<Tensor>,
}

impl Ewc {
    fn new(v: &Values) -> Result<Self> {
        Ok(Self {
            lambda: v.float("lambda")?,
            gamma: v.float("gamma")?,
            fisher_samples: v.count("fisher_samples")?,
            fisher: Vec::new(),
            anchor: Vec::new(),
        })
    }
}

impl Learner for Ewc {
    fn save_state(&self, state: &mut LearnerState) -> Result<()> {
        state.put_tensors("fisher", &self.fisher);
        state.put_tensors("anchor", &self.anchor);
        Ok(())
    }

    fn load_state(&mut self, state: &LearnerState, _model: &seqmodal_model::UnifiedModel) -> Result<()> {
        self.fisher = state.tensors("fisher");
        self.anchor = state.tensors("anchor");
        Ok(())
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let vars = trainer.model.vars();
        let mut st = StageState::with_opt(trainer.optimizer(&[stage.modality_name(trainer)])?);
        let (lambda, fisher, anchor) = (self.lambda, &self.fisher, &self.anchor);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let (_, loss) = t.forward(batch)?;
            let mut total = loss.total;
            if let Some(pen) = weighted_distance(&vars, anchor, fisher)? {
                total = (total + pen.affine(lambda / 2.0, 0.0)?)?;
            }
            let grads = t.backward(&total)?;
            t.apply(st.opt()?, &grads, batch.len())?;
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        // Fisher of this stage: squared per-sample gradients over a seeded sample of its rows.
        let mut new_f: Vec<Tensor> =
            vars.iter().map(|v| v.as_tensor().detach().zeros_like()).collect::<candle_core::Result<_>>()?;
        let mut rows = trainer.shuffled(&stage.items());
        rows.truncate(self.fisher_samples);
        for &row in &rows {
            let (_, loss) = trainer.forward(&[row])?;
            let grads = trainer.backward(&loss.total)?;
            for (f, v) in new_f.iter_mut().zip(&vars) {
                if let Some(g) = grads.get(v.as_tensor()) {
                    *f = (&*f + g.detach().sqr()?)?;
                }
            }
        }
        let n = rows.len().max(1) as f64;
        self.fisher = if self.fisher.is_empty() {
            new_f.iter().map(|f| f.affine(1.0 / n, 0.0)).collect::<candle_core::Result<_>>()?
        } else {
            self.fisher
                .iter()
                .zip(&new_f)
                .map(|(old, f)| old.affine(self.gamma, 0.0)? + f.affine(1.0 / n, 0.0)?)
                .collect::<candle_core::Result<_>>()?
        };
        self.anchor = snapshot(&vars)?;
        Ok(())
    }

    fn footprint(&self, _: &[ModalityTrain]) -> Footprint {
        Footprint { extra_param_copies: 2, ..Footprint::default() }
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn keys_and_their_rules() {
        let v = check_body(&super::ENTRY, "lambda = 5").unwrap();
        assert_eq!((v.float("lambda").unwrap(), v.count("fisher_samples").unwrap()), (5.0, 1000));
        let e = check_body(&super::ENTRY, "fisher_samples = 0").unwrap_err().to_string();
        assert_eq!(e, "exp.toml:3: learner.fisher_samples: must be a positive integer, got 0");
        let e = check_body(&super::ENTRY, "lambda = -1").unwrap_err().to_string();
        assert!(e.starts_with("exp.toml:3: learner.lambda: must be a finite number >= 0"), "{e}");
    }
}
