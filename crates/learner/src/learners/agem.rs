//! `agem`: averaged gradient episodic memory (Chaudhry et al. 2019).
//!
//! Each step computes the current batch's gradient g and a memory batch's gradient
//! g_ref; when they conflict (g·g_ref < 0) g is projected to
//! `g − (g·g_ref / g_ref·g_ref) g_ref`, so the step does not increase the memory loss.

use crate::error::Result;
use crate::keys::Key;
use crate::learners::params::grad_dot;
use crate::learners::replay::{self, Replay};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "agem",
    role: Role::Strategy,
    summary: "averaged gradient episodic memory: projects steps that would raise the memory loss",
    keys,
    build: |v| Ok(Box::new(Agem { replay: Replay::new(v)? })),
};

fn keys() -> Vec<Key> {
    replay::keys(0.0, 0.0)
}

/// A-GEM state: the memory.
pub struct Agem {
    replay: Replay,
}

impl Learner for Agem {
    replay::delegate_state!();

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let name = stage.modality_name(trainer).to_string();
        let vars = trainer.model.vars_for(&[&name]);
        let mut st = StageState::with_opt(trainer.optimizer(&[&name])?);
        let replay = &self.replay;
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let (_, loss) = t.forward(batch)?;
            let mut grads = t.backward(&loss.total)?;
            if !replay.memory.is_empty() {
                // The reference gradient: the memory's loss (with the replay options).
                let mem = replay.sample(replay.batch, t);
                let parts = replay.parts(t, &mem, &name)?;
                let (out, mloss) = t.forward_parts(&parts)?;
                let mtotal = replay.with_distill(mloss.total, &out.h, &parts, &name)?;
                let gref = t.backward(&mtotal)?;
                let dot = grad_dot(&vars, &grads, &gref)?;
                if dot < 0.0 {
                    let norm = grad_dot(&vars, &gref, &gref)?.max(1e-12);
                    for v in &vars {
                        if let (Some(g), Some(r)) = (grads.get(v.as_tensor()), gref.get(v.as_tensor())) {
                            let projected = (g - r.affine(dot / norm, 0.0)?)?;
                            grads.insert(v.as_tensor(), projected);
                        }
                    }
                }
            }
            t.apply(st.opt()?, &grads, batch.len())?;
            Ok(loss.total.to_scalar::<f32>()? as f64)
        })?;
        self.replay.end_stage(&stage.items(), trainer)
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn keys_and_their_rules() {
        let v = check_body(&super::ENTRY, "memory = 0").unwrap();
        assert_eq!(v.count("memory").unwrap(), 0);
        let e = check_body(&super::ENTRY, "memory = -1").unwrap_err().to_string();
        assert_eq!(e, "exp.toml:3: learner.memory: must be an integer >= 0, got -1");
    }
}
