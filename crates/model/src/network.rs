//! The unified hashing network: input adapter(s) -> shared trunk -> hash layer (tanh)
//! -> classifier on the code.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{AdapterKind, ModelConfig};
use crate::error::{ModelError, Result};
use crate::fused::{self, Act};

/// Rows of one modality inside a training batch.
#[derive(Clone, Debug)]
pub struct BatchPart {
    /// Modality name.
    pub modality: String,
    /// Features, shape (rows, d_m), unpadded.
    pub x: Tensor,
    /// Multi-hot labels as f32, shape (rows, classes).
    pub labels: Tensor,
}

/// Forward outputs for a batch (rows in the order of the batch parts).
#[derive(Clone, Debug)]
pub struct Output {
    /// tanh codes, (n, bits).
    pub h: Tensor,
    /// Classifier logits, (n, classes).
    pub logits: Tensor,
    /// Labels, (n, classes), same row order.
    pub labels: Tensor,
}

/// The loss and its three terms for one batch.
#[derive(Clone, Debug)]
pub struct LossParts {
    /// Weighted sum: the tensor to differentiate.
    pub total: Tensor,
    /// Classification term (unweighted, scalar tensor).
    pub classification: Tensor,
    /// Pairwise term (unweighted, scalar tensor).
    pub pairwise: Tensor,
    /// Quantisation term (unweighted, scalar tensor).
    pub quantization: Tensor,
}

/// The unified model: every modality shares the trunk, hash layer and classifier.
pub struct UnifiedModel {
    cfg: ModelConfig,
    device: Device,
    /// Parameters by name; a BTreeMap so every walk over them is in one fixed order.
    vars: BTreeMap<String, Var>,
    /// Feature width of each modality seen so far.
    dims: BTreeMap<String, usize>,
}

const SHARED_IN: &str = "input.shared";

