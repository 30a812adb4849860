//! `paired`: the parallel paradigm the seed paper argues against. Every modality seen
//! so far is trained together on aligned pairs: a batch holds the same items (rows) in
//! each modality, each passing through its own input sub-network, and the pairwise
//! label-similarity likelihood spans the modalities (the DCMH-style inter-modal term)
//! besides the classification and quantisation terms. It needs a dataset whose rows
//! are aligned across modalities.

use std::collections::BTreeSet;

use crate::checkpoint::LearnerState;
use crate::error::{LearnerError, Result};
use crate::learners::{Learner, LearnerEntry, Role};
use crate::trainer::{Item, StageData, StageState, Trainer};

/// Registry entry.
pub static ENTRY: LearnerEntry = LearnerEntry {
    name: "paired",
    role: Role::Reference,
    summary: "parallel paradigm: all modalities seen so far together on aligned pairs (DCMH-style)",
    keys: Vec::new,
    build: |_| Ok(Box::new(Paired::default())),
};

/// Paired training over every modality seen so far.
#[derive(Debug, Default)]
pub struct Paired {
    modalities: Vec<usize>,
    rows: BTreeSet<u32>,
}

impl Learner for Paired {
    fn save_state(&self, state: &mut LearnerState) -> Result<()> {
        state.put("modalities", &self.modalities)?;
        state.put("rows", &self.rows)
    }

    fn load_state(&mut self, state: &LearnerState, _model: &seqmodal_model::UnifiedModel) -> Result<()> {
        self.modalities = state.get("modalities")?.unwrap_or_default();
        self.rows = state.get("rows")?.unwrap_or_default();
        Ok(())
    }

    fn check(&self, ds: &seqmodal_data::Dataset, _trained: &[&str]) -> Result<()> {
        if !ds.aligned {
            return Err(LearnerError::Learner {
                learner: "paired".into(),
                message: format!(
                    "dataset '{}' has no aligned pairs across modalities; paired training needs row i of every \
                     modality to be the same item",
                    ds.name
                ),
            });
        }
        Ok(())
    }

    fn train_stage(&mut self, trainer: &mut Trainer<'_>, stage: &StageData) -> Result<()> {
        if !self.modalities.contains(&stage.modality) {
            self.modalities.push(stage.modality);
        }
        self.rows.extend(stage.rows.iter().copied());
        let names: Vec<String> = self.modalities.iter().map(|&m| trainer.data[m].name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut st = StageState::with_opt(trainer.optimizer(&names)?);
        // Batches are drawn over rows; each row brings its item in every modality.
        let modalities = self.modalities.clone();
        let per_row = modalities.len().max(1);
        let rows_per_batch = (trainer.train.batch / per_row).max(1);
        let all_rows = &self.rows;
        trainer.epoch_loop(stage.epochs, &mut st, |t, st, epoch| {
            let mut rows: Vec<u32> = all_rows.iter().copied().collect();
            rand::seq::SliceRandom::shuffle(rows.as_mut_slice(), t.rng);
            let mut sum = 0.0;
            let chunks: Vec<&[u32]> = rows.chunks(rows_per_batch).collect();
            for chunk in &chunks {
                t.check_interrupt()?;
                let items: Vec<Item> =
                    modalities.iter().flat_map(|&m| chunk.iter().map(move |&r| (m as u32, r))).collect();
                sum += t.step(st.opt()?, &items)?;
            }
            t.observer.on_epoch(t.stage, epoch + 1, sum / chunks.len().max(1) as f64);
            Ok(())
        })
    }
}
