//! The three loss terms of the unified hashing model.
//!
//! With `h` the tanh code (n x bits), `y` the multi-hot labels and `S_ij = 1` when
//! items i and j share a label:
//! - classification: `-sum_c q_ic log softmax(W h_i + b)_c`, `q_i = y_i / |y_i|`
//!   (ordinary cross-entropy for single-label data);
//! - pairwise likelihood (DPSH/DCMH): `mean_ij softplus(theta_ij) - S_ij theta_ij`
//!   with `theta_ij = (8 / bits) * h_i . h_j`: scaling by the code length keeps
//!   theta in [-8, 8] for every bit count, so the term does not saturate as bits grow;
//! - quantisation: `mean (h - sign(h))^2`.

use candle_core::{Tensor, D};

use crate::error::Result;

/// Softmax cross-entropy against the normalised multi-hot label distribution.
pub fn classification(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let counts = labels.sum_keepdim(D::Minus1)?.clamp(1.0, f64::INFINITY)?;
    let target = labels.broadcast_div(&counts)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    Ok((target * logp)?.sum(D::Minus1)?.mean_all()?.neg()?)
}

/// Label-similarity matrix `S_ij = 1` when rows i and j share a label.
pub fn similarity(labels_a: &Tensor, labels_b: &Tensor) -> Result<Tensor> {
    Ok(labels_a.matmul(&labels_b.t()?)?.clamp(0.0, 1.0)?)
}

/// Pairwise negative log-likelihood between codes `h_a` and `h_b` with similarity `s`.
pub fn pairwise(h_a: &Tensor, h_b: &Tensor, s: &Tensor, bits: usize) -> Result<Tensor> {
    let theta = h_a.matmul(&h_b.t()?)?.affine(8.0 / bits as f64, 0.0)?;
    Ok((softplus(&theta)? - (s * &theta)?)?.mean_all()?)
}

/// Quantisation penalty pulling the tanh outputs to ±1.
pub fn quantization(h: &Tensor) -> Result<Tensor> {
    let target = h.sign()?.detach();
    Ok((h - target)?.sqr()?.mean_all()?)
}

/// Numerically stable `log(1 + exp(x)) = relu(x) + log(1 + exp(-|x|))`.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((x.relu()? + tail)?)
}
