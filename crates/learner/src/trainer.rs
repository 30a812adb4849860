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

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{LearnerError, Result};
use crate::experiment::TrainSpec;
use crate::runner::Observer;

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
        let mut items = pool.to_vec();
        items.shuffle(self.rng);
        items.chunks(self.train.batch).map(<[Item]>::to_vec).collect()
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
    /// (it returns the batch loss) and reporting each epoch's mean loss.
    pub fn epochs<F>(&mut self, epochs: usize, pool: &[Item], mut f: F) -> Result<()>
    where
        F: FnMut(&mut Self, &[Item]) -> Result<f64>,
    {
        for epoch in 0..epochs {
            let batches = self.shuffled_batches(pool);
            let mut sum = 0.0;
            for b in &batches {
                self.check_interrupt()?;
                sum += f(self, b)?;
            }
            self.observer.on_epoch(self.stage, epoch + 1, sum / batches.len().max(1) as f64);
        }
        Ok(())
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
