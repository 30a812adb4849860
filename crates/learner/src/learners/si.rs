//! `si`: synaptic intelligence (Zenke et al. 2017).
//!
//! During a stage each parameter accumulates its contribution to the loss decrease,
//! `ω += −g · Δθ` per step, `g` the gradient of the stage's loss without the penalty. At the end, `Ω += ω / ((θ_end − θ_start)² + ξ)` and the
//! anchor becomes `θ_end`; training adds `c · Σ Ω (θ − θ*)²`.

use candle_core::Tensor;

use crate::checkpoint::LearnerState;
use crate::error::Result;
use crate::footprint::Footprint;
use crate::keys::{Key, Search, Values};
use crate::learners::params::{penalty_grad, snapshot, weighted_distance};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{ModalityTrain, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "si",
    role: Role::Strategy,
    summary: "synaptic intelligence: a pull towards earlier weights, weighted by each one's path integral",
    keys,
    build: |v| Ok(Box::new(Si::new(v)?)),
};

fn keys() -> Vec<Key> {
    vec![
        Key::number("c", 0.5, false, "penalty strength c").search(Search::Log(0.01, 10.0)),
        Key::number("xi", 1e-3, true, "damping ξ of the importance").search(Search::Log(1e-4, 1e-1)),
    ]
}

/// SI state: consolidated importance and anchor per parameter.
pub struct Si {
    c: f64,
    xi: f64,
    importance: Vec<Tensor>,
    anchor: Vec<Tensor>,
}

impl Si {
    fn new(v: &Values) -> Result<Self> {
        Ok(Self { c: v.float("c")?, xi: v.float("xi")?, importance: Vec::new(), anchor: Vec::new() })
    }
}

impl Learner for Si {
    fn save_state(&self, state: &mut LearnerState) -> Result<()> {
        state.put_tensors("importance", &self.importance);
        state.put_tensors("anchor", &self.anchor);
        Ok(())
    }

    fn load_state(&mut self, state: &LearnerState, _model: &seqmodal_model::UnifiedModel) -> Result<()> {
        self.importance = state.tensors("importance");
        self.anchor = state.tensors("anchor");
        Ok(())
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let vars = trainer.model.vars();
        // The stage's start and its path integrals ω live in the stage state, so an
        // in-stage checkpoint keeps them (on resume they replace these fresh values).
        let mut st = StageState::with_opt(trainer.optimizer(&[stage.modality_name(trainer)])?);
        st.tensors.insert("start".into(), snapshot(&vars)?);
        let zeros =
            vars.iter().map(|v| v.as_tensor().detach().zeros_like()).collect::<candle_core::Result<_>>()?;
        st.tensors.insert("omega".into(), zeros);
        let (c, importance, anchor) = (self.c, &self.importance, &self.anchor);
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let (_, loss) = t.forward(batch)?;
            let mut total = loss.total;
            if let Some(pen) = weighted_distance(&vars, anchor, importance)? {
                total = (total + pen.affine(c, 0.0)?)?;
            }
            let grads = t.backward(&total)?;
            let before = snapshot(&vars)?;
            let (opt, lists) = st.parts()?;
            t.apply(opt, &grads, batch.len())?;
            let omega = lists.get_mut("omega").ok_or_else(|| crate::error::LearnerError::Learner {
                learner: "si".into(),
                message: "stage state lost ω".into(),
            })?;
            for (i, ((w, v), b)) in omega.iter_mut().zip(&vars).zip(&before).enumerate() {
                if let Some(g) = grads.get(v.as_tensor()) {
                    // Plain numbers, not a graph: ω must not keep every step's graph alive.
                    let mut g = g.detach();
                    // ω follows the stage's own loss (Zenke et al. use the unregularised
                    // gradient): the penalty's share would lower the importance of exactly the
                    // parameters it pulls back to their anchor.
                    if let (Some(a), Some(om)) = (anchor.get(i), importance.get(i)) {
                        g = (g - penalty_grad(b, a, om, c)?)?;
                    }
                    let delta = (v.as_tensor().detach() - b)?;
                    *w = (&*w - (g * delta)?)?;
                }
            }
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        let (start, omega) = (st.list("start")?, st.list("omega")?);
        let end = snapshot(&vars)?;
        let mut new_importance = Vec::with_capacity(vars.len());
        for (i, w) in omega.iter().enumerate() {
            let drift = ((&end[i] - &start[i])?.sqr()? + self.xi)?;
            // Negative path integrals (parameters pushed uphill) carry no importance.
            let add = (w / drift)?.relu()?;
            new_importance.push(match self.importance.get(i) {
                Some(old) => (old + add)?,
                None => add,
            });
        }
        self.importance = new_importance;
        self.anchor = end;
        Ok(())
    }

    fn footprint(&self, _: &[ModalityTrain]) -> Footprint {
        Footprint { extra_param_copies: 3, ..Footprint::default() }
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn keys_and_their_rules() {
        let v = check_body(&super::ENTRY, "").unwrap();
        assert_eq!((v.float("c").unwrap(), v.float("xi").unwrap()), (0.5, 1e-3));
        let e = check_body(&super::ENTRY, "xi = 0.0").unwrap_err().to_string();
        assert_eq!(e, "exp.toml:3: learner.xi: must be a finite number > 0, got 0");
    }
}
