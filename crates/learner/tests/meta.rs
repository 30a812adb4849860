//! `meta`'s meta step: the finite-difference Hessian-vector product and the second-order
//! MAML meta-gradient against analytic / independently computed references, and the
//! `meta_step = false` ablation against the learners it must reduce to.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use seqmodal_learner::learners::params::{hvp, maml_meta_gradient};
use seqmodal_learner::{run, EvalRow, Experiment, RunOptions, RunResult, Silent};

/// `L(θ) = Σ θ_i⁴/4 + θ_0 θ_1` on a 3-vector: not quadratic, so the Hessian moves with θ.
fn quartic(v: &Var) -> Tensor {
    let t = v.as_tensor();
    let cross = (t.narrow(0, 0, 1).unwrap() * t.narrow(0, 1, 1).unwrap()).unwrap().sum_all().unwrap();
    (t.powf(4.0).unwrap().sum_all().unwrap().affine(0.25, 0.0).unwrap() + cross).unwrap()
}

/// Its gradient and Hessian, by hand, in f64.
fn quartic_grad(t: [f64; 3]) -> [f64; 3] {
    [t[0].powi(3) + t[1], t[1].powi(3) + t[0], t[2].powi(3)]
}
fn quartic_hessian(t: [f64; 3]) -> [[f64; 3]; 3] {
    [[3.0 * t[0] * t[0], 1.0, 0.0], [1.0, 3.0 * t[1] * t[1], 0.0], [0.0, 0.0, 3.0 * t[2] * t[2]]]
}

fn vec3(t: &Tensor) -> [f64; 3] {
    let v = t.to_vec1::<f32>().unwrap();
    [v[0] as f64, v[1] as f64, v[2] as f64]
}

#[test]
fn hvp_matches_the_analytic_hessian_and_leaves_theta_in_place() {
    let theta = [0.7f32, -1.2, 0.4];
    let var = Var::from_tensor(&Tensor::new(&theta, &Device::Cpu).unwrap()).unwrap();
    let vars = std::slice::from_ref(&var);
    for dir in [[1.0f32, 0.0, 0.0], [0.3, -2.0, 5.0], [-40.0, 10.0, 3.0]] {
        let v = vec![Tensor::new(&dir, &Device::Cpu).unwrap()];
        let hv = hvp(vars, &v, 1e-2, || Ok(quartic(&var).backward()?)).unwrap();
        let h = quartic_hessian(theta.map(f64::from));
        let got = vec3(&hv[0]);
        let norm = dir.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        for i in 0..3 {
            let want: f64 = (0..3).map(|j| h[i][j] * dir[j] as f64).sum();
            // Central differences: O(step²) truncation plus f32 rounding of the gradients.
            assert!((got[i] - want).abs() < 2e-3 * norm, "component {i}: {} vs {want} (v = {dir:?})", got[i]);
        }
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap(), theta.to_vec(), "θ restored");
    }
    // The zero vector has a zero product (and no division by its norm).
    let zero = vec![Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap()];
    let hv = hvp(vars, &zero, 1e-2, || Ok(quartic(&var).backward()?)).unwrap();
    assert_eq!(hv[0].to_vec1::<f32>().unwrap(), vec![0.0; 3]);
}

#[test]
fn maml_meta_gradient_matches_differentiating_through_the_inner_steps() {
    // Inner loss: the quartic; outer loss: ½‖θ − c‖². Two SGD inner steps at α.
    let (alpha, c) = (0.15f64, [0.5f64, 0.2, -0.3]);
    let theta0 = [0.9f64, -0.6, 0.8];
    let inner = |mut t: [f64; 3]| {
        let mut points = vec![t];
        for _ in 0..2 {
            let g = quartic_grad(t);
            t = [t[0] - alpha * g[0], t[1] - alpha * g[1], t[2] - alpha * g[2]];
            points.push(t);
        }
        points
    };
    let meta_loss = |t: [f64; 3]| {
        let end = inner(t)[2];
        (0..3).map(|i| 0.5 * (end[i] - c[i]).powi(2)).sum::<f64>()
    };
    // Reference: central differences of the whole meta-loss in f64.
    let h = 1e-6;
    let reference: Vec<f64> = (0..3)
        .map(|i| {
            let (mut p, mut m) = (theta0, theta0);
            p[i] += h;
            m[i] -= h;
            (meta_loss(p) - meta_loss(m)) / (2.0 * h)
        })
        .collect();
    let points = inner(theta0);
    let end = points[2];
    let outer: Vec<f32> = (0..3).map(|i| (end[i] - c[i]) as f32).collect();
    let var = Var::from_tensor(&Tensor::new(&theta0.map(|x| x as f32), &Device::Cpu).unwrap()).unwrap();
    let thetas: Vec<Vec<Tensor>> =
        points[..2].iter().map(|p| vec![Tensor::new(&p.map(|x| x as f32), &Device::Cpu).unwrap()]).collect();
    let outer_t = vec![Tensor::new(outer.as_slice(), &Device::Cpu).unwrap()];
    let g = maml_meta_gradient(std::slice::from_ref(&var), &thetas, outer_t, alpha, 1e-2, || {
        Ok(quartic(&var).backward()?)
    })
    .unwrap();
    let got = vec3(&g[0]);
    for i in 0..3 {
        assert!((got[i] - reference[i]).abs() < 1e-3, "component {i}: {} vs {}", got[i], reference[i]);
    }
    // The first-order approximation (the outer gradient alone) is far off here: the
    // Hessian term is what the test measures.
    let fo_err: f64 = (0..3).map(|i| (outer[i] as f64 - reference[i]).abs()).fold(0.0, f64::max);
    assert!(fo_err > 0.05, "first-order error {fo_err}");
    assert_eq!(vec3(var.as_tensor()), points[0].map(|x| x as f32 as f64), "vars end at θ_0");
}

