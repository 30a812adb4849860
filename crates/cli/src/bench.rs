//! `seqmodal bench train`: training throughput of the unified model in a tight loop
//! (consecutive slices) and in a real run's loop (the learners' [`Trainer`]: a fresh
//! shuffle each epoch, rows gathered per batch, per-step bookkeeping), beside a plain
//! candle loop of the same size, in one process (machines are noisy: ratios measured
//! side by side are the figures to compare, not absolute rates). The last line is JSON,
//! for `bench/train_vs_torch.sh`, which runs the PyTorch peer beside it.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seqmodal_learner::experiment::TrainSpec;
use seqmodal_learner::keys::{LearnerSection, TrainDefaults};
use seqmodal_learner::{Checker, ModalityTrain, Registry, Role, Silent, StageData, Trainer};
use seqmodal_model::{AdapterKind, BatchPart, FusedAdamW, LossWeights, ModelConfig, UnifiedModel};

const HIDDEN: usize = 512;
const BITS: usize = 64;
const BATCH: usize = 128;

/// Runs `steps` optimiser steps of each loop on the Wikipedia image features.
pub fn bench_train(data: &Path, threads: usize, steps: usize) -> Result<()> {
    crate::threads::configure(threads, 0);
    let mut ds = seqmodal_data::load_wiki(data).with_context(|| format!("bench data {}", data.display()))?;
    ds.standardize();
    let m = ds.modality("image").context("wiki has an image modality")?;
    let (n, d, classes) = (m.train.features.rows(), m.dim(), ds.classes());
    let x = Tensor::from_slice(m.train.features.data(), (n, d), &Device::Cpu)?;
    let y: Vec<f32> = m.train.labels.data().iter().map(|&v| v as f32).collect();
    let y = Tensor::from_vec(y, (n, classes), &Device::Cpu)?;
    let ids: Vec<u32> = (0..n).map(|i| m.train.labels.classes_of(i).next().unwrap_or(0) as u32).collect();
    let ids = Tensor::from_vec(ids, n, &Device::Cpu)?;
    let batches: Vec<usize> = (0..steps).map(|s| (s * BATCH) % (n - BATCH)).collect();

    // seqmodal's unified model: adapter, trunk, hash + tanh, classifier; full loss.
    let new_model = || -> Result<UnifiedModel> {
        let mut model = UnifiedModel::new(ModelConfig {
            bits: BITS,
            hidden: HIDDEN,
            adapter: AdapterKind::PerModality,
            classes,
            pad_dim: d,
            loss: LossWeights::default(),
            seed: 1,
        })?;
        model.ensure_modality("image", d)?;
        Ok(model)
    };
    let model = new_model()?;
    let mut opt = FusedAdamW::new(model.vars(), ParamsAdamW { weight_decay: 0.0, ..Default::default() })?;
    let ours = time(&batches, |start| {
        let parts = [BatchPart {
            modality: "image".into(),
            x: x.narrow(0, start, BATCH)?,
            labels: y.narrow(0, start, BATCH)?,
        }];
        let out = model.forward(&parts)?;
        opt.backward_step(&model.loss(&out)?.total)?;
        Ok(())
    })?;

    // A real run's loop: the registry's lower-bound learner (plain sequential training) through
    // the Trainer, over whole epochs of shuffled batches (as many as cover `steps` batches),
    // timed like a run times a stage.
    let entry = Registry::builtin()
        .entries()
        .iter()
        .copied()
        .find(|e| e.role == Role::LowerBound)
        .context("no lower-bound learner is registered")?;
    let section = LearnerSection { kind: toml::Spanned::new(0..0, entry.name.to_string()), keys: Vec::new() };
    let defaults = TrainDefaults { batch: BATCH, lr: 1e-3 };
    let values = seqmodal_learner::keys::check(
        &section,
        &(entry.keys)(),
        &[],
        defaults,
        &Checker::new("", Path::new("bench")),
    )?;
    let mut learner = (entry.build)(&values)?;
    let data: Vec<ModalityTrain> =
        ModalityTrain::from_dataset(&ds).into_iter().filter(|m| m.name == "image").collect();
    let mut run_model = new_model()?;
    let spec = TrainSpec { epochs: 1, batch: BATCH, lr: 1e-3, checkpoint_every: 0 };
    let stage = StageData {
        stage: 1,
        modality: 0,
        rows: (0..n as u32).collect(),
        epochs: (steps * BATCH).div_ceil(n).max(1),
    };
    let (mut rng, mut observer) = (ChaCha8Rng::seed_from_u64(1), Silent);
    let mut trainer = Trainer {
        model: &mut run_model,
        data: &data,
        rng: &mut rng,
        train: &spec,
        observer: &mut observer,
        interrupt: None,
        stage: 1,
        samples: 0,
        passes: 0,
        steps: 0,
        checkpoints: None,
        epoch_terms: Default::default(),
    };
    let t0 = Instant::now();
    learner.train_stage(&mut trainer, &stage)?;
    let epoch = trainer.samples as f64 / t0.elapsed().as_secs_f64();

    // Plain candle loop, same layer sizes, cross-entropy only: the floor candle gives.
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let l1 = candle_nn::linear(d, HIDDEN, vb.pp("l1"))?;
    let l2 = candle_nn::linear(HIDDEN, HIDDEN, vb.pp("l2"))?;
    let l3 = candle_nn::linear(HIDDEN, BITS, vb.pp("l3"))?;
    let l4 = candle_nn::linear(BITS, classes, vb.pp("l4"))?;
    let mut opt = AdamW::new(vm.all_vars(), ParamsAdamW { weight_decay: 0.0, ..Default::default() })?;
    let plain = time(&batches, |start| {
        let h = l1.forward(&x.narrow(0, start, BATCH)?)?.relu()?;
        let h = l3.forward(&l2.forward(&h)?.relu()?)?.tanh()?;
        let loss = candle_nn::loss::cross_entropy(&l4.forward(&h)?, &ids.narrow(0, start, BATCH)?)?;
        opt.backward_step(&loss)?;
        Ok(())
    })?;
    let rate = |s: f64| (steps * BATCH) as f64 / s;
    say!("train throughput, hidden {HIDDEN}, {BITS} bits, batch {BATCH}, {threads} thread(s), {steps} steps");
    say!("  seqmodal unified model (full loss), tight loop: {:>9.0} samples/s", rate(ours));
    say!("  seqmodal real-run loop (Trainer, {:<9}):    {:>9.0} samples/s", entry.name, epoch);
    say!("  plain candle loop (CE only):                    {:>9.0} samples/s", rate(plain));
    say!("  ratio seqmodal tight / plain candle:            {:>9.2}", plain / ours);
    let json = serde_json::json!({
        "framework": "seqmodal",
        "threads": threads,
        "hidden": HIDDEN,
        "bits": BITS,
        "batch": BATCH,
        "tight_samples_per_s": rate(ours).round(),
        "epoch_samples_per_s": epoch.round(),
        "plain_candle_samples_per_s": rate(plain).round(),
    });
    say!("{json}");
    Ok(())
}

/// Seconds for one warm-up step then every step of `batches`.
fn time(batches: &[usize], mut step: impl FnMut(usize) -> Result<()>) -> Result<f64> {
    step(0)?;
    let t0 = Instant::now();
    for &b in batches {
        step(b)?;
    }
    Ok(t0.elapsed().as_secs_f64())
}
