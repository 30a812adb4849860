//! The unified cross-modal hashing model of seqmodal (candle).
//!
//! One network maps every modality into one Hamming space: a per-modality input
//! adapter (or one shared zero-padded input layer), a shared trunk, a shared hash
//! layer with tanh, and a shared label classifier on the code. Codes are the signs
//! of the hash layer. Loss terms are documented in [`loss`].

mod config;
mod error;
mod fused;
pub mod loss;
mod network;
mod optim;
mod simd;

pub use candle_core::{Device, Tensor, Var};
pub use config::{AdapterKind, LossWeights, ModelConfig};
pub use error::{ModelError, Result};
pub use network::{BatchPart, LossParts, Output, UnifiedModel};
pub use optim::{AdamState, FusedAdamW};
