//! `lwf`: learning without forgetting (Li & Hoiem 2017), adapted to hashing.
//!
//! The model at the end of the previous stage is kept frozen. On each current batch the
//! loss adds `α · (mean (h − h_old)² + T² · KL(softmax(z_old/T) ‖ softmax(z/T)))`:
//! the new model must keep the old model's codes and label beliefs on the new data.

use candle_core::{Tensor, D};
use seqmodal_model::UnifiedModel;

use crate::checkpoint::LearnerState;
use crate::error::Result;
use crate::footprint::Footprint;
use crate::keys::{Key, Search, Values};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{ModalityTrain, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "lwf",
    role: Role::Strategy,
    summary: "learning without forgetting: distils the previous stage's model on the new data",
    keys,
    build: |v| Ok(Box::new(Lwf::new(v)?)),
};

fn keys() -> Vec<Key> {
    vec![
        Key::number("alpha", 1.0, false, "weight of the distillation term").search(Search::Log(0.01, 100.0)),
        Key::number("temperature", 2.0, true, "softmax temperature T of the logit distillation")
            .search(Search::Linear(1.0, 5.0)),
    ]
}

/// LwF state: the previous stage's model.
pub struct Lwf {
    alpha: f64,
    temperature: f64,
    old: Option<UnifiedModel>,
}

impl Lwf {
    fn new(v: &Values) -> Result<Self> {
        Ok(Self { alpha: v.float("alpha")?, temperature: v.float("temperature")?, old: None })
    }
}

/// `mean (h − h_old)² + T²·KL(p_old ‖ p)` with temperature-softened distributions.
pub fn distillation(
    h: &Tensor,
    logits: &Tensor,
    h_old: &Tensor,
    logits_old: &Tensor,
    t: f64,
) -> Result<Tensor> {
    let codes = (h - h_old)?.sqr()?.mean_all()?;
    let logp = candle_nn::ops::log_softmax(&logits.affine(1.0 / t, 0.0)?, D::Minus1)?;
    let logq = candle_nn::ops::log_softmax(&logits_old.affine(1.0 / t, 0.0)?, D::Minus1)?;
    let kl = (logq.exp()? * (&logq - logp)?)?.sum(D::Minus1)?.mean_all()?;
    Ok((codes + kl.affine(t * t, 0.0)?)?)
}

impl Learner for Lwf {
    fn save_state(&self, state: &mut LearnerState) -> Result<()> {
        if let Some(old) = &self.old {
            state.put_model("old", old);
        }
        Ok(())
    }

    fn load_state(&mut self, state: &LearnerState, model: &seqmodal_model::UnifiedModel) -> Result<()> {
        self.old = state.model("old", model)?;
        Ok(())
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let mut st = StageState::with_opt(trainer.optimizer(&[stage.modality_name(trainer)])?);
        let (alpha, temp, old) = (self.alpha, self.temperature, &self.old);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            // One gathered batch serves both the new and the old model.
            let parts = t.batch_parts(batch)?;
            let (out, loss) = t.forward_parts(&parts)?;
            let mut total = loss.total;
            if let Some(old) = old {
                let o = old.forward(&parts)?;
                let d = distillation(&out.h, &out.logits, &o.h.detach(), &o.logits.detach(), temp)?;
                total = (total + d.affine(alpha, 0.0)?)?;
            }
            let grads = t.backward(&total)?;
            t.apply(st.opt()?, &grads, batch.len())?;
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        self.old = Some(trainer.model.frozen_copy()?);
        Ok(())
    }

    fn footprint(&self, _: &[ModalityTrain]) -> Footprint {
        Footprint { extra_param_copies: 1, ..Footprint::default() }
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn keys_and_their_rules() {
        let v = check_body(&super::ENTRY, "temperature = 3").unwrap();
        assert_eq!((v.float("alpha").unwrap(), v.float("temperature").unwrap()), (1.0, 3.0));
        let e = check_body(&super::ENTRY, "temperature = 0").unwrap_err().to_string();
        assert_eq!(e, "exp.toml:3: learner.temperature: must be a finite number > 0, got 0");
    }
}
