//! Criterion benches of the CPU engine: top-k per kernel and width, and mAP@all.
//!
//! `cargo bench -p seqmodal-hamming --bench search` (sizes are kept small so a run takes
//! about a minute; `seqmodal bench search` runs the full-size comparisons).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqmodal_hamming::{evaluate_with, knn, CodesView, Engine, Kernel, LabelSet, Metric, Width};

fn words(seed: u64, n: usize) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random()).collect()
}

fn topk(c: &mut Criterion) {
    let (nq, n) = (64, 200_000);
    let mut g = c.benchmark_group("top100");
    g.sample_size(10);
    g.throughput(Throughput::Elements((nq * n) as u64));
    for bits in [64usize, 128, 256] {
        let dbw = words(1, n * bits / 64);
        let qw = words(2, nq * bits / 64);
        let db = CodesView::from_words(&dbw, n, bits).unwrap();
        let q = CodesView::from_words(&qw, nq, bits).unwrap();
        for kernel in Kernel::CONCRETE.into_iter().filter(|k| k.is_supported()) {
            for width in [Width::Specialised, Width::Generic] {
                let engine = Engine { kernel, width };
                let id = BenchmarkId::new(format!("{bits}bit-{kernel}-{width:?}"), n);
                g.bench_with_input(id, &engine, |b, &e| b.iter(|| knn(q, db, 100, None, e).unwrap()));
            }
        }
    }
    g.finish();
}

fn map_all(c: &mut Criterion) {
    let (nq, n, classes) = (128, 200_000, 24);
    let dbw = words(3, n);
    let qw = words(4, nq);
    let db = CodesView::from_words(&dbw, n, 64).unwrap();
    let q = CodesView::from_words(&qw, nq, 64).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let ids_db: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes as u32)).collect();
    let ids_q: Vec<u32> = (0..nq).map(|_| rng.random_range(0..classes as u32)).collect();
    let dl = LabelSet::from_class_ids(&ids_db, classes).unwrap();
    let ql = LabelSet::from_class_ids(&ids_q, classes).unwrap();
    let mut g = c.benchmark_group("map_all");
    g.sample_size(10);
    g.throughput(Throughput::Elements((nq * n) as u64));
    for kernel in Kernel::CONCRETE.into_iter().filter(|k| k.is_supported()) {
        let engine = Engine { kernel, width: Width::Specialised };
        g.bench_with_input(BenchmarkId::new(kernel.name(), n), &engine, |b, &e| {
            b.iter(|| evaluate_with(q, &ql, db, &dl, &[Metric::Map], e, false).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, topk, map_all);
criterion_main!(benches);
