//! Training plumbing shared by every learner: the training data of each modality,
//! stage row sets, shuffled batches, and one optimiser step.

use candle_core::backprop::GradStore;
use candle_core::Tensor;
use candle_nn::{Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use seqmodal_data::Dataset;
use seqmodal_model::{BatchPart, FusedAdamW, LossParts, Output, UnifiedModel};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::checkpoint::{self, Counters, InStage, LearnerState, Position, Snapshot, StageProgress};
use crate::error::{LearnerError, Result};
use crate::evaluate::EvalRow;
use crate::observer::{EpochEnd, Observer};

/// One training sample: (modality index in the dataset, row in its train split).
pub type Item = (u32, u32);

/// Training split of one modality, as flat f32 buffers ready for tensors.
#[derive(Clone, Debug)]
pub struct ModalityTrain {
    /// Modality name.
    pub name: String,
    /// Feature dimension.
    pub dim: usize,
    /// Row-major features.
    pub x: Vec<f32>,
    /// Row-major multi-hot labels as f32.
    pub y: Vec<f32>,
    /// Number of classes.
    pub classes: usize,
}

impl ModalityTrain {
    /// Copies a dataset's train splits.
    pub fn from_dataset(ds: &Dataset) -> Vec<ModalityTrain> {
        ds.modalities
            .iter()
            .map(|m| ModalityTrain {
                name: m.name.clone(),
                dim: m.dim(),
                x: m.train.features.data().to_vec(),
                y: m.train.labels.data().iter().map(|&v| v as f32).collect(),
                classes: m.train.labels.classes(),
            })
            .collect()
    }
}

/// The rows one stage may train on.
#[derive(Clone, Debug)]
pub struct StageData {
    /// 1-based stage number.
    pub stage: usize,
    /// Modality index in the dataset.
    pub modality: usize,
    /// Train-split rows of that modality (after the stage's class filter).
    pub rows: Vec<u32>,
    /// Epochs of this stage.
    pub epochs: usize,
}

impl StageData {
    /// The stage's rows as items.
    pub fn items(&self) -> Vec<Item> {
        self.rows.iter().map(|&r| (self.modality as u32, r)).collect()
    }

    /// Name of the stage's modality.
    pub fn modality_name<'t>(&self, trainer: &'t Trainer<'_>) -> &'t str {
        &trainer.data[self.modality].name
    }
}

/// What a learner carries from one epoch of a stage to the next: saved by in-stage
/// checkpoints and restored on resume, so a stage continues exactly where it stopped.
#[derive(Default)]
pub struct StageState {
    /// The stage's optimiser, when the learner uses one.
    pub opt: Option<FusedAdamW>,
    /// Named tensor lists (e.g. SI's path integrals and the stage's starting parameters).
    pub tensors: BTreeMap<String, Vec<Tensor>>,
}

impl StageState {
    /// A state holding just an optimiser.
    pub fn with_opt(opt: FusedAdamW) -> Self {
        Self { opt: Some(opt), tensors: BTreeMap::new() }
    }

    /// The optimiser and the tensor lists, borrowed together.
    pub fn parts(&mut self) -> Result<(&mut FusedAdamW, &mut BTreeMap<String, Vec<Tensor>>)> {
        match &mut self.opt {
            Some(opt) => Ok((opt, &mut self.tensors)),
            None => Err(LearnerError::Learner {
                learner: "trainer".into(),
                message: "this stage has no optimiser".into(),
            }),
        }
    }

    /// The optimiser.
    pub fn opt(&mut self) -> Result<&mut FusedAdamW> {
        Ok(self.parts()?.0)
    }

    /// The tensor list `name` (an error naming it when the learner never set it).
    pub fn list(&self, name: &str) -> Result<&Vec<Tensor>> {
        self.tensors.get(name).ok_or_else(|| LearnerError::Learner {
            learner: "trainer".into(),
            message: format!("stage state has no '{name}'"),
        })
    }
}

/// Checked `[train]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    /// Epochs per stage.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Epochs between in-stage checkpoints; 0: checkpoints after stages only.
    pub checkpoint_every: usize,
}

