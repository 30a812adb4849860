//! Model hyper-parameters.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How features of each modality enter the shared network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdapterKind {
    /// One `Linear(d_m -> hidden)` per modality, created when the modality first appears.
    PerModality,
    /// One shared `Linear(d_max -> hidden)` over features zero-padded to the widest modality.
    SharedPad,
}

impl AdapterKind {
    /// Name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::PerModality => "per-modality",
            AdapterKind::SharedPad => "shared-pad",
        }
    }
}

/// Weights of the three loss terms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    /// Label classification on the code (softmax cross-entropy against the label distribution).
    pub classification: f64,
    /// Pairwise label-similarity likelihood within the batch.
    pub pairwise: f64,
    /// Quantisation penalty `mean((h - sign(h))^2)`.
    pub quantization: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self { classification: 1.0, pairwise: 1.0, quantization: 0.1 }
    }
}

/// Everything needed to build a [`crate::UnifiedModel`].
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// Code length in bits.
    pub bits: usize,
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Input adapter layout.
    pub adapter: AdapterKind,
    /// Number of label classes (classifier width).
    pub classes: usize,
    /// Widest modality's feature dimension (input width of the shared-pad layer).
    pub pad_dim: usize,
    /// Loss term weights.
    pub loss: LossWeights,
    /// Seed of the weight initialisation.
    pub seed: u64,
}

impl ModelConfig {
    /// Rejects zero sizes and negative loss weights.
    pub fn check(&self) -> Result<()> {
        if self.bits == 0 || self.hidden == 0 || self.classes == 0 || self.pad_dim == 0 {
            return Err(ModelError::Config(format!(
                "bits ({}), hidden ({}), classes ({}) and input width ({}) must be positive",
                self.bits, self.hidden, self.classes, self.pad_dim
            )));
        }
        let w = self.loss;
        if [w.classification, w.pairwise, w.quantization].iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(ModelError::Config(format!("loss weights must be finite and >= 0, got {w:?}")));
        }
        Ok(())
    }
}
