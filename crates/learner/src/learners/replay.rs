//! The replay family's shared part (`er`, `agem`, `der`, `mer`, `meta`): the balanced
//! memory, `replay_batch`, the options every replay learner has (`replay_noise` on replayed
//! features, `replay_distill` of the previous model's codes on replayed rows), the memory's
//! check against the data, checkpoint state and footprint.

use candle_core::Tensor;
use seqmodal_model::{BatchPart, UnifiedModel};

use crate::checkpoint::LearnerState;
use crate::error::Result;
use crate::footprint::Footprint;
use crate::keys::{At, Key, KeyDefault, Search, Values};
use crate::memory::Memory;
use crate::trainer::{Item, ModalityTrain, Trainer};

/// `memory`: the budget of stored samples (0 is accepted by every learner, so one file can
/// sweep over learners with and without a memory).
pub fn memory_key() -> Key {
    Key::count("memory", 200, 0, "samples kept from earlier stages, over all of them")
        .search(Search::Ints(50, 2000))
        .zero_means_none()
}

/// `replay_batch`: memory samples per step.
pub fn replay_batch_key() -> Key {
    Key::count("replay_batch", 128, 1, "memory samples per step (default: [train] batch)")
        .default_to(KeyDefault::TrainBatch)
        .search(Search::Ints(16, 256))
}

/// `replay_noise`, off (0) unless a learner's default turns it on.
pub fn noise_key(default: f64) -> Key {
    Key::number("replay_noise", default, false, "std of Gaussian noise on replayed (standardised) features")
        .search(Search::Linear(0.0, 1.0))
}

/// `replay_distill`, off (0) unless a learner's default turns it on.
pub fn distill_key(default: f64) -> Key {
    Key::number(
        "replay_distill",
        default,
        false,
        "weight of the previous stage's model's codes as targets on replayed rows",
    )
    .search(Search::Log(0.1, 100.0))
}

/// The keys every replay learner has, in `config.toml` order, with its defaults of the options
/// (`0.0`: off).
pub fn keys(noise: f64, distill: f64) -> Vec<Key> {
    vec![memory_key(), replay_batch_key(), noise_key(noise), distill_key(distill)]
}

/// The memory and the replay options of one replay learner.
pub struct Replay {
    /// The balanced memory.
    pub memory: Memory,
    /// Memory samples per step.
    pub batch: usize,
    noise: f64,
    distill: f64,
    old: Option<UnifiedModel>,
    keep_old: bool,
    memory_at: At,
}

impl Replay {
    /// From the checked keys of [`keys`].
    pub fn new(v: &Values) -> Result<Self> {
        Ok(Self {
            memory: Memory::new(v.count("memory")?),
            batch: v.count("replay_batch")?,
            noise: v.float("replay_noise")?,
            distill: v.float("replay_distill")?,
            old: None,
            keep_old: false,
            memory_at: v.at("memory"),
        })
    }

    /// Keeps the previous stage's model even with `replay_distill` off (a learner that
    /// uses it itself).
    pub fn keep_previous_model(mut self) -> Self {
        self.keep_old = true;
        self
    }

    /// A memory cannot hold more than the stages ever show.
    pub fn check(&self, ds: &seqmodal_data::Dataset, trained: &[&str]) -> Result<()> {
        let mut seen = trained.to_vec();
        seen.sort_unstable();
        seen.dedup();
        let rows: usize = seen.iter().filter_map(|m| ds.modality(m)).map(|m| m.train.features.rows()).sum();
        let n = self.memory.capacity();
        if n > rows {
            return Err(self
                .memory_at
                .err(format!("{n} samples, but the stages' training data has only {rows} rows")));
        }
        Ok(())
    }

    /// Up to `n` stored items, drawn without replacement.
    pub fn sample(&self, n: usize, t: &mut Trainer<'_>) -> Vec<Item> {
        self.memory.sample(n, t.rng).into_iter().map(|s| s.item).collect()
    }

    /// Batch parts of `items`, rows of modalities other than `current` with `replay_noise`.
    pub fn parts(&self, t: &mut Trainer<'_>, items: &[Item], current: &str) -> Result<Vec<BatchPart>> {
        t.replay_parts(items, current, self.noise)
    }

