//! CUDA backend: without a GPU it must fail with a typed error (never panic); with one, its
//! results must equal the CPU engine's bit for bit. Built only with `--features cuda`.
#![cfg(feature = "cuda")]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqmodal_hamming::cuda::CudaBackend;
use seqmodal_hamming::{evaluate_with, knn, Codes, Engine, HammingError, LabelSet, Metric};

#[test]
fn cuda_backend_errors_cleanly_or_matches_the_cpu() {
    let gpu = match std::panic::catch_unwind(|| CudaBackend::new(0)).expect("CudaBackend::new panicked") {
        Err(HammingError::Cuda(msg)) => {
            eprintln!("no usable GPU ({msg}): checked that it is a typed error");
            assert!(!msg.is_empty());
            return;
        }
        Err(e) => panic!("unexpected error type: {e:?}"),
        Ok(gpu) => gpu,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for bits in [32usize, 64, 128, 200] {
        let (nq, n, classes) = (70, 3000, 9);
        let qb: Vec<bool> = (0..nq * bits).map(|_| rng.random_bool(0.3)).collect();
        let db: Vec<bool> = (0..n * bits).map(|_| rng.random_bool(0.3)).collect();
        let q = Codes::from_bools(&qb, nq, bits).unwrap();
        let d = Codes::from_bools(&db, n, bits).unwrap();
        for (k, radius) in [(1, None), (100, None), (n, None), (50, Some(bits as u32 / 4))] {
            let cpu = knn(q.view(), d.view(), k, radius, Engine::default()).unwrap();
            assert_eq!(gpu.knn(q.view(), d.view(), k, radius).unwrap(), cpu, "bits {bits} k {k} {radius:?}");
        }
        let qi: Vec<u32> = (0..nq).map(|_| rng.random_range(0..classes as u32)).collect();
        let di: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes as u32)).collect();
        let ql = LabelSet::from_class_ids(&qi, classes).unwrap();
        let dl = LabelSet::from_class_ids(&di, classes).unwrap();
        let m = [Metric::Map, Metric::MapAt(100), Metric::PrecisionAt(100), Metric::PrecisionRadius(2)];
        let cpu = evaluate_with(q.view(), &ql, d.view(), &dl, &m, Engine::default(), true).unwrap();
        assert_eq!(gpu.evaluate(q.view(), &ql, d.view(), &dl, &m, true).unwrap(), cpu, "bits {bits}");
    }
}
