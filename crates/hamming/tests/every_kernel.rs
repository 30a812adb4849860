//! Every kernel and width path gives the portable kernel's results, bit for bit: top-k, range
//! search, distances and every metric with the PR curve (`tests/engine.rs` checks the portable
//! results against a naive reference, on larger inputs).
//!
//! `just test-miri` runs this file under Miri with AVX-512 enabled: Miri executes the AVX-512
//! kernel, which no CI machine here has, and checks the unsafe code of every x86 kernel (the
//! bit-sliced filter, the vector loops, the fused mAP walk) for undefined behaviour. Miri is
//! ~10^4 times slower, so there it runs only the 8- and 64-bit cases (where AVX-512 has loops
//! of its own) and the other kernels' specialised loops only.

use seqmodal_hamming::{
    distances_into, evaluate_with, knn, topk_path, Codes, Engine, Kernel, LabelSet, Metric, Width,
};

const PORTABLE: Engine = Engine { kernel: Kernel::Portable, width: Width::Generic };

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// Every supported (kernel, width) but the reference one. Under Miri (which must have AVX-512
/// enabled): AVX-512 in both widths, whose loops run nowhere else, and the other x86 kernels'
/// specialised loops, for Miri's checks of their unsafe code.
fn engines() -> Vec<Engine> {
    if cfg!(miri) {
        assert!(Kernel::Avx512.is_supported(), "run Miri with AVX-512 enabled: `just test-miri`");
        assert_eq!(Kernel::Auto.resolve().unwrap(), Kernel::Avx512);
        let spec = |kernel| Engine { kernel, width: Width::Specialised };
        return vec![
            spec(Kernel::Avx512),
            Engine { kernel: Kernel::Avx512, width: Width::Generic },
            spec(Kernel::Sliced),
            spec(Kernel::Avx2),
            spec(Kernel::Popcnt),
        ];
    }
    let mut out = Vec::new();
    for kernel in Kernel::CONCRETE.into_iter().filter(|k| k.is_supported()) {
        for width in [Width::Specialised, Width::Generic] {
            let e = Engine { kernel, width };
            if e != PORTABLE {
                out.push(e);
            }
        }
    }
    out
}

struct Case {
    q: Codes,
    db: Codes,
    ql: LabelSet,
    dl: LabelSet,
}

/// SplitMix64: a few integer operations per draw (under Miri, `rand`'s ChaCha added ~15 s to
/// drawing the cases).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for a test (n is small).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `n` random codes (bits set with probability 1/4: distances cluster and tie) with one of
/// `classes` labels per row; query 0's class is one no database row has, so it has no relevant
/// item. (Class ids, not multi-hot rows: Miri took a minute over the multi-hot bytes.
/// `tests/engine.rs` covers multi-label sets on every kernel.)
fn case(rng: &mut Mix, bits: usize, classes: usize, n: usize) -> Case {
    let nq = 3;
    let mut codes = |rows: usize| {
        let bytes: Vec<u8> = (0..rows * bits / 8).map(|_| (rng.next() & rng.next()) as u8).collect();
        Codes::from_packbits(&bytes, rows, bits).unwrap()
    };
    let (q, db) = (codes(nq), codes(n));
    let mut ids = |rows: usize| -> Vec<u32> { (0..rows).map(|_| rng.below(classes - 1) as u32).collect() };
    let (mut qi, di) = (ids(nq), ids(n));
    qi[0] = (classes - 1) as u32;
    let (ql, dl) =
        (LabelSet::from_class_ids(&qi, classes).unwrap(), LabelSet::from_class_ids(&di, classes).unwrap());
    Case { q, db, ql, dl }
}

