//! `knn` and `evaluate_with` against a naive reference (unpacked bits, stable comparison sort),
//! with every kernel, both width paths and several thread counts forced explicitly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqmodal_hamming::{
    evaluate_with, knn, Codes, Engine, HammingError, Kernel, LabelSet, Metric, Width, NO_DISTANCE, NO_ID,
};

fn engines() -> Vec<Engine> {
    let mut out = Vec::new();
    for kernel in Kernel::CONCRETE {
        if !kernel.is_supported() {
            eprintln!("kernel {kernel} not supported on this CPU: skipped");
            continue;
        }
        for width in [Width::Specialised, Width::Generic] {
            out.push(Engine { kernel, width });
        }
    }
    out
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// Random bits with a bias so that distances cluster and tie often.
fn random_bits(rng: &mut ChaCha8Rng, n: usize, bits: usize) -> Vec<bool> {
    (0..n * bits).map(|_| rng.random_bool(0.3)).collect()
}

fn ref_dist(a: &[bool], b: &[bool]) -> i32 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as i32
}

/// Stable sort of all items by distance, first k, drop those beyond the radius, pad.
fn ref_knn(q: &[bool], db: &[bool], bits: usize, k: usize, radius: Option<u32>) -> (Vec<i64>, Vec<i32>) {
    let mut items: Vec<(i32, i64)> =
        db.chunks(bits).enumerate().map(|(j, c)| (ref_dist(q, c), j as i64)).collect();
    items.sort_by_key(|&(d, _)| d);
    let mut ids = vec![NO_ID; k];
    let mut ds = vec![NO_DISTANCE; k];
    for (slot, &(d, j)) in
        items.iter().take(k).filter(|(d, _)| radius.is_none_or(|r| *d as u32 <= r)).enumerate()
    {
        ids[slot] = j;
        ds[slot] = d;
    }
    (ids, ds)
}