/// In-stage checkpointing of one stage: where and how often, what the run held when the
/// stage began (written with each checkpoint), and the stage's progress to resume from.
pub struct StageCheckpoints<'a> {
    /// Checkpoint directory.
    pub dir: &'a Path,
    /// Epochs between checkpoints.
    pub every: usize,
    /// The resolved experiment.
    pub config: &'a str,
    /// Counters of the finished stages.
    pub counters: Counters,
    /// Evaluation rows of the finished stages.
    pub rows: &'a [EvalRow],
    /// The learner's state as the stage began.
    pub learner: &'a LearnerState,
    /// Frozen database codes.
    pub frozen: &'a BTreeMap<String, seqmodal_hamming::Codes>,
    /// When the stage's training started (this session).
    pub started: Instant,
    /// A stage checkpoint to continue from (taken by the stage's epoch loop).
    pub resume: Option<InStage>,
    /// Training seconds of the stage before this session (from the checkpoint resumed).
    pub earlier_seconds: f64,
}

/// Batching and optimisation for learners; counts what the summary reports.
pub struct Trainer<'a> {
    /// The model being trained.
    pub model: &'a mut UnifiedModel,
    /// Training data of every modality (learners only touch what the scenario allows).
    pub data: &'a [ModalityTrain],
    /// Shuffling and sampling randomness (seeded per run).
    pub rng: &'a mut ChaCha8Rng,
    /// `[train]` settings.
    pub train: &'a TrainSpec,
    /// Progress sink.
    pub observer: &'a mut dyn Observer,
    /// Stop request (Ctrl-C): checked before every batch and optimiser step.
    pub interrupt: Option<&'a AtomicBool>,
    /// Current stage (1-based), for progress reports.
    pub stage: usize,
    /// Samples in optimiser updates (current-stage and replayed).
    pub samples: u64,
    /// Sample forward+backward passes, extra ones (A-GEM references, meta inner
    /// steps, Fisher estimates) included: the learner's compute.
    pub passes: u64,
    /// Optimiser steps.
    pub steps: u64,
    /// In-stage checkpoints (none: only the runner's after-stage ones).
    pub checkpoints: Option<StageCheckpoints<'a>>,
    /// Model loss terms summed over the current epoch's forward passes (the training log's).
    pub epoch_terms: EpochTerms,
}

/// Sums of the model's three loss terms over forward passes, kept as one detached tensor so
/// a step costs no device sync; read once per epoch.
#[derive(Default)]
pub struct EpochTerms {
    sum: Option<Tensor>,
    passes: usize,
}

impl EpochTerms {
    /// Adds one forward pass's terms.
    fn add(&mut self, loss: &LossParts) -> Result<()> {
        let parts = [&loss.classification, &loss.pairwise, &loss.quantization].map(|t| t.detach());
        let v = Tensor::stack(&parts, 0)?;
        self.sum = Some(match self.sum.take() {
            Some(s) => (s + v)?,
            None => v,
        });
        self.passes += 1;
        Ok(())
    }

    /// The mean of each term since the last call (NaN when no pass ran), and a reset.
    fn take_mean(&mut self) -> Result<[f64; 3]> {
        let n = std::mem::take(&mut self.passes).max(1) as f64;
        Ok(match self.sum.take() {
            Some(s) => {
                let v = s.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
                [v[0] / n, v[1] / n, v[2] / n]
            }
            None => [f64::NAN; 3],
        })
    }
}