    /// `replay_distill · mean (h − h_old)²` over the rows of `parts` of modalities other than
    /// `current` (with an empty memory: over every row), `h` the model's codes of `parts`;
    /// none before the first stage ends or with the option off.
    pub fn distill(&self, h: &Tensor, parts: &[BatchPart], current: &str) -> Result<Option<Tensor>> {
        let Some(old) = self.old.as_ref().filter(|_| self.distill > 0.0) else { return Ok(None) };
        let (h, targets) = if self.memory.is_empty() {
            (h.clone(), old.forward(parts)?.h)
        } else {
            let mut offset = 0;
            let (mut rows, mut kept) = (Vec::new(), Vec::new());
            for p in parts {
                let n = p.x.dim(0)?;
                if p.modality != current {
                    rows.push(h.narrow(0, offset, n)?);
                    kept.push(p.clone());
                }
                offset += n;
            }
            if kept.is_empty() {
                return Ok(None);
            }
            let h = if rows.len() == 1 { rows.remove(0) } else { Tensor::cat(&rows, 0)? };
            (h, old.forward(&kept)?.h)
        };
        let d = (h - targets.detach())?.sqr()?.mean_all()?;
        Ok(Some(d.affine(self.distill, 0.0)?))
    }

    /// `loss` plus the distillation term of [`Replay::distill`], if any.
    pub fn with_distill(
        &self,
        loss: Tensor,
        h: &Tensor,
        parts: &[BatchPart],
        current: &str,
    ) -> Result<Tensor> {
        Ok(match self.distill(h, parts, current)? {
            Some(d) => (loss + d)?,
            None => loss,
        })
    }

    /// After a stage: its rows join the memory's candidates, and the model is kept as the
    /// distillation target when that option is on.
    pub fn end_stage(&mut self, items: &[Item], trainer: &mut Trainer<'_>) -> Result<()> {
        self.memory.add_stage(items, trainer.data, trainer.rng);
        if self.keep_old || self.distill > 0.0 {
            self.old = Some(trainer.model.frozen_copy()?);
        }
        Ok(())
    }

    /// Whether nothing from earlier stages is kept yet (no memory, no previous model).
    pub fn is_fresh(&self) -> bool {
        self.memory.is_empty() && self.old.is_none()
    }

    /// Puts the memory and the previous model into a checkpoint.
    pub fn save(&self, state: &mut LearnerState) -> Result<()> {
        self.memory.save(state)?;
        if let Some(old) = &self.old {
            state.put_model("old", old);
        }
        Ok(())
    }

    /// Restores what [`Replay::save`] kept.
    pub fn load(&mut self, state: &LearnerState, model: &UnifiedModel) -> Result<()> {
        self.memory.load(state)?;
        self.old = state.model("old", model)?;
        Ok(())
    }

    /// The memory and, when kept, the previous model.
    pub fn footprint(&self, data: &[ModalityTrain]) -> Footprint {
        let mut f = self.memory.footprint(data);
        f.extra_param_copies = usize::from(self.old.is_some());
        f
    }
}

/// The [`crate::Learner`] methods every replay learner hands to its `replay: Replay` field
/// (the memory check, checkpoint state and footprint), written once.
macro_rules! delegate_state {
    () => {
        fn check(&self, ds: &seqmodal_data::Dataset, trained: &[&str]) -> crate::error::Result<()> {
            self.replay.check(ds, trained)
        }

        fn save_state(&self, state: &mut crate::checkpoint::LearnerState) -> crate::error::Result<()> {
            self.replay.save(state)
        }

        fn load_state(
            &mut self,
            state: &crate::checkpoint::LearnerState,
            model: &seqmodal_model::UnifiedModel,
        ) -> crate::error::Result<()> {
            self.replay.load(state, model)
        }

        fn footprint(&self, data: &[crate::trainer::ModalityTrain]) -> crate::footprint::Footprint {
            self.replay.footprint(data)
        }
    };
}
pub(crate) use delegate_state;