impl UnifiedModel {
    /// Builds the shared layers (and the shared input layer for `shared-pad`) on CPU.
    pub fn new(cfg: ModelConfig) -> Result<Self> {
        cfg.check()?;
        let mut m = Self { cfg, device: Device::Cpu, vars: BTreeMap::new(), dims: BTreeMap::new() };
        let (h, b, c) = (m.cfg.hidden, m.cfg.bits, m.cfg.classes);
        if m.cfg.adapter == AdapterKind::SharedPad {
            m.add_linear(SHARED_IN, m.cfg.pad_dim, h)?;
        }
        m.add_linear("trunk", h, h)?;
        m.add_linear("hash", h, b)?;
        m.add_linear("classifier", b, c)?;
        Ok(m)
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Makes sure `modality` can be encoded: creates its adapter on first sight
    /// (per-modality) or checks it fits the padded width (shared-pad). Returns true
    /// when a new adapter was created.
    pub fn ensure_modality(&mut self, modality: &str, dim: usize) -> Result<bool> {
        if let Some(&d) = self.dims.get(modality) {
            if d != dim {
                return Err(ModelError::Dim {
                    modality: modality.into(),
                    message: format!("features are {dim}-d but the adapter was built for {d}-d"),
                });
            }
            return Ok(false);
        }
        match self.cfg.adapter {
            AdapterKind::PerModality => {
                self.add_linear(&adapter_name(modality), dim, self.cfg.hidden)?;
            }
            AdapterKind::SharedPad => {
                if dim > self.cfg.pad_dim {
                    return Err(ModelError::Dim {
                        modality: modality.into(),
                        message: format!("{dim}-d features exceed the padded width {}", self.cfg.pad_dim),
                    });
                }
            }
        }
        self.dims.insert(modality.into(), dim);
        Ok(self.cfg.adapter == AdapterKind::PerModality)
    }

    /// Modalities known to the model, with their feature widths.
    pub fn modalities(&self) -> &BTreeMap<String, usize> {
        &self.dims
    }

    /// All parameters in name order.
    pub fn vars(&self) -> Vec<Var> {
        self.vars.values().cloned().collect()
    }

    /// The shared parameters plus the adapters of `modalities` only: training with
    /// these leaves other modalities' adapters untouched.
    pub fn vars_for(&self, modalities: &[&str]) -> Vec<Var> {
        self.vars
            .iter()
            .filter(|(name, _)| match name.strip_prefix("adapter.") {
                // `adapter.<modality>.<param>`; modality names may hold dots, so compare the
                // whole name before the last one (a prefix test would take `a.b`'s for `a`).
                Some(rest) => rest.rsplit_once('.').is_some_and(|(m, _)| modalities.contains(&m)),
                None => true,
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The device tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Hidden features (after the ReLU) of the input layer for one modality's rows.
    fn input(&self, modality: &str, x: &Tensor) -> Result<Tensor> {
        let dim = *self.dims.get(modality).ok_or_else(|| ModelError::UnknownModality(modality.into()))?;
        let cols = x.dim(1)?;
        if cols != dim {
            return Err(ModelError::Dim {
                modality: modality.into(),
                message: format!("batch has {cols} columns, adapter expects {dim}"),
            });
        }
        match self.cfg.adapter {
            AdapterKind::PerModality => self.linear(&adapter_name(modality), x, Act::Relu),
            AdapterKind::SharedPad => {
                let padded = x.pad_with_zeros(1, 0, self.cfg.pad_dim - dim)?;
                self.linear(SHARED_IN, &padded, Act::Relu)
            }
        }
    }

    /// Forward pass over a batch made of parts from one or more modalities.
    pub fn forward(&self, parts: &[BatchPart]) -> Result<Output> {
        let mut hidden = Vec::with_capacity(parts.len());
        let mut labels = Vec::with_capacity(parts.len());
        for p in parts {
            hidden.push(self.input(&p.modality, &p.x)?);
            labels.push(p.labels.clone());
        }
        let z = Tensor::cat(&hidden, 0)?;
        let labels = Tensor::cat(&labels, 0)?;
        let z = self.linear("trunk", &z, Act::Relu)?;
        let h = self.linear("hash", &z, Act::Tanh)?;
        let logits = self.linear("classifier", &h, Act::Identity)?;
        Ok(Output { h, logits, labels })
    }

    /// The weighted loss of a forward output (pairs taken within the batch): the terms of
    /// [`crate::loss`], computed by one fused op.
    pub fn loss(&self, out: &Output) -> Result<LossParts> {
        let w = self.cfg.loss;
        let op = fused::Loss::new(&out.labels, [w.classification, w.pairwise, w.quantization])?;
        let all = out.h.apply_op2(&out.logits, op)?;
        // Terms stay tensors: reading them out would cost three syncs on every step.
        Ok(LossParts {
            total: all.get(0)?,
            classification: all.get(1)?,
            pairwise: all.get(2)?,
            quantization: all.get(3)?,
        })
    }

    /// tanh codes (row-major, rows x bits) of `rows` samples of `modality`, in chunks.
    pub fn encode(&self, modality: &str, data: &[f32], rows: usize) -> Result<Vec<f32>> {
        let dim = *self.dims.get(modality).ok_or_else(|| ModelError::UnknownModality(modality.into()))?;
        if data.len() != rows * dim {
            return Err(ModelError::Dim {
                modality: modality.into(),
                message: format!("{} values for {rows} rows of {dim} features", data.len()),
            });
        }
        let mut out = Vec::with_capacity(rows * self.cfg.bits);
        const CHUNK: usize = 1024;
        let mut start = 0;
        while start < rows {
            let n = CHUNK.min(rows - start);
            let x = Tensor::from_slice(&data[start * dim..(start + n) * dim], (n, dim), &self.device)?;
            let z = self.input(modality, &x)?;
            let z = self.linear("trunk", &z, Act::Relu)?;
            let h = self.linear("hash", &z, Act::Tanh)?;
            out.extend(h.flatten_all()?.to_vec1::<f32>()?);
            start += n;
        }
        Ok(out)
    }

    /// Every parameter by name (shared tensors, not copies).
    pub fn named_tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
    }

    /// Sets parameters from named tensors (as [`UnifiedModel::named_tensors`] gives them);
    /// adapters not in the model yet are created. `context` names the source in errors.
    pub fn set_tensors(&mut self, tensors: BTreeMap<String, Tensor>, context: &Path) -> Result<()> {
        let err = |m: String| ModelError::Checkpoint { path: context.into(), message: m };
        for (name, t) in tensors {
            if let Some(rest) = name.strip_prefix("adapter.") {
                if let Some(m) = rest.strip_suffix(".weight") {
                    self.dims.insert(m.to_string(), t.dim(1)?);
                }
            }
            match self.vars.get(&name) {
                Some(v) => {
                    if v.shape() != t.shape() {
                        return Err(err(format!(
                            "{name}: shape {:?} but model has {:?}",
                            t.shape(),
                            v.shape()
                        )));
                    }
                    v.set(&t)?;
                }
                None => {
                    self.vars.insert(name, Var::from_tensor(&t)?);
                }
            }
        }
        Ok(())
    }

    /// Saves every parameter to a safetensors file, atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: std::collections::HashMap<String, Tensor> = self.named_tensors().into_iter().collect();
        seqmodal_atomic::write_with(path, |tmp| {
            candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
        })
        .map_err(|e| ModelError::Checkpoint { path: path.into(), message: format!("{e}: {}", e.source) })
    }

    /// Loads parameters saved by [`UnifiedModel::save`]; adapters in the file are created.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &self.device)
            .map_err(|e| ModelError::Checkpoint { path: path.into(), message: e.to_string() })?;
        self.set_tensors(tensors.into_iter().collect(), path)
    }

    /// An independent copy with the same weights (the frozen "previous model" of
    /// distillation learners); training one never changes the other.
    pub fn frozen_copy(&self) -> Result<UnifiedModel> {
        let mut vars = BTreeMap::new();
        for (k, v) in &self.vars {
            vars.insert(k.clone(), Var::from_tensor(&v.as_tensor().detach().copy()?)?);
        }
        Ok(UnifiedModel { cfg: self.cfg.clone(), device: self.device.clone(), vars, dims: self.dims.clone() })
    }

    /// `act(x W^T + b)` with the named layer (one fused op, forward and backward).
    fn linear(&self, name: &str, x: &Tensor, act: Act) -> Result<Tensor> {
        let w = self.var(&format!("{name}.weight"))?;
        let b = self.var(&format!("{name}.bias"))?;
        Ok(fused::linear(x, w.as_tensor(), b.as_tensor(), act)?)
    }

    fn var(&self, name: &str) -> Result<&Var> {
        self.vars.get(name).ok_or_else(|| ModelError::Config(format!("missing parameter {name}")))
    }

    /// PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from an rng
    /// seeded by (seed, layer name): a layer's initial weights do not depend on the
    /// order in which modalities arrive.
    fn add_linear(&mut self, name: &str, fan_in: usize, fan_out: usize) -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed ^ fnv1a(name));
        let bound = 1.0 / (fan_in as f32).sqrt();
        let w: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.random_range(-bound..bound)).collect();
        let b: Vec<f32> = (0..fan_out).map(|_| rng.random_range(-bound..bound)).collect();
        let w =
            Var::from_tensor(&Tensor::from_vec(w, (fan_out, fan_in), &self.device)?.to_dtype(DType::F32)?)?;
        let b = Var::from_tensor(&Tensor::from_vec(b, fan_out, &self.device)?)?;
        self.vars.insert(format!("{name}.weight"), w);
        self.vars.insert(format!("{name}.bias"), b);
        Ok(())
    }
}

