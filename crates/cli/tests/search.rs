//! `seqmodal search` / `seqmodal eval` end to end on .npy files: results against a naive
//! byte-wise reference, eval JSON against the library, and bad files naming the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seqmodal_hamming::npy::{self, DType, NpyFile};
use seqmodal_hamming::{evaluate, Codes, LabelSet, Metric};

fn seqmodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqmodal")).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Random packed bytes, biased so distances tie often.
fn packed(rng: &mut ChaCha8Rng, n: usize, row_bytes: usize) -> Vec<u8> {
    (0..n * row_bytes).map(|_| rng.random::<u8>() & rng.random::<u8>()).collect()
}

fn write_codes(dir: &Path, name: &str, bytes: &[u8], n: usize, row_bytes: usize) -> PathBuf {
    let p = dir.join(name);
    npy::write_npy(&p, DType::U8, &[n, row_bytes], bytes).unwrap();
    p
}

fn read_i64(p: &Path) -> (Vec<usize>, Vec<i64>) {
    let f = NpyFile::open(p).unwrap();
    assert_eq!(f.dtype(), DType::I64);
    (
        f.shape().to_vec(),
        f.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
    )
}

fn read_i32(p: &Path) -> (Vec<usize>, Vec<i32>) {
    let f = NpyFile::open(p).unwrap();
    assert_eq!(f.dtype(), DType::I32);
    (
        f.shape().to_vec(),
        f.data().chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect(),
    )
}

/// Byte-wise reference: popcount of each byte XOR, stable sort by distance, first k within radius.
fn reference(q: &[u8], db: &[u8], rb: usize, k: usize, radius: Option<i32>) -> (Vec<i64>, Vec<i32>) {
    let mut all: Vec<(i32, i64)> = db
        .chunks(rb)
        .enumerate()
        .map(|(j, c)| (q.iter().zip(c).map(|(a, b)| (a ^ b).count_ones() as i32).sum(), j as i64))
        .collect();
    all.sort_by_key(|&(d, _)| d);
    let mut ids = vec![-1i64; k];
    let mut ds = vec![i32::MAX; k];
    for (slot, &(d, j)) in all.iter().take(k).filter(|(d, _)| radius.is_none_or(|r| *d <= r)).enumerate() {
        ids[slot] = j;
        ds[slot] = d;
    }
    (ids, ds)
}

#[test]
fn search_matches_reference_for_widths_threads_and_kernels() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    // 4 bytes = 32-bit codes (padded copy), 8 = 64 (zero copy), 16 = 128, 12 = 96 (generic).
    for rb in [4usize, 8, 12, 16] {
        let (nq, n) = (13, 700);
        let db = packed(&mut rng, n, rb);
        let q = packed(&mut rng, nq, rb);
        let dbp = write_codes(tmp.path(), &format!("db{rb}.npy"), &db, n, rb);
        let qp = write_codes(tmp.path(), &format!("q{rb}.npy"), &q, nq, rb);
        for (k, radius) in [(25usize, None), (n, None), (40, Some(rb as i32 * 2))] {
            let mut first: Option<(Vec<i64>, Vec<i32>)> = None;
            for extra in
                [&["--threads", "1"][..], &["--threads", "2"], &["--kernel", "portable", "--generic"]]
            {
                let out = tmp.path().join(format!("out-{rb}-{k}-{}", extra.join("")));
                let kk = k.to_string();
                let rr = radius.map(|r| r.to_string());
                let mut args =
                    vec!["search", "--database", s(&dbp), "--queries", s(&qp), "-k", &kk, "--out", s(&out)];
                if let Some(r) = &rr {
                    args.extend(["--radius", r.as_str()]);
                }
                args.extend(extra);
                let o = seqmodal(&args);
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                assert_eq!(line["queries"], nq);
                assert!(line["codes_compared_per_second"].as_f64().unwrap() > 0.0);
                let (shape, ids) = read_i64(&out.join("ids.npy"));
                let (dshape, ds) = read_i32(&out.join("distances.npy"));
                assert_eq!((shape, dshape), (vec![nq, k], vec![nq, k]));
                for i in 0..nq {
                    let want = reference(&q[i * rb..(i + 1) * rb], &db, rb, k, radius);
                    assert_eq!(
                        (&ids[i * k..(i + 1) * k], &ds[i * k..(i + 1) * k]),
                        (want.0.as_slice(), want.1.as_slice()),
                        "row bytes {rb} k {k} radius {radius:?} {extra:?} query {i}"
                    );
                }
                match &first {
                    None => first = Some((ids, ds)),
                    Some(f) => assert_eq!(f, &(ids, ds)),
                }
            }
        }
    }
}

