//! `.npy` reading/writing: round trips, numpy's header variants, and every error naming the file.

use std::path::Path;

use seqmodal_hamming::npy::{self, CodeFile, DType, NpyError, NpyFile};
use seqmodal_hamming::{hamming_distance, Codes};

/// A file with a hand-written header (as numpy would write it) and raw data.
fn raw_npy(path: &Path, version: u8, dict: &str, data: &[u8]) {
    let len_bytes = if version == 1 { 2 } else { 4 };
    let mut header = dict.to_string();
    let unpadded = 8 + len_bytes + header.len() + 1;
    header.extend(std::iter::repeat_n(' ', unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out).unwrap();
}

#[test]
fn write_then_read_round_trip_all_versions() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ids.npy");
    npy::write_i64(&p, &[2, 3], &[1, -2, 3, 4, 5, i64::MIN]).unwrap();
    let f = NpyFile::open(&p).unwrap();
    assert_eq!((f.dtype(), f.shape()), (DType::I64, &[2usize, 3][..]));
    assert_eq!(f.header().data_offset % 64, 0);
    let back: Vec<i64> =
        f.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(back, vec![1, -2, 3, 4, 5, i64::MIN]);
    for version in [1u8, 2, 3] {
        let p = dir.path().join(format!("v{version}.npy"));
        raw_npy(
            &p,
            version,
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }",
            &[1, 2, 3, 4, 5, 6],
        );
        let f = NpyFile::open(&p).unwrap();
        assert_eq!((f.shape(), f.data()), (&[2usize, 3][..], &[1u8, 2, 3, 4, 5, 6][..]), "version {version}");
    }
    // 1-D shapes are written with a trailing comma, as numpy does; 0-row arrays are fine.
    let p = dir.path().join("one.npy");
    npy::write_i32(&p, &[0], &[]).unwrap();
    assert_eq!(NpyFile::open(&p).unwrap().shape(), &[0]);
}

#[test]
fn code_files_give_the_same_distances_as_packbits_codes() {
    let dir = tempfile::tempdir().unwrap();
    // 64 and 128 bits map without a copy; 24 and 72 bits take the padded copy.
    for (bits, zero_copy) in [(64usize, true), (128, true), (24, false), (72, false)] {
        let n = 9;
        let flat: Vec<bool> = (0..n * bits).map(|k| (k * 13 + k / 7) % 3 == 0).collect();
        let codes = Codes::from_bools(&flat, n, bits).unwrap();
        let p = dir.path().join(format!("c{bits}.npy"));
        npy::write_npy(&p, DType::U8, &[n, bits / 8], &codes.to_packbits()).unwrap();
        let file = CodeFile::open(&p).unwrap();
        assert_eq!((file.len(), file.bits(), file.is_zero_copy()), (n, bits, zero_copy));
        let v = file.view();
        for i in 0..n {
            for j in 0..n {
                assert_eq!(
                    hamming_distance(v.row(i), v.row(j)),
                    hamming_distance(codes.row(i), codes.row(j))
                );
            }
        }
    }
}