impl Trainer<'_> {
    /// Adam over the shared parameters and the adapters of `modalities` only, so other
    /// modalities' adapters stay frozen.
    pub fn optimizer(&self, modalities: &[&str]) -> Result<FusedAdamW> {
        let params = ParamsAdamW { lr: self.train.lr, weight_decay: 0.0, ..Default::default() };
        Ok(FusedAdamW::new(self.model.vars_for(modalities), params)?)
    }

    /// Err(Interrupted) once a stop was requested.
    pub fn check_interrupt(&self) -> Result<()> {
        match self.interrupt {
            Some(flag) if flag.load(Ordering::Relaxed) => {
                Err(LearnerError::Interrupted { stage: self.stage })
            }
            _ => Ok(()),
        }
    }

    /// Shuffles `pool` and cuts it into batches of `[train] batch` (last one smaller).
    pub fn shuffled_batches(&mut self, pool: &[Item]) -> Vec<Vec<Item>> {
        self.shuffled(pool).chunks(self.train.batch).map(<[Item]>::to_vec).collect()
    }

    /// `pool` in a random order drawn from the run's generator.
    pub fn shuffled(&mut self, pool: &[Item]) -> Vec<Item> {
        let mut items = pool.to_vec();
        items.shuffle(self.rng);
        items
    }

    /// Gathers items into per-modality batch parts (modalities in first-appearance order).
    pub fn batch_parts(&self, items: &[Item]) -> Result<Vec<BatchPart>> {
        let dev = self.model.device().clone();
        let mut parts = Vec::new();
        for (m, rows) in group_by_modality(items) {
            let md = &self.data[m as usize];
            let mut x = Vec::with_capacity(rows.len() * md.dim);
            let mut y = Vec::with_capacity(rows.len() * md.classes);
            for &r in &rows {
                let r = r as usize;
                x.extend_from_slice(&md.x[r * md.dim..(r + 1) * md.dim]);
                y.extend_from_slice(&md.y[r * md.classes..(r + 1) * md.classes]);
            }
            parts.push(BatchPart {
                modality: md.name.clone(),
                x: Tensor::from_vec(x, (rows.len(), md.dim), &dev)?,
                labels: Tensor::from_vec(y, (rows.len(), md.classes), &dev)?,
            });
        }
        Ok(parts)
    }

    /// Items reordered the way [`Trainer::batch_parts`] lays out rows (grouped by
    /// modality in first-appearance order): row i of a forward output is item i here.
    pub fn output_order(items: &[Item]) -> Vec<Item> {
        group_by_modality(items)
            .into_iter()
            .flat_map(|(m, rows)| rows.into_iter().map(move |r| (m, r)))
            .collect()
    }

    /// Forward pass and model loss of `items` (counted as passes).
    pub fn forward(&mut self, items: &[Item]) -> Result<(Output, LossParts)> {
        let parts = self.batch_parts(items)?;
        self.forward_parts(&parts)
    }

    /// Batch parts of `items` where rows of modalities other than `current` (replayed
    /// memory) get Gaussian feature noise of standard deviation `sigma`: the few stored
    /// samples then stand for a neighbourhood instead of being memorised point by point.
    pub fn replay_parts(&mut self, items: &[Item], current: &str, sigma: f64) -> Result<Vec<BatchPart>> {
        let mut parts = self.batch_parts(items)?;
        if sigma > 0.0 {
            for p in parts.iter_mut().filter(|p| p.modality != current) {
                let n = p.x.elem_count();
                let noise: Vec<f32> = (0..n)
                    .map(|_| {
                        // Box–Muller from the run's seeded generator (deterministic per seed).
                        let u1: f64 = self.rng.random::<f64>().max(1e-12);
                        let u2: f64 = self.rng.random::<f64>();
                        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * sigma) as f32
                    })
                    .collect();
                let noise = Tensor::from_vec(noise, p.x.shape(), p.x.device())?;
                p.x = (&p.x + noise)?;
            }
        }
        Ok(parts)
    }

    /// Forward pass and model loss of prepared batch parts (counted as passes).
    pub fn forward_parts(&mut self, parts: &[BatchPart]) -> Result<(Output, LossParts)> {
        let out = self.model.forward(parts)?;
        let loss = self.model.loss(&out)?;
        self.passes += out.h.dim(0)? as u64;
        self.epoch_terms.add(&loss)?;
        Ok((out, loss))
    }

    /// Gradients of `loss` with respect to every parameter.
    pub fn backward(&self, loss: &Tensor) -> Result<GradStore> {
        Ok(loss.backward()?)
    }

    /// Applies an optimiser step with `grads`, counting `samples` as trained.
    pub fn apply(&mut self, opt: &mut FusedAdamW, grads: &GradStore, samples: usize) -> Result<()> {
        self.check_interrupt()?;
        opt.step(grads)?;
        self.samples += samples as u64;
        self.steps += 1;
        Ok(())
    }

    /// One plain step: forward, model loss, backward, optimiser. Returns the loss.
    pub fn step(&mut self, opt: &mut FusedAdamW, items: &[Item]) -> Result<f64> {
        let (_, loss) = self.forward(items)?;
        let grads = self.backward(&loss.total)?;
        self.apply(opt, &grads, items.len())?;
        Ok(loss.total.to_scalar::<f32>()? as f64)
    }

    /// Runs `epochs` passes over `pool` in shuffled batches, calling `f` per batch
    /// (it returns the batch loss) and reporting each epoch's mean loss; see
    /// [`Trainer::epoch_loop`] for checkpoints and resuming.
    pub fn epochs<F>(&mut self, epochs: usize, pool: &[Item], st: &mut StageState, mut f: F) -> Result<()>
    where
        F: FnMut(&mut Self, &mut StageState, &[Item]) -> Result<f64>,
    {
        self.epoch_loop(epochs, st, |t, st, epoch| {
            let batches = t.shuffled_batches(pool);
            let mut sum = 0.0;
            for b in &batches {
                t.check_interrupt()?;
                sum += f(t, st, b)?;
            }
            t.observer.on_epoch(t.stage, epoch + 1, sum / batches.len().max(1) as f64);
            Ok(())
        })
    }

    /// Runs epochs `0..epochs` of the stage, `f(trainer, state, epoch)` doing one. When
    /// resuming inside this stage, first restores `st`, the stage's counters and skips the
    /// finished epochs (the runner restored the model and RNG). With in-stage checkpoints
    /// on, writes one after every `checkpoint_every`-th epoch except the last (the stage's
    /// own checkpoint follows it). Learners set up `st` before calling this: whatever it
    /// holds is what a checkpoint saves.
    pub fn epoch_loop<F>(&mut self, epochs: usize, st: &mut StageState, mut f: F) -> Result<()>
    where
        F: FnMut(&mut Self, &mut StageState, usize) -> Result<()>,
    {
        let first = match self.checkpoints.as_mut().and_then(|c| c.resume.take()) {
            Some(saved) => self.restore_stage(st, saved)?,
            None => 0,
        };
        for epoch in first..epochs {
            let (t0, samples) = (Instant::now(), self.samples);
            // Passes outside epochs (e.g. EWC's Fisher estimate) are not an epoch's loss.
            self.epoch_terms.take_mean()?;
            f(self, st, epoch)?;
            let end = EpochEnd {
                stage: self.stage,
                epoch: epoch + 1,
                stage_steps: self.steps,
                samples: self.samples - samples,
                terms: self.epoch_terms.take_mean()?,
                seconds: t0.elapsed().as_secs_f64(),
            };
            self.observer.on_epoch_end(&end);
            let done = epoch + 1;
            let due = self.checkpoints.as_ref().is_some_and(|c| c.every > 0 && done % c.every == 0);
            if due && done < epochs {
                self.write_in_stage(done, st)?;
            }
        }
        Ok(())
    }

    /// Puts a saved stage state into `st` and the counters; returns the epochs done.
    fn restore_stage(&mut self, st: &mut StageState, saved: InStage) -> Result<usize> {
        let mismatch = |what: &str| LearnerError::Learner {
            learner: "resume".into(),
            message: format!("the in-stage checkpoint's {what} does not match this learner's stage state"),
        };
        if saved.tensors.keys().ne(st.tensors.keys()) {
            return Err(mismatch("tensor lists"));
        }
        st.tensors = saved.tensors;
        match (&mut st.opt, saved.optimizer) {
            (Some(opt), Some(state)) => opt.set_state(state)?,
            (None, None) => {}
            _ => return Err(mismatch("optimiser")),
        }
        let p = saved.progress;
        (self.samples, self.passes, self.steps) = (p.samples, p.passes, p.steps);
        Ok(p.epoch)
    }

    /// Writes the in-stage checkpoint after `epoch` epochs and drops the stage's older one.
    fn write_in_stage(&mut self, epoch: usize, st: &StageState) -> Result<()> {
        let Some(c) = &self.checkpoints else { return Ok(()) };
        let pos = Position::InStage { stage: self.stage, epoch };
        let part = InStage {
            progress: StageProgress {
                epoch,
                samples: self.samples,
                passes: self.passes,
                steps: self.steps,
                seconds: c.earlier_seconds + c.started.elapsed().as_secs_f64(),
            },
            tensors: st.tensors.clone(),
            optimizer: st.opt.as_ref().map(FusedAdamW::state).transpose()?,
        };
        let snap = Snapshot {
            config: c.config,
            rng: self.rng,
            counters: c.counters,
            rows: c.rows,
            learner: c.learner,
            frozen: c.frozen,
            in_stage: Some(&part),
        };
        checkpoint::save(c.dir, pos, self.model, &snap)
    }
}

/// Rows of each modality, modalities in order of first appearance, rows in item order.
fn group_by_modality(items: &[Item]) -> Vec<(u32, Vec<u32>)> {
    let mut groups: Vec<(u32, Vec<u32>)> = Vec::new();
    for &(m, r) in items {
        match groups.iter_mut().find(|(g, _)| *g == m) {
            Some((_, rows)) => rows.push(r),
            None => groups.push((m, vec![r])),
        }
    }
    groups
}