#[test]
fn eval_json_equals_library_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (nq, n, rb, classes) = (31, 500, 8, 6);
    let db = packed(&mut rng, n, rb);
    let q = packed(&mut rng, nq, rb);
    let dbp = write_codes(tmp.path(), "db.npy", &db, n, rb);
    let qp = write_codes(tmp.path(), "q.npy", &q, nq, rb);
    // Query labels as int64 class ids, database labels as multi-hot (some rows with two labels).
    let qids: Vec<i64> = (0..nq).map(|_| rng.random_range(0..classes as i64)).collect();
    let mut dh = vec![0u8; n * classes];
    for row in dh.chunks_exact_mut(classes) {
        row[rng.random_range(0..classes)] = 1;
        row[rng.random_range(0..classes)] = 1;
    }
    let qlp = tmp.path().join("ql.npy");
    npy::write_i64(&qlp, &[nq], &qids).unwrap();
    let dlp = tmp.path().join("dl.npy");
    npy::write_npy(&dlp, DType::U8, &[n, classes], &dh).unwrap();
    // `seqmodal eval --k 50` of the codes with these label files, its JSON.
    let eval = |dl: &Path, ql: &Path| -> serde_json::Value {
        let o = seqmodal(&[
            "eval",
            "--database",
            s(&dbp),
            "--queries",
            s(&qp),
            "--db-labels",
            s(dl),
            "--query-labels",
            s(ql),
            "--k",
            "50",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v = eval(&dlp, &qlp);
    // The same labels as float64 arrays (as pandas and MATLAB write them) give the same numbers.
    let f64s = |v: &mut dyn Iterator<Item = f64>| v.flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let qlf = tmp.path().join("ql-f64.npy");
    npy::write_npy(&qlf, DType::F64, &[nq], &f64s(&mut qids.iter().map(|&c| c as f64))).unwrap();
    let dlf = tmp.path().join("dl-f64.npy");
    npy::write_npy(&dlf, DType::F64, &[n, classes], &f64s(&mut dh.iter().map(|&c| f64::from(c)))).unwrap();
    let vf = eval(&dlf, &qlf);
    for key in ["map", "map@50", "p@50", "p@r2", "pr_curve", "classes"] {
        assert_eq!(v[key], vf[key], "{key}: int labels vs float64 labels");
    }

    let qc = Codes::from_packbits(&q, nq, rb * 8).unwrap();
    let dc = Codes::from_packbits(&db, n, rb * 8).unwrap();
    let ids: Vec<u32> = qids.iter().map(|&c| c as u32).collect();
    let ql = LabelSet::from_class_ids(&ids, classes).unwrap();
    let dl = LabelSet::from_multi_hot(&dh, n, classes).unwrap();
    let metrics = [Metric::Map, Metric::MapAt(50), Metric::PrecisionAt(50), Metric::PrecisionRadius(2)];
    let want = evaluate(&qc, &ql, &dc, &dl, &metrics).unwrap();
    for (m, w) in metrics.iter().zip(&want) {
        let got = v[m.to_string()].as_f64().unwrap_or_else(|| panic!("no {m} in {v}"));
        assert!((got - w).abs() < 1e-12, "{m}: cli {got}, library {w}");
    }
    assert!(want[0] > 0.0 && want[1] > 0.0);
    let pr = v["pr_curve"].as_array().unwrap();
    assert_eq!(pr.len(), rb * 8 + 1);
    // At radius 2 the curve's precision is p@r2; at the full radius recall is 1 for every query
    // with a relevant item.
    assert!((pr[2]["precision"].as_f64().unwrap() - want[3]).abs() < 1e-12);
    let with_rel = (0..nq).filter(|&i| (0..n).any(|j| ql.relevant(i, &dl, j))).count() as f64 / nq as f64;
    assert!((pr[rb * 8]["recall"].as_f64().unwrap() - with_rel).abs() < 1e-12);
}

#[test]
fn bad_inputs_fail_with_a_message_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let good = write_codes(d, "good.npy", &[1u8; 80], 10, 8);
    let narrow = write_codes(d, "narrow.npy", &[1u8; 40], 10, 4);
    let trunc = d.join("trunc.npy");
    let b = npy::npy_bytes(DType::U8, &[10, 8], &[3; 80]);
    std::fs::write(&trunc, &b[..b.len() - 1]).unwrap();
    let float = d.join("float.npy");
    npy::write_npy(&float, DType::F32, &[10, 2], &[0; 80]).unwrap();
    // Float labels are read when integral; 0.5 is not a label.
    let halves = d.join("halves.npy");
    npy::write_npy(
        &halves,
        DType::F32,
        &[10, 2],
        &[0.5f32; 20].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
    let rank3 = d.join("rank3.npy");
    npy::write_npy(&rank3, DType::U8, &[10, 2, 4], &[0; 80]).unwrap();
    let labels9 = d.join("labels9.npy");
    npy::write_i64(&labels9, &[9], &[0; 9]).unwrap();
    let labels10 = d.join("labels10.npy");
    npy::write_i64(&labels10, &[10], &[0; 10]).unwrap();
    let noq = write_codes(d, "noq.npy", &[], 0, 8);
    let labels0 = d.join("labels0.npy");
    npy::write_i64(&labels0, &[0], &[]).unwrap();
    let out = d.join("out");
    let search = |db: &Path, q: &Path, k: &str| {
        seqmodal(&["search", "--database", s(db), "--queries", s(q), "-k", k, "--out", s(&out)])
    };
    let cases: Vec<(Output, &str)> = vec![
        (search(&trunc, &good, "3"), "trunc.npy"),
        (search(&good, &float, "3"), "float.npy"),
        (search(&rank3, &good, "3"), "rank3.npy"),
        (search(&good, &narrow, "3"), "narrow.npy"),
        (search(&good, &d.join("absent.npy"), "3"), "absent.npy"),
        (search(&good, &good, "0"), "good.npy"),
        (search(&good, &good, "11"), "good.npy"),
        (
            seqmodal(&[
                "eval",
                "--database",
                s(&good),
                "--queries",
                s(&good),
                "--db-labels",
                s(&labels9),
                "--query-labels",
                s(&labels10),
            ]),
            "labels9.npy",
        ),
        (
            seqmodal(&[
                "eval",
                "--database",
                s(&good),
                "--queries",
                s(&good),
                "--db-labels",
                s(&halves),
                "--query-labels",
                s(&labels10),
            ]),
            "halves.npy",
        ),
        (
            // No queries: a mean over none is undefined (it printed 0 for every metric).
            seqmodal(&[
                "eval",
                "--database",
                s(&good),
                "--queries",
                s(&noq),
                "--db-labels",
                s(&labels10),
                "--query-labels",
                s(&labels0),
                "--k",
                "3",
            ]),
            "noq.npy has no query codes",
        ),
    ];
    for (i, (o, name)) in cases.iter().enumerate() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "case {i} ({name}) succeeded");
        assert!(err.contains(name), "case {i}: stderr does not name {name}: {err}");
        assert!(!err.contains("panicked"), "case {i} panicked: {err}");
    }
    assert!(!out.join("ids.npy").exists(), "a failed search wrote output");
}