fn adapter_name(modality: &str) -> String {
    format!("adapter.{modality}")
}

/// FNV-1a hash: a stable per-name seed offset (std's hasher is not stable across releases).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LossWeights;

    #[test]
    fn vars_for_takes_exactly_the_named_adapters() {
        let cfg = ModelConfig {
            bits: 8,
            hidden: 4,
            adapter: AdapterKind::PerModality,
            classes: 3,
            pad_dim: 5,
            loss: LossWeights::default(),
            seed: 1,
        };
        let mut m = UnifiedModel::new(cfg).unwrap();
        for (name, dim) in [("a", 2), ("a.b", 3), ("ab", 5)] {
            m.ensure_modality(name, dim).unwrap();
        }
        let shared = m.vars_for(&[]).len();
        // Each adapter is one weight and one bias; `a` must not pull in `a.b` or `ab`.
        for mods in [&["a"][..], &["a.b"], &["ab"]] {
            assert_eq!(m.vars_for(mods).len(), shared + 2, "{mods:?}");
        }
        assert_eq!(m.vars_for(&["a", "a.b"]).len(), shared + 4);
        let dims: Vec<usize> = m.vars_for(&["a"]).iter().map(|v| v.dims().iter().product()).collect();
        assert!(dims.contains(&(2 * 4)) && !dims.contains(&(3 * 4)), "{dims:?}");
    }
}
