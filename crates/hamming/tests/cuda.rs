//! CUDA backend: one test body, run on every [`Device`] built in. Its results must equal the CPU
//! engine's bit for bit (ids, distances, every metric and the PR curve).
//! - `--features cuda-emulator`: the kernels compiled as C++ and run on CPU threads with CUDA's
//!   execution model; runs anywhere (`.ci/run` does).
//! - `--features cuda`: the real GPU; without one it must fail with a typed error, never panic.
#![cfg(any(feature = "cuda", feature = "cuda-emulator"))]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqmodal_hamming::cuda::{Device, GpuEngine};
use seqmodal_hamming::{evaluate_with, knn, Codes, Engine, LabelSet, Metric};

fn random_codes(rng: &mut ChaCha8Rng, n: usize, bits: usize) -> Codes {
    // Biased bits: distances cluster, so buckets tie often.
    let b: Vec<bool> = (0..n * bits).map(|_| rng.random_bool(0.3)).collect();
    Codes::from_bools(&b, n, bits).unwrap()
}

/// `classes` classes, 1–3 labels per row (multi-word label sets beyond 64 classes).
fn random_labels(rng: &mut ChaCha8Rng, n: usize, classes: usize) -> LabelSet {
    let mut hot = vec![0u8; n * classes];
    for row in hot.chunks_mut(classes) {
        for _ in 0..rng.random_range(1..=3) {
            row[rng.random_range(0..classes)] = 1;
        }
    }
    LabelSet::from_multi_hot(&hot, n, classes).unwrap()
}

/// More metrics than one `ap_kernel` launch keeps (8), so the host groups them.
const METRICS: [Metric; 11] = [
    Metric::Map,
    Metric::MapAt(100),
    Metric::PrecisionAt(100),
    Metric::PrecisionRadius(2),
    Metric::MapAt(7),
    Metric::PrecisionAt(1),
    Metric::MapAt(1),
    Metric::PrecisionRadius(0),
    Metric::MapAt(3),
    Metric::Map,
    Metric::PrecisionAt(5),
];

fn assert_search_matches<D: Device>(gpu: &GpuEngine<D>, q: &Codes, d: &Codes, k: usize, radius: Option<u32>) {
    let cpu = knn(q.view(), d.view(), k, radius, Engine::default()).unwrap();
    let got = gpu.knn(q.view(), d.view(), k, radius).unwrap();
    assert_eq!(got, cpu, "{} bits, n {}, nq {}, k {k}, radius {radius:?}", d.bits(), d.len(), q.len());
}

fn assert_eval_matches<D: Device>(gpu: &GpuEngine<D>, q: &Codes, ql: &LabelSet, d: &Codes, dl: &LabelSet) {
    for metrics in [&METRICS[..], &METRICS[..1], &[]] {
        let cpu = evaluate_with(q.view(), ql, d.view(), dl, metrics, Engine::default(), true).unwrap();
        let got = gpu.evaluate(q.view(), ql, d.view(), dl, metrics, true).unwrap();
        assert_eq!(got, cpu, "{} bits, n {}, nq {}, metrics {metrics:?}", d.bits(), d.len(), q.len());
    }
}

/// The shared body: code widths of 1–4 words (full and partial), databases smaller than a
/// block and not a multiple of one, more queries than a block of queries, k from 1 to N,
/// range search, single- and multi-word label sets, queries with no relevant item.
fn matches_the_cpu<D: Device>(gpu: &GpuEngine<D>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for bits in [8usize, 32, 64, 65, 128, 200, 256] {
        for (nq, n) in [(70, 3001), (3, 5)] {
            let q = random_codes(&mut rng, nq, bits);
            let d = random_codes(&mut rng, n, bits);
            for (k, radius) in [(1, None), (100.min(n), None), (n, None), (n.min(50), Some(bits as u32 / 4))]
            {
                assert_search_matches(gpu, &q, &d, k, radius);
            }
            // Class 9 is in no database row: queries of only that class have AP 0.
            let classes = 10;
            let qi: Vec<u32> = (0..nq).map(|_| rng.random_range(0..classes as u32)).collect();
            let di: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes as u32 - 1)).collect();
            let ql = LabelSet::from_class_ids(&qi, classes).unwrap();
            let dl = LabelSet::from_class_ids(&di, classes).unwrap();
            assert_eval_matches(gpu, &q, &ql, &d, &dl);
            let (ql, dl) = (random_labels(&mut rng, nq, 100), random_labels(&mut rng, n, 100));
            assert_eval_matches(gpu, &q, &ql, &d, &dl);
        }
    }
    let empty = random_codes(&mut rng, 0, 64);
    let d = random_codes(&mut rng, 40, 64);
    assert_search_matches(gpu, &empty, &d, 3, None);
    let (el, dl) = (random_labels(&mut rng, 0, 5), random_labels(&mut rng, 40, 5));
    assert_eval_matches(gpu, &empty, &el, &d, &dl);
}

/// More database rows than the grid has threads (1024 blocks × 256): threads stride.
fn strides_over_a_large_database<D: Device>(gpu: &GpuEngine<D>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (nq, n) = (40, 1024 * 256 + 999);
    let q = random_codes(&mut rng, nq, 64);
    let d = random_codes(&mut rng, n, 64);
    assert_search_matches(gpu, &q, &d, 10, None);
    let (ql, dl) = (random_labels(&mut rng, nq, 24), random_labels(&mut rng, n, 24));
    assert_eval_matches(gpu, &q, &ql, &d, &dl);
}

#[cfg(feature = "cuda-emulator")]
mod emulator {
    use super::*;

    #[test]
    fn emulated_kernels_match_the_cpu() {
        matches_the_cpu(&GpuEngine::emulator());
    }

    #[test]
    fn emulated_kernels_stride_over_a_large_database() {
        strides_over_a_large_database(&GpuEngine::emulator());
    }
}

#[cfg(feature = "cuda")]
mod driver {
    use super::*;
    use seqmodal_hamming::cuda::CudaBackend;
    use seqmodal_hamming::HammingError;

    /// The GPU, or `None` (with a check that the failure was a typed error, not a panic).
    fn gpu() -> Option<CudaBackend> {
        match std::panic::catch_unwind(|| CudaBackend::new(0)).expect("CudaBackend::new panicked") {
            Err(HammingError::Cuda(msg)) => {
                eprintln!("no usable GPU ({msg}): checked that it is a typed error");
                assert!(!msg.is_empty());
                None
            }
            Err(e) => panic!("unexpected error type: {e:?}"),
            Ok(gpu) => Some(gpu),
        }
    }

    #[test]
    fn gpu_errors_cleanly_or_matches_the_cpu() {
        if let Some(gpu) = gpu() {
            matches_the_cpu(&gpu);
        }
    }

    #[test]
    fn gpu_errors_cleanly_or_strides_over_a_large_database() {
        if let Some(gpu) = gpu() {
            strides_over_a_large_database(&gpu);
        }
    }
}