#[test]
fn every_kernel_gives_the_portable_results() {
    let mut rng = Mix(17);
    // 527 items: one whole 512-code block for the AVX-512 bit-sliced filter (two 256-code ones
    // for the AVX2 filter) plus a tail of 15: the AVX-512 per-code loop then runs its 32-code
    // steps, one 8-code step and a scalar tail; 527 is not a multiple of the 4- or 12-code
    // AVX2 loops either. Widths: 1, 2, 3 (no
    // specialised loop), 4 and 5 words; 320 bits packs the distance in 9 bits; 150 classes
    // take three label words.
    let all = [(8usize, 24usize), (64, 24), (64, 150), (128, 24), (192, 5), (256, 150), (320, 24)];
    let cases = if cfg!(miri) { &all[..2] } else { &all[..] };
    let metrics = [Metric::Map, Metric::MapAt(10), Metric::PrecisionAt(10), Metric::PrecisionRadius(2)];
    let engines = engines();
    for &(bits, classes) in cases {
        let c = case(&mut rng, bits, classes, 527);
        let (q, db) = (c.q.view(), c.db.view());
        // A full ranking and a range search; natively also the shortest lists.
        let all = [(db.len(), None), (20, Some((bits / 4) as u32)), (1, None), (7, None)];
        let searches = if cfg!(miri) { &all[..2] } else { &all[..] };
        // On one thread (and no global pool, whose threads Miri would report as leaked).
        let want_knn: Vec<_> =
            searches.iter().map(|&(k, r)| in_pool(1, || knn(q, db, k, r, PORTABLE).unwrap())).collect();
        let want_eval = in_pool(1, || evaluate_with(q, &c.ql, db, &c.dl, &metrics, PORTABLE, true).unwrap());
        let mut want_dist = vec![0u32; db.len()];
        distances_into(q.row(1), db, PORTABLE, &mut want_dist).unwrap();
        // Guards the comparison: the case has relevant items and distances that tie.
        assert!(want_eval.metrics[0] > 0.0, "{bits} bits: no relevant item");
        assert!(want_dist.iter().filter(|&&d| d == want_dist[0]).count() > 1, "{bits} bits: no tie");
        for &engine in &engines {
            let at = format!("{bits} bits, {classes} classes, {engine:?}");
            for (&(k, r), want) in searches.iter().zip(&want_knn) {
                let got = in_pool(2, || knn(q, db, k, r, engine).unwrap());
                assert_eq!(&got, want, "{at}, k {k}, radius {r:?}");
            }
            let got = in_pool(2, || evaluate_with(q, &c.ql, db, &c.dl, &metrics, engine, true).unwrap());
            assert_eq!(got, want_eval, "{at}");
            let mut dist = vec![u32::MAX; db.len()];
            distances_into(q.row(1), db, engine, &mut dist).unwrap();
            assert_eq!(dist, want_dist, "{at}");
        }
    }
}

/// The AVX-512 kernels run natively where the CPU has them (in the test above, through
/// `engines()`), and `Auto` takes the path measured fastest per width; elsewhere this test says
/// it is skipped, and only Miri (`just test-miri`) runs those kernels.
#[test]
#[cfg_attr(miri, ignore)]
fn avx512_kernels_run_natively_where_the_cpu_has_them() {
    if !Kernel::Avx512.is_supported() {
        eprintln!("skipped: this CPU has no AVX-512 VPOPCNTDQ (`just test-miri` checks those kernels)");
        return;
    }
    let listed = engines();
    for kernel in [Kernel::Avx512, Kernel::Sliced512] {
        assert!(listed.iter().any(|e| e.kernel == kernel), "{kernel} is not tested natively");
    }
    assert_eq!(Kernel::Auto.resolve().unwrap(), Kernel::Avx512);
    let path = |kernel, width, bits| topk_path(Engine { kernel, width }, bits).unwrap();
    let (auto, spec, generic) = (Kernel::Auto, Width::Specialised, Width::Generic);
    assert_eq!(path(auto, spec, 64), "vpopcntdq");
    assert_eq!(path(auto, spec, 128), "vpopcntdq");
    assert_eq!(path(auto, spec, 192), "sliced512");
    assert_eq!(path(auto, spec, 256), "sliced512");
    assert_eq!(path(auto, generic, 64), "sliced512");
    assert_eq!(path(Kernel::Sliced512, spec, 64), "sliced512");
    assert_eq!(path(Kernel::Sliced, spec, 64), "sliced");
    assert_eq!(path(Kernel::Avx2, spec, 64), "avx2");
}
