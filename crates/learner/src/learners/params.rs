//! Parameter-space helpers shared by regularisation and meta-learning strategies.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::error::Result;

/// Copies of the current values of `vars` (same order), detached from autograd: an
/// anchor must be a constant, or the gradient of `(θ − θ*)²` would cancel through it.
pub fn snapshot(vars: &[Var]) -> Result<Vec<Tensor>> {
    Ok(vars.iter().map(|v| v.as_tensor().detach().copy()).collect::<candle_core::Result<_>>()?)
}

/// Writes saved values back into `vars`.
pub fn restore(vars: &[Var], values: &[Tensor]) -> Result<()> {
    for (v, t) in vars.iter().zip(values) {
        v.set(t)?;
    }
    Ok(())
}

/// Plain SGD step `θ ← θ − lr·g` on the vars that have a gradient.
pub fn sgd(vars: &[Var], grads: &GradStore, lr: f64) -> Result<()> {
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            v.set(&(v.as_tensor() - g.affine(lr, 0.0)?)?)?;
        }
    }
    Ok(())
}

/// `Σ_i w_i · (θ_i − θ*_i)²` over all vars: the quadratic anchor of EWC and SI.
pub fn weighted_distance(vars: &[Var], anchor: &[Tensor], weight: &[Tensor]) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for ((v, a), w) in vars.iter().zip(anchor).zip(weight) {
        let term = (w * (v.as_tensor() - a)?.sqr()?)?.sum_all()?;
        total = Some(match total {
            None => term,
            Some(t) => (t + term)?,
        });
    }
    Ok(total)
}

/// The gradient of `scale · Σ w (θ − θ*)²` with respect to one parameter `theta`:
/// `2 · scale · w · (θ − θ*)` (the anchor is a constant), so a learner can take a penalty's
/// share back out of a total gradient without a second backward pass.
pub fn penalty_grad(theta: &Tensor, anchor: &Tensor, weight: &Tensor, scale: f64) -> Result<Tensor> {
    Ok(((theta - anchor)? * weight)?.affine(2.0 * scale, 0.0)?)
}

/// Dot product of two gradient sets over `vars` (missing gradients count as zero).
pub fn grad_dot(vars: &[Var], a: &GradStore, b: &GradStore) -> Result<f64> {
    let mut s = 0f64;
    for v in vars {
        if let (Some(x), Some(y)) = (a.get(v.as_tensor()), b.get(v.as_tensor())) {
            s += (x * y)?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    Ok(s)
}