fn mfeat() -> seqmodal_data::Dataset {
    let mut ds =
        seqmodal_data::load_mfeat(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mfeat"))
            .unwrap();
    ds.standardize();
    ds
}

/// Three small stages on mfeat, shared input layer.
fn experiment(overrides: &[&str]) -> Experiment {
    let text = "name = \"t\"\nseed = 5\n[dataset]\nkind = \"mfeat\"\npath = \"datasets/mfeat\"\n[model]\nbits = 16\n\
                hidden = 64\nadapter = \"shared-pad\"\n[learner]\nkind = \"meta\"\n[train]\nepochs = 2\nbatch = 64\n\
                lr = 3e-3\n[[stages]]\nmodality = \"kar\"\n[[stages]]\nmodality = \"pix\"\n[[stages]]\n\
                modality = \"zer\"\n";
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("t.toml");
    std::fs::write(&p, text).unwrap();
    let mut o: Vec<String> = vec!["learner.memory=60".into(), "learner.replay_batch=32".into()];
    o.extend(overrides.iter().map(|s| s.to_string()));
    Experiment::load(&p, &o).unwrap()
}

fn go(ds: &seqmodal_data::Dataset, overrides: &[&str]) -> RunResult {
    run(&experiment(overrides), ds, &RunOptions::default(), &mut Silent).unwrap()
}

fn values(rows: &[EvalRow]) -> Vec<f64> {
    rows.iter().map(|r| r.value).collect()
}

#[test]
fn without_meta_step_noise_and_distillation_meta_is_exactly_er() {
    // θ' = θ, no replay noise, no distillation, meta_lr = lr: the meta update is the
    // plain replay step, so every evaluation equals er's (same seed, same draws).
    let ds = mfeat();
    let meta = go(&ds, &["learner.meta_step=false", "learner.replay_distill=0", "learner.replay_noise=0"]);
    // er with the same memory and replay batch; its replay options are off by default.
    let er = go(&ds, &["learner.kind=er"]);
    assert_eq!(values(&meta.rows), values(&er.rows));
    assert_eq!((meta.passes, meta.steps), (er.passes, er.steps));
    // The meta step changes the outcome.
    let stepped = go(&ds, &["learner.replay_distill=0", "learner.replay_noise=0", "learner.inner_lr=0.1"]);
    assert_ne!(values(&stepped.rows), values(&er.rows));
}

#[test]
fn the_ablation_ignores_every_meta_step_key_and_each_variant_is_deterministic() {
    let ds = mfeat();
    for objective in ["maml", "alternating"] {
        let obj = format!("learner.meta_objective={objective}");
        let a = go(&ds, &[&obj, "learner.meta_step=false"]);
        let b = go(&ds, &[&obj, "learner.meta_step=false", "learner.inner_lr=0.3"]);
        assert_eq!(
            values(&a.rows),
            values(&b.rows),
            "{objective}: inner_lr must not matter without a meta step"
        );
        let on = go(&ds, &[&obj, "learner.inner_lr=0.1"]);
        let again = go(&ds, &[&obj, "learner.inner_lr=0.1"]);
        assert_eq!(values(&on.rows), values(&again.rows), "{objective}: same seed, same run");
        assert_ne!(values(&on.rows), values(&a.rows), "{objective}: the meta step does something");
        // Same batches and samples either way; the ablation skips the extra passes.
        assert_eq!((on.steps, on.train_samples), (a.steps, a.train_samples), "{objective}");
        assert!(on.passes >= a.passes, "{objective}");
    }
    let a = go(&ds, &["learner.meta_step=false", "learner.first_order=false"]);
    let b = go(&ds, &["learner.meta_step=false"]);
    assert_eq!(values(&a.rows), values(&b.rows), "no Hessian term without a meta step");
}

#[test]
fn second_order_maml_differs_from_first_order_and_pays_two_passes_per_inner_step() {
    let ds = mfeat();
    let fo = go(&ds, &["learner.inner_lr=0.1", "learner.inner_steps=2"]);
    let so = go(&ds, &["learner.inner_lr=0.1", "learner.inner_steps=2", "learner.first_order=false"]);
    let again = go(&ds, &["learner.inner_lr=0.1", "learner.inner_steps=2", "learner.first_order=false"]);
    assert_ne!(values(&fo.rows), values(&so.rows));
    assert_eq!(values(&so.rows), values(&again.rows));
    // Every meta step after stage 1 adds two gradients of the new batch per inner step
    // (the HVP's probe points): 2 × 2 × the rows of stages 2 and 3 (three equal stages).
    assert_eq!(so.passes - fo.passes, 4 * fo.stage_samples * 2 / 3);
    assert_eq!((so.steps, so.train_samples), (fo.steps, fo.train_samples));
}
