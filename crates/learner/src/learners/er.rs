//! `er`: experience replay. Every step trains on the current batch together with a
//! batch drawn from the balanced memory of earlier stages, so the pairwise term also
//! relates new-modality items to stored old-modality items.

use crate::error::Result;
use crate::keys::Key;
use crate::learners::replay::{self, Replay};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{Item, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "er",
    role: Role::Strategy,
    summary: "experience replay from a balanced memory of earlier stages",
    keys,
    build: |v| Ok(Box::new(Er { replay: Replay::new(v)? })),
};

fn keys() -> Vec<Key> {
    replay::keys(0.0, 0.0)
}

/// Replay state: the memory.
pub struct Er {
    replay: Replay,
}

impl Learner for Er {
    replay::delegate_state!();

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        let name = stage.modality_name(trainer).to_string();
        let mut st = StageState::with_opt(trainer.optimizer(&[&name])?);
        let replay = &self.replay;
        trainer.epochs(stage.epochs, &stage.items(), &mut st, |t, st, batch| {
            let mut items: Vec<Item> = batch.to_vec();
            items.extend(replay.sample(replay.batch, t));
            let parts = replay.parts(t, &items, &name)?;
            let (out, loss) = t.forward_parts(&parts)?;
            let total = replay.with_distill(loss.total, &out.h, &parts, &name)?;
            let grads = t.backward(&total)?;
            t.apply(st.opt()?, &grads, items.len())?;
            Ok(total.to_scalar::<f32>()? as f64)
        })?;
        self.replay.end_stage(&stage.items(), trainer)
    }
}

#[cfg(test)]
mod tests {
    use crate::learners::check_body;

    #[test]
    fn memory_defaults_to_200_and_replay_batch_to_the_train_batch() {
        let v = check_body(&super::ENTRY, "").unwrap();
        assert_eq!((v.count("memory").unwrap(), v.count("replay_batch").unwrap()), (200, 128));
        let e = check_body(&super::ENTRY, "replay_batch = 0").unwrap_err().to_string();
        assert_eq!(e, "exp.toml:3: learner.replay_batch: must be a positive integer, got 0");
        // The replay options are off unless asked for.
        assert_eq!((v.float("replay_noise").unwrap(), v.float("replay_distill").unwrap()), (0.0, 0.0));
        let v = check_body(&super::ENTRY, "replay_noise = 0.3\nreplay_distill = 2").unwrap();
        assert_eq!((v.float("replay_noise").unwrap(), v.float("replay_distill").unwrap()), (0.3, 2.0));
        let e = check_body(&super::ENTRY, "lambda = 1").unwrap_err().to_string();
        assert!(e.contains("not a key of learner 'er' (its keys: memory, replay_batch"), "{e}");
    }
}
