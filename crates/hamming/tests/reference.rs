//! `evaluate` and `rank` against a plain reference computed another way: f64 distances from
//! unpacked bits, a stable comparison sort, and each metric straight from its definition.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqmodal_hamming::{evaluate, rank, Codes, LabelSet, Metric};

struct Data {
    codes: Codes,
    bits: Vec<Vec<bool>>,
    labels: LabelSet,
    hot: Vec<Vec<bool>>,
}

/// Random codes (few bits => many ties) and sparse multi-hot labels (some rows label-less).
fn random_data(rng: &mut ChaCha8Rng, n: usize, bits: usize, classes: usize) -> Data {
    let flat: Vec<bool> = (0..n * bits).map(|_| rng.random_bool(0.5)).collect();
    // Sparse labels so some queries have no relevant item at all.
    let hot_flat: Vec<u8> = (0..n * classes).map(|_| u8::from(rng.random_bool(0.12))).collect();
    Data {
        codes: Codes::from_bools(&flat, n, bits).unwrap(),
        bits: flat.chunks(bits).map(<[bool]>::to_vec).collect(),
        labels: LabelSet::from_multi_hot(&hot_flat, n, classes).unwrap(),
        hot: hot_flat.chunks(classes).map(|r| r.iter().map(|&v| v != 0).collect()).collect(),
    }
}

fn ref_distance(a: &[bool], b: &[bool]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as f64
}

fn ref_relevant(a: &[bool], b: &[bool]) -> bool {
    a.iter().zip(b).any(|(x, y)| *x && *y)
}

/// Stable sort of indices by (distance, index).
fn ref_rank(dist: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..dist.len()).collect();
    idx.sort_by(|&a, &b| dist[a].partial_cmp(&dist[b]).unwrap().then(a.cmp(&b)));
    idx
}

/// AP over a ranked relevance prefix, counting hits afresh at each relevant position.
fn ref_ap(rel: &[bool]) -> f64 {
    let r = rel.iter().filter(|&&x| x).count();
    if r == 0 {
        return 0.0;
    }
    let mut s = 0.0;
    for k in 0..rel.len() {
        if rel[k] {
            let hits = rel[..=k].iter().filter(|&&x| x).count();
            s += hits as f64 / (k + 1) as f64;
        }
    }
    s / r as f64
}

fn ref_metric(metric: Metric, dist: &[f64], rel_by_index: &[bool]) -> f64 {
    let order = ref_rank(dist);
    let ranked: Vec<bool> = order.iter().map(|&j| rel_by_index[j]).collect();
    let n = ranked.len();
    match metric {
        Metric::Map => ref_ap(&ranked),
        Metric::MapAt(k) => ref_ap(&ranked[..k.min(n)]),
        Metric::PrecisionAt(k) => {
            let top = k.min(n);
            if top == 0 {
                0.0
            } else {
                ranked[..top].iter().filter(|&&x| x).count() as f64 / top as f64
            }
        }
        Metric::PrecisionRadius(r) => {
            // Straight from the distances, not from the ranking.
            let within: Vec<usize> = (0..n).filter(|&j| dist[j] <= r as f64).collect();
            if within.is_empty() {
                0.0
            } else {
                within.iter().filter(|&&j| rel_by_index[j]).count() as f64 / within.len() as f64
            }
        }
    }
}

fn ref_evaluate(q: &Data, db: &Data, metrics: &[Metric]) -> Vec<f64> {
    let mut sums = vec![0.0; metrics.len()];
    for i in 0..q.bits.len() {
        let dist: Vec<f64> = db.bits.iter().map(|b| ref_distance(&q.bits[i], b)).collect();
        let rel: Vec<bool> = db.hot.iter().map(|h| ref_relevant(&q.hot[i], h)).collect();
        for (s, &m) in sums.iter_mut().zip(metrics) {
            *s += ref_metric(m, &dist, &rel);
        }
    }
    sums.iter().map(|s| s / q.bits.len() as f64).collect()
}

fn metrics_for(bits: usize, n_db: usize) -> Vec<Metric> {
    vec![
        Metric::Map,
        Metric::MapAt(1),
        Metric::MapAt(7),
        Metric::MapAt(50),
        Metric::MapAt(n_db + 13), // k > N
        Metric::PrecisionAt(1),
        Metric::PrecisionAt(10),
        Metric::PrecisionAt(n_db),
        Metric::PrecisionAt(10 * n_db), // k > N
        Metric::PrecisionRadius(0),
        Metric::PrecisionRadius(2),
        Metric::PrecisionRadius((bits / 2) as u32),
        Metric::PrecisionRadius(bits as u32 + 5), // radius beyond every distance
    ]
}

#[test]
fn evaluate_matches_reference_on_tie_heavy_random_data() {
    let mut rng = ChaCha8Rng::seed_from_u64(20240607);
    for &(bits, classes) in &[(8, 5), (13, 7), (64, 10), (65, 3), (130, 70)] {
        for &(nq, n_db) in &[(40, 150), (9, 1), (5, 0)] {
            let q = random_data(&mut rng, nq, bits, classes);
            let db = random_data(&mut rng, n_db, bits, classes);
            let metrics = metrics_for(bits, n_db);
            let got = evaluate(&q.codes, &q.labels, &db.codes, &db.labels, &metrics).unwrap();
            let want = ref_evaluate(&q, &db, &metrics);
            for ((m, g), w) in metrics.iter().zip(&got).zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-12,
                    "bits {bits}, nq {nq}, n_db {n_db}, {m}: got {g}, reference {w}"
                );
            }
        }
    }
}

#[test]
fn test_data_really_has_ties_and_label_less_queries() {
    // Guards the test above: it only means something if ties and R = 0 queries occur.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let q = random_data(&mut rng, 40, 8, 5);
    let db = random_data(&mut rng, 150, 8, 5);
    let no_relevant = (0..40).filter(|&i| !(0..150).any(|j| q.labels.relevant(i, &db.labels, j))).count();
    assert!(no_relevant > 0, "no query without relevant items");
    let dist: Vec<f64> = db.bits.iter().map(|b| ref_distance(&q.bits[0], b)).collect();
    let mut sorted = dist.clone();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    assert!(sorted.len() < dist.len() / 5, "too few ties");
}

#[test]
fn rank_matches_stable_sort_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for &bits in &[8, 13, 64, 65, 130] {
        let q = random_data(&mut rng, 6, bits, 4);
        let db = random_data(&mut rng, 200, bits, 4);
        for i in 0..6 {
            let dist: Vec<f64> = db.bits.iter().map(|b| ref_distance(&q.bits[i], b)).collect();
            let want: Vec<u32> = ref_rank(&dist).into_iter().map(|j| j as u32).collect();
            assert_eq!(rank(q.codes.row(i), &db.codes), want, "bits {bits}, query {i}");
        }
    }
}

#[test]
fn evaluate_is_independent_of_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let q = random_data(&mut rng, 300, 13, 6);
    let db = random_data(&mut rng, 400, 13, 6);
    let metrics = metrics_for(13, 400);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| evaluate(&q.codes, &q.labels, &db.codes, &db.labels, &metrics).unwrap())
    };
    let one = run(1);
    // Bitwise equality, not a tolerance: the reduction order must be fixed.
    assert_eq!(one, run(2));
    assert_eq!(one, run(7));
}
