//! `joint`: the non-sequential reference. At stage t it trains on the mixed training
//! data of every stage 1..=t (all modalities seen so far, shuffled together), so the
//! final stage is a model trained jointly on everything; batches mix modalities, so
//! the pairwise term also ties modalities together directly.

use std::collections::HashSet;

use crate::checkpoint::LearnerState;
use crate::error::Result;
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{Item, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "joint",
    role: Role::Reference,
    summary: "trains on the union of every stage's data so far (non-sequential reference)",
    keys: Vec::new,
    build: |_| Ok(Box::new(Joint::default())),
};

/// Accumulates every stage's rows and trains on their union.
#[derive(Debug, Default)]
pub struct Joint {
    seen: Vec<Item>,
    member: HashSet<Item>,
    modalities: Vec<String>,
}

impl Learner for Joint {
    fn save_state(&self, state: &mut LearnerState) -> Result<()> {
        state.put("seen", &self.seen)?;
        state.put("modalities", &self.modalities)
    }

    fn load_state(&mut self, state: &LearnerState, _model: &seqmodal_model::UnifiedModel) -> Result<()> {
        self.seen = state.get("seen")?.unwrap_or_default();
        self.member = self.seen.iter().copied().collect();
        self.modalities = state.get("modalities")?.unwrap_or_default();
        Ok(())
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        for it in stage.items() {
            if self.member.insert(it) {
                self.seen.push(it);
            }
        }
        let name = stage.modality_name(trainer).to_string();
        if !self.modalities.contains(&name) {
            self.modalities.push(name);
        }
        let names: Vec<&str> = self.modalities.iter().map(String::as_str).collect();
        let mut st = StageState::with_opt(trainer.optimizer(&names)?);
        trainer.epochs(stage.epochs, &self.seen, &mut st, |t, st, batch| t.step(st.opt()?, batch))
    }
}
