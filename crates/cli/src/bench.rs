//! `seqmodal bench train`: training throughput of the unified model against a plain
//! candle loop of the same size, side by side in one process (machines are noisy:
//! the ratio is the figure to compare, not the absolute rate).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap};
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
    say!("  seqmodal unified model (full loss): {:>9.0} samples/s", rate(ours));
    say!("  plain candle loop (CE only):        {:>9.0} samples/s", rate(plain));
    say!("  ratio seqmodal / plain candle:      {:>9.2}", plain / ours);
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
