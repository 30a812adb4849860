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

/// The gradient of every var in `vars` (same order) from `grads`, zeros where a var has
/// none, as plain tensors that vector arithmetic over parameters can use.
pub fn grad_vectors(vars: &[Var], grads: &GradStore) -> Result<Vec<Tensor>> {
    Ok(vars
        .iter()
        .map(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => v.as_tensor().zeros_like(),
        })
        .collect::<candle_core::Result<_>>()?)
}

/// Euclidean norm of a parameter-shaped vector (a list of tensors).
pub fn vector_norm(v: &[Tensor]) -> Result<f64> {
    let mut s = 0f64;
    for t in v {
        s += t.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    Ok(s.sqrt())
}

/// Hessian-vector product `H v` of the loss whose gradient `grad` computes at the current
/// values of `vars`, by central differences of gradients:
/// `Hv ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε` with `ε = step / ‖v‖`, so the probe points lie
/// `step` away from θ whatever the scale of `v` (exact for a quadratic loss up to
/// rounding; two gradient evaluations). `vars` hold θ again on return.
pub fn hvp<F>(vars: &[Var], v: &[Tensor], step: f64, mut grad: F) -> Result<Vec<Tensor>>
where
    F: FnMut() -> Result<GradStore>,
{
    let norm = vector_norm(v)?;
    if norm == 0.0 || !norm.is_finite() {
        return Ok(vars.iter().map(|x| x.as_tensor().zeros_like()).collect::<candle_core::Result<_>>()?);
    }
    let eps = step / norm;
    let theta = snapshot(vars)?;
    let shifted = |sign: f64| -> Result<Vec<Tensor>> {
        Ok(theta
            .iter()
            .zip(v)
            .map(|(t, d)| t + d.affine(sign * eps, 0.0)?)
            .collect::<candle_core::Result<_>>()?)
    };
    restore(vars, &shifted(1.0)?)?;
    let plus = grad().and_then(|g| grad_vectors(vars, &g));
    restore(vars, &shifted(-1.0)?)?;
    let minus = grad().and_then(|g| grad_vectors(vars, &g));
    restore(vars, &theta)?;
    let (plus, minus) = (plus?, minus?);
    Ok(plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| (p - m)?.affine(0.5 / eps, 0.0))
        .collect::<candle_core::Result<_>>()?)
}

/// The second-order MAML meta-gradient: with inner SGD steps `θ_{i+1} = θ_i − α ∇L_in(θ_i)`
/// taken from the points `thetas = [θ_0, …, θ_{k−1}]` and `outer` = `∇L_out(θ_k)`, returns
/// `d L_out(θ_k) / d θ_0 = (I − α H_0) ⋯ (I − α H_{k−1}) ∇L_out(θ_k)`, each Hessian of
/// `L_in` at its own point applied to the running vector by [`hvp`] (`grad` computes
/// `∇L_in` at the current values of `vars`). `vars` end at `θ_0`.
pub fn maml_meta_gradient<F>(
    vars: &[Var],
    thetas: &[Vec<Tensor>],
    outer: Vec<Tensor>,
    inner_lr: f64,
    step: f64,
    mut grad: F,
) -> Result<Vec<Tensor>>
where
    F: FnMut() -> Result<GradStore>,
{
    let mut v = outer;
    for theta in thetas.iter().rev() {
        restore(vars, theta)?;
        let hv = hvp(vars, &v, step, &mut grad)?;
        v = v
            .iter()
            .zip(&hv)
            .map(|(a, h)| a - h.affine(inner_lr, 0.0)?)
            .collect::<candle_core::Result<_>>()?;
    }
    Ok(v)
}
