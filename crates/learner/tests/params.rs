//! Parameter-space helpers: anchors are constants, so the quadratic penalty of EWC/SI
//! has the gradient 2·w·(θ − θ*) computed by hand.

use candle_core::{Device, Tensor, Var};
use seqmodal_learner::learners::params::{grad_dot, penalty_grad, restore, sgd, snapshot, weighted_distance};

#[test]
fn anchored_penalty_gradient_is_two_w_times_distance() {
    let v = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap()).unwrap();
    let anchor = snapshot(std::slice::from_ref(&v)).unwrap();
    v.set(&Tensor::new(&[2.0f32, -2.0, -0.5], &Device::Cpu).unwrap()).unwrap();
    let w = vec![Tensor::new(&[3.0f32, 1.0, 0.5], &Device::Cpu).unwrap()];
    let pen = weighted_distance(std::slice::from_ref(&v), &anchor, &w).unwrap().unwrap();
    // 3·1² + 1·0² + 0.5·(−1)² = 3.5
    assert_eq!(pen.to_scalar::<f32>().unwrap(), 3.5);
    let grads = pen.backward().unwrap();
    let g = grads.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    // 2·w·(θ − θ*) = [6, 0, −1]
    assert_eq!(g, vec![6.0, 0.0, -1.0]);
}

#[test]
fn penalty_grad_takes_the_penalty_back_out_of_a_total_gradient() {
    let dev = Device::Cpu;
    let v = Var::from_tensor(&Tensor::new(&[0.5f32, -1.5, 2.0], &dev).unwrap()).unwrap();
    let anchor = vec![Tensor::new(&[1.0f32, -1.0, 0.0], &dev).unwrap()];
    let w = vec![Tensor::new(&[2.0f32, 0.25, 4.0], &dev).unwrap()];
    let task = |v: &Var| v.as_tensor().powf(3.0).unwrap().sum_all().unwrap();
    let pen = weighted_distance(std::slice::from_ref(&v), &anchor, &w).unwrap().unwrap();
    let total = (task(&v) + pen.affine(0.7, 0.0).unwrap()).unwrap();
    let g_total = total.backward().unwrap().get(v.as_tensor()).unwrap().clone();
    let g_task = task(&v).backward().unwrap().get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    let back = (g_total - penalty_grad(v.as_tensor(), &anchor[0], &w[0], 0.7).unwrap()).unwrap();
    for (a, b) in back.to_vec1::<f32>().unwrap().iter().zip(&g_task) {
        assert!((a - b).abs() < 1e-5, "{a} vs task gradient {b}");
    }
}

#[test]
fn sgd_restore_and_dot() {
    let v = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap()).unwrap();
    let saved = snapshot(std::slice::from_ref(&v)).unwrap();
    let loss = (v.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap(); // grad = θ
    let grads = loss.backward().unwrap();
    assert_eq!(grad_dot(std::slice::from_ref(&v), &grads, &grads).unwrap(), 5.0);
    sgd(std::slice::from_ref(&v), &grads, 0.5).unwrap();
    assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), vec![0.5, 1.0]);
    restore(std::slice::from_ref(&v), &saved).unwrap();
    assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
}