#[test]
fn knn_matches_reference_for_every_kernel_width_and_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for &bits in &[8usize, 13, 32, 64, 65, 128, 130, 256, 320] {
        let (nq, n) = (23, 300);
        let qb = random_bits(&mut rng, nq, bits);
        let db = random_bits(&mut rng, n, bits);
        let q = Codes::from_bools(&qb, nq, bits).unwrap();
        let d = Codes::from_bools(&db, n, bits).unwrap();
        for &(k, radius) in &[
            (1, None),
            (10, None),
            (n, None),
            (50, Some(0)),
            (n, Some((bits as f64 * 0.35) as u32)),
            (5, Some(u32::MAX)),
        ] {
            let want: Vec<_> =
                (0..nq).map(|i| ref_knn(&qb[i * bits..(i + 1) * bits], &db, bits, k, radius)).collect();
            for engine in engines() {
                for threads in [1, 3] {
                    let got = in_pool(threads, || knn(q.view(), d.view(), k, radius, engine).unwrap());
                    assert_eq!(got.len(), nq);
                    for (i, (ids, ds)) in want.iter().enumerate() {
                        assert_eq!(
                            (got.row_ids(i), got.row_distances(i)),
                            (ids.as_slice(), ds.as_slice()),
                            "bits {bits} k {k} radius {radius:?} {engine:?} threads {threads} query {i}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn knn_large_database_exercises_tiles_and_tightening() {
    // Several tiles and query blocks, uniform bits: the filter threshold tightens many times.
    // Widths with and without a specialised loop; n is not a multiple of the 256-code
    // bit-sliced block, so every tile's tail goes through the row-major loop too.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (nq, n, bits, k) in
        [(300, 20_000, 64, 17), (40, 9_001, 128, 5), (30, 5_000, 192, 9), (20, 3_000, 256, 1)]
    {
        let qb: Vec<bool> = (0..nq * bits).map(|_| rng.random_bool(0.5)).collect();
        let db: Vec<bool> = (0..n * bits).map(|_| rng.random_bool(0.5)).collect();
        let q = Codes::from_bools(&qb, nq, bits).unwrap();
        let d = Codes::from_bools(&db, n, bits).unwrap();
        let base =
            knn(q.view(), d.view(), k, None, Engine { kernel: Kernel::Portable, width: Width::Generic })
                .unwrap();
        for i in (0..nq).step_by(7) {
            let (ids, ds) = ref_knn(&qb[i * bits..(i + 1) * bits], &db, bits, k, None);
            assert_eq!(
                (base.row_ids(i), base.row_distances(i)),
                (ids.as_slice(), ds.as_slice()),
                "bits {bits} query {i}"
            );
        }
        for engine in engines() {
            let got = in_pool(2, || knn(q.view(), d.view(), k, None, engine).unwrap());
            assert_eq!(got, base, "bits {bits} {engine:?}");
        }
    }
}

#[test]
fn knn_finds_distances_zero_and_all_bits_on_every_kernel() {
    // Copies and complements of the query sit among random codes: the extreme distances 0
    // and `bits` take every bit of the bit-sliced adder's sum.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for bits in [64usize, 128, 192, 256] {
        let n = 700;
        let qb: Vec<bool> = (0..bits).map(|_| rng.random_bool(0.5)).collect();
        let mut db: Vec<bool> = (0..n * bits).map(|_| rng.random_bool(0.5)).collect();
        for j in (0..n).step_by(97) {
            let flip = j % 2 == 1;
            for (b, &v) in qb.iter().enumerate() {
                db[j * bits + b] = v ^ flip;
            }
        }
        let q = Codes::from_bools(&qb, 1, bits).unwrap();
        let d = Codes::from_bools(&db, n, bits).unwrap();
        let want = ref_knn(&qb, &db, bits, n, None);
        assert_eq!(want.1[0], 0);
        assert_eq!(want.1[n - 1], bits as i32);
        for engine in engines() {
            let got = knn(q.view(), d.view(), n, None, engine).unwrap();
            assert_eq!(
                (got.row_ids(0), got.row_distances(0)),
                (want.0.as_slice(), want.1.as_slice()),
                "bits {bits} {engine:?}"
            );
        }
    }
}

#[test]
fn knn_rejects_bad_k_and_width_mismatch() {
    let a = Codes::from_bools(&[true; 16], 2, 8).unwrap();
    let b = Codes::from_bools(&[true; 18], 2, 9).unwrap();
    let e = Engine::default();
    assert!(matches!(knn(a.view(), a.view(), 0, None, e), Err(HammingError::BadK { k: 0, n: 2 })));
    assert!(matches!(knn(a.view(), a.view(), 3, None, e), Err(HammingError::BadK { k: 3, n: 2 })));
    assert!(matches!(
        knn(a.view(), b.view(), 1, None, e),
        Err(HammingError::BitsMismatch { query: 8, database: 9 })
    ));
}

fn ref_ap(rel: &[bool]) -> f64 {
    let mut hits = 0;
    let mut s = 0.0;
    for (i, &r) in rel.iter().enumerate() {
        if r {
            hits += 1;
            s += hits as f64 / (i + 1) as f64;
        }
    }
    if hits == 0 {
        0.0
    } else {
        s / hits as f64
    }
}

#[test]
fn evaluate_with_matches_reference_and_is_bitwise_stable() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    // Item counts that are not multiples of 4 or 256 reach every loop tail. 8 bits x 4 200
    // items: ties everywhere and several tiles; 256 bits: beyond the byte-lane
    // (blocked) pass, so the x86 kernels fall back to the plain one; 256 and 320 bits: packed
    // counters with a 9-bit distance; 512 bits: more buckets than the fixed counter array.
    let cases = [
        (16usize, 4usize, 260usize),
        (64, 24, 263),
        (128, 70, 260),
        (128, 24, 301),
        (200, 3, 260),
        (8, 3, 4200),
        (256, 5, 300),
        (64, 150, 263),
        (256, 150, 300),
        (320, 81, 301),
        (512, 5, 260),
    ];
    for &(bits, classes, n) in &cases {
        let nq = 70;
        let qb = random_bits(&mut rng, nq, bits);
        let db = random_bits(&mut rng, n, bits);
        // Beyond 100 classes, ~3 labels a row: a query's labels then fall in one, two or three
        // of its label words (or none), each a different relevance path.
        let p = if classes > 100 { 3.0 / classes as f64 } else { 0.15 };
        let qh: Vec<u8> = (0..nq * classes).map(|_| u8::from(rng.random_bool(p))).collect();
        let dh: Vec<u8> = (0..n * classes).map(|_| u8::from(rng.random_bool(p))).collect();
        let q = Codes::from_bools(&qb, nq, bits).unwrap();
        let d = Codes::from_bools(&db, n, bits).unwrap();
        let ql = LabelSet::from_multi_hot(&qh, nq, classes).unwrap();
        let dl = LabelSet::from_multi_hot(&dh, n, classes).unwrap();
        let metrics = [Metric::Map, Metric::MapAt(20), Metric::PrecisionAt(20), Metric::PrecisionRadius(2)];

        // Reference: sort, then each metric and the PR curve straight from the definitions.
        let mut want = [0.0f64; 4];
        let mut want_pr = vec![(0.0f64, 0.0f64); bits + 1];
        for i in 0..nq {
            let qrow = &qb[i * bits..(i + 1) * bits];
            let mut items: Vec<(i32, usize)> =
                db.chunks(bits).enumerate().map(|(j, c)| (ref_dist(qrow, c), j)).collect();
            items.sort_by_key(|&(dd, _)| dd);
            let rel_of =
                |j: usize| (0..classes).any(|c| qh[i * classes + c] != 0 && dh[j * classes + c] != 0);
            let ranked: Vec<bool> = items.iter().map(|&(_, j)| rel_of(j)).collect();
            want[0] += ref_ap(&ranked);
            want[1] += ref_ap(&ranked[..20]);
            want[2] += ranked[..20].iter().filter(|&&r| r).count() as f64 / 20.0;
            let within: Vec<bool> =
                items.iter().filter(|(dd, _)| *dd <= 2).map(|&(_, j)| rel_of(j)).collect();
            let total_rel = ranked.iter().filter(|&&r| r).count();
            if !within.is_empty() {
                want[3] += within.iter().filter(|&&r| r).count() as f64 / within.len() as f64;
            }
            for (r, p) in want_pr.iter_mut().enumerate() {
                let got: Vec<bool> =
                    items.iter().filter(|(dd, _)| *dd as usize <= r).map(|&(_, j)| rel_of(j)).collect();
                let h = got.iter().filter(|&&x| x).count() as f64;
                if !got.is_empty() {
                    p.0 += h / got.len() as f64;
                }
                if total_rel > 0 {
                    p.1 += h / total_rel as f64;
                }
            }
        }
        let base = in_pool(1, || {
            evaluate_with(
                q.view(),
                &ql,
                d.view(),
                &dl,
                &metrics,
                Engine { kernel: Kernel::Portable, width: Width::Generic },
                true,
            )
            .unwrap()
        });
        for (m, (g, w)) in metrics.iter().zip(base.metrics.iter().zip(want)) {
            assert!((g - w / nq as f64).abs() < 1e-12, "bits {bits} {m}: {g} vs {}", w / nq as f64);
        }
        assert_eq!(base.pr_curve.len(), bits + 1);
        for (p, w) in base.pr_curve.iter().zip(&want_pr) {
            assert!((p.precision - w.0 / nq as f64).abs() < 1e-12, "bits {bits} precision r{}", p.radius);
            assert!((p.recall - w.1 / nq as f64).abs() < 1e-12, "bits {bits} recall r{}", p.radius);
        }
        // Guards the comparison above: recall grows with the radius and ends above zero.
        assert!(base.pr_curve.windows(2).all(|w| w[0].recall <= w[1].recall));
        assert!(base.pr_curve.last().unwrap().recall > 0.0);
        for engine in engines() {
            for threads in [1, 2, 5] {
                let got = in_pool(threads, || {
                    evaluate_with(q.view(), &ql, d.view(), &dl, &metrics, engine, true).unwrap()
                });
                assert_eq!(got, base, "bits {bits} {engine:?} threads {threads}");
            }
            // Any subset and order of metrics gives the same bits (the metrics share passes).
            let subset = [Metric::PrecisionAt(20), Metric::MapAt(5), Metric::MapAt(20)];
            let got = evaluate_with(q.view(), &ql, d.view(), &dl, &subset, engine, false).unwrap();
            let five =
                evaluate_with(q.view(), &ql, d.view(), &dl, &[Metric::MapAt(5)], engine, false).unwrap();
            assert_eq!(
                got.metrics,
                [base.metrics[2], five.metrics[0], base.metrics[1]],
                "bits {bits} {engine:?}"
            );
            // Map alone (no @k metric: nothing kept for them) gives the same bits too.
            let map = evaluate_with(q.view(), &ql, d.view(), &dl, &[Metric::Map], engine, false).unwrap();
            assert_eq!(map.metrics, [base.metrics[0]], "bits {bits} {engine:?} map alone");
        }
    }
}

#[test]
fn forcing_an_unsupported_kernel_is_an_error() {
    let a = Codes::from_bools(&[true; 8], 1, 8).unwrap();
    for kernel in Kernel::CONCRETE.into_iter().filter(|k| !k.is_supported()) {
        let err = knn(a.view(), a.view(), 1, None, Engine { kernel, width: Width::Specialised }).unwrap_err();
        assert!(matches!(err, HammingError::KernelUnsupported(_)), "{err:?}");
    }
    assert!(Kernel::Auto.resolve().unwrap().is_supported());
    assert_eq!("avx2".parse::<Kernel>().unwrap(), Kernel::Avx2);
    assert_eq!("sliced".parse::<Kernel>().unwrap(), Kernel::Sliced);
    assert!("sse".parse::<Kernel>().is_err());
}

#[test]
fn distances_into_matches_reference_for_every_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for &bits in &[7usize, 64, 128, 192, 256] {
        let n = 103;
        let db = random_bits(&mut rng, n, bits);
        let qb = random_bits(&mut rng, 1, bits);
        let d = Codes::from_bools(&db, n, bits).unwrap();
        let q = Codes::from_bools(&qb, 1, bits).unwrap();
        let want: Vec<u32> = db.chunks(bits).map(|c| ref_dist(&qb, c) as u32).collect();
        for engine in engines() {
            let mut out = vec![u32::MAX; n];
            seqmodal_hamming::distances_into(q.row(0), d.view(), engine, &mut out).unwrap();
            assert_eq!(out, want, "bits {bits} {engine:?}");
        }
        let mut short = vec![0; n - 1];
        assert!(seqmodal_hamming::distances_into(q.row(0), d.view(), Engine::default(), &mut short).is_err());
    }
}