#[test]
fn labels_from_multi_hot_and_any_integer_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mh.npy");
    npy::write_npy(&p, DType::U8, &[2, 3], &[1, 0, 1, 0, 0, 0]).unwrap();
    let l = npy::read_labels(&p, None).unwrap();
    assert_eq!((l.len(), l.classes()), (2, 3));
    assert!(l.has(0, 0) && l.has(0, 2) && !l.has(1, 0));
    for (dtype, bytes) in [
        (DType::U8, vec![2u8, 0, 1]),
        (DType::I16, [2i16, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect()),
        (DType::I32, [2i32, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect()),
        (DType::I64, [2i64, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect()),
        (DType::U64, [2u64, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect()),
    ] {
        let p = dir.path().join(format!("ids-{dtype}.npy").replace(['<', '|'], ""));
        npy::write_npy(&p, dtype, &[3], &bytes).unwrap();
        let l = npy::read_labels(&p, None).unwrap();
        assert_eq!((l.len(), l.classes()), (3, 3), "{dtype}");
        assert!(l.has(0, 2) && l.has(1, 0) && l.has(2, 1), "{dtype}");
        assert_eq!(npy::read_labels(&p, Some(10)).unwrap().classes(), 10);
    }
    // Float labels (pandas, MATLAB): integral values read as the integers they are.
    let p = dir.path().join("float-ids.npy");
    let f64s = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    npy::write_npy(&p, DType::F64, &[3], &f64s(&[2.0, 0.0, 1.0])).unwrap();
    let l = npy::read_labels(&p, None).unwrap();
    assert!(l.classes() == 3 && l.has(0, 2) && l.has(1, 0) && l.has(2, 1));
    let p = dir.path().join("float-hot.npy");
    npy::write_npy(
        &p,
        DType::F32,
        &[2, 2],
        &[1.0f32, 0.0, 1.0, 1.0].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
    )
    .unwrap();
    let l = npy::read_labels(&p, None).unwrap();
    assert!(l.classes() == 2 && l.has(0, 0) && !l.has(0, 1) && l.has(1, 0) && l.has(1, 1));
    // (N, 1) is a column of class ids, as in the npz loader.
    let p = dir.path().join("column.npy");
    npy::write_i64(&p, &[3, 1], &[2, 0, 1]).unwrap();
    assert_eq!(npy::read_labels(&p, None).unwrap().classes(), 3);
    let p = dir.path().join("half.npy");
    npy::write_npy(&p, DType::F64, &[2], &f64s(&[1.0, 0.5])).unwrap();
    let err = npy::read_labels(&p, None).unwrap_err().to_string();
    assert!(
        err.contains("half.npy") && err.contains("class id 0.5 at row 1 is not a non-negative integer"),
        "{err}"
    );
    let p = dir.path().join("neg.npy");
    npy::write_npy(
        &p,
        DType::I32,
        &[2],
        &[1i32, -4].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
    )
    .unwrap();
    let err = npy::read_labels(&p, None).unwrap_err();
    assert!(matches!(err, NpyError::Value { .. }) && err.to_string().contains("-4"), "{err}");
    // One stray huge id would make every row a bit set of that many bits.
    let p = dir.path().join("huge.npy");
    npy::write_i64(&p, &[3], &[0, 2_000_000, 1]).unwrap();
    let err = npy::read_labels(&p, None).unwrap_err().to_string();
    assert!(err.contains("huge.npy") && err.contains("class id 2000000 at row 1"), "{err}");
    npy::write_i64(&p, &[2], &[0, (1 << 20) - 1]).unwrap();
    assert_eq!(npy::read_labels(&p, None).unwrap().classes(), 1 << 20);
}

#[test]
fn every_bad_file_is_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    type Case = (&'static str, Box<dyn Fn(&Path)>, fn(&NpyError) -> bool);
    let cases: Vec<Case> = vec![
        ("magic.npy", Box::new(|p| std::fs::write(p, b"PK\x03\x04 this is a zip file").unwrap()), |e| {
            matches!(e, NpyError::BadMagic { .. })
        }),
        ("tiny.npy", Box::new(|p| std::fs::write(p, b"\x93NU").unwrap()), |e| {
            matches!(e, NpyError::BadMagic { .. })
        }),
        (
            "version.npy",
            Box::new(|p| {
                let mut b = npy::npy_bytes(DType::U8, &[1, 1], &[0]);
                b[6] = 4;
                std::fs::write(p, b).unwrap()
            }),
            |e| matches!(e, NpyError::Version { major: 4, .. }),
        ),
        (
            "truncated.npy",
            Box::new(|p| {
                let b = npy::npy_bytes(DType::U8, &[4, 8], &[7; 32]);
                std::fs::write(p, &b[..b.len() - 5]).unwrap()
            }),
            |e| {
                matches!(e, NpyError::Truncated { expected: 32, actual: 27, .. })
                    && e.to_string().contains("truncated or corrupt file")
            },
        ),
        (
            "trailing.npy",
            Box::new(|p| {
                let mut b = npy::npy_bytes(DType::U8, &[4, 8], &[7; 32]);
                b.extend_from_slice(&[0; 8]);
                std::fs::write(p, b).unwrap()
            }),
            |e| {
                matches!(e, NpyError::Truncated { expected: 32, actual: 40, .. })
                    && e.to_string().contains("bytes after the array's data")
            },
        ),
        (
            "header-cut.npy",
            Box::new(|p| {
                let b = npy::npy_bytes(DType::U8, &[4, 8], &[7; 32]);
                std::fs::write(p, &b[..40]).unwrap()
            }),
            |e| matches!(e, NpyError::Header { .. }),
        ),
        ("float.npy", Box::new(|p| npy::write_npy(p, DType::F32, &[2, 1], &[0; 8]).unwrap()), |e| {
            matches!(e, NpyError::DType { .. })
        }),
        (
            "bigendian.npy",
            Box::new(|p| raw_npy(p, 1, "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", &[0; 8])),
            |e| matches!(e, NpyError::DType { .. }),
        ),
        ("rank.npy", Box::new(|p| npy::write_npy(p, DType::U8, &[2, 2, 2], &[0; 8]).unwrap()), |e| {
            matches!(e, NpyError::Rank { .. })
        }),
        (
            "nodescr.npy",
            Box::new(|p| raw_npy(p, 1, "{'fortran_order': False, 'shape': (1,), }", &[0])),
            |e| matches!(e, NpyError::Header { .. }),
        ),
    ];
    for (name, make, check) in &cases {
        let p = path(name);
        make(&p);
        let err = CodeFile::open(&p).unwrap_err();
        assert!(check(&err), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{name}: message does not name the file: {err}");
    }
    let err = CodeFile::open(path("missing.npy")).unwrap_err();
    assert!(matches!(err, NpyError::Io { .. }) && err.to_string().contains("missing.npy"), "{err}");
    // The OS error is the source, not repeated in the message (the CLI prints the chain).
    assert!(std::error::Error::source(&err).is_some() && !err.to_string().contains("os error"), "{err}");
    // 1-D uint8 is fine for labels but not for codes.
    let p = path("flat.npy");
    npy::write_npy(&p, DType::U8, &[4], &[0; 4]).unwrap();
    assert!(matches!(CodeFile::open(&p), Err(NpyError::Rank { .. })));
}

#[test]
fn fortran_order_codes_and_labels_read_as_their_c_order_copies() {
    // The shared reader's rule: Fortran order is transposed, never refused.
    let dir = tempfile::tempdir().unwrap();
    let (n, row_bytes) = (5, 8);
    let c: Vec<u8> = (0..n * row_bytes).map(|k| (k * 37 % 251) as u8).collect();
    let fortran: Vec<u8> = (0..n * row_bytes).map(|k| c[(k % n) * row_bytes + k / n]).collect();
    let pc = dir.path().join("c.npy");
    npy::write_npy(&pc, DType::U8, &[n, row_bytes], &c).unwrap();
    let pf = dir.path().join("f.npy");
    raw_npy(&pf, 1, "{'descr': '|u1', 'fortran_order': True, 'shape': (5, 8), }", &fortran);
    let (a, b) = (CodeFile::open(&pc).unwrap(), CodeFile::open(&pf).unwrap());
    assert!(a.is_zero_copy() && !b.is_zero_copy());
    assert_eq!(a.view().as_words(), b.view().as_words());
    let pl = dir.path().join("fl.npy");
    // [[1, 0, 1], [0, 1, 0]] column-major.
    raw_npy(&pl, 1, "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }", &[1, 0, 0, 1, 1, 0]);
    let l = npy::read_labels(&pl, None).unwrap();
    assert!(l.has(0, 0) && !l.has(0, 1) && l.has(0, 2) && !l.has(1, 0) && l.has(1, 1) && !l.has(1, 2));
}
