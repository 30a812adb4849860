//! Inputs the fuzzers found that once crashed a loader; each must now be a clean error.

use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz").join(name)
}

#[test]
fn npz_with_a_huge_class_id_is_an_error_not_an_allocation_failure() {
    // A class id near 2^41 made the loader allocate rows x (id + 1) bytes and abort.
    let p = fixture("huge-class-id.npz");
    let e = seqmodal_data::load_npz(&p).unwrap_err().to_string();
    assert!(e.contains("huge-class-id.npz"), "{e}");
}

#[test]
fn class_ids_are_checked_before_the_label_matrix_is_allocated() {
    let e = seqmodal_data::Labels::from_class_ids(&[0, 1 << 40], 3).unwrap_err().to_string();
    assert!(e.contains("class id 1099511627776 at row 1"), "{e}");
}

/// A `.npy` member: `descr` (e.g. `<f8`), `shape` as numpy writes it (e.g. `(3,)`), raw data.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// An uncompressed `.npz` of `members` (name without `.npy`, bytes) at `dir/name`.
fn npz(dir: &Path, name: &str, members: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (key, bytes) in members {
        w.start_file(format!("{key}.npy"), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap();
    path
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Two image rows of two features and their test counterpart: the members every case shares.
fn image_members() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("image_train", npy("<f8", "(6, 2)", &f64s(&[0.0; 12]))),
        ("image_test", npy("<f8", "(2, 2)", &f64s(&[0.0; 4]))),
        ("labels_test", npy("<f8", "(2,)", &f64s(&[0.0, 1.0]))),
    ]
}

#[test]
fn npz_header_announcing_more_data_than_its_member_is_an_error_not_an_abort() {
    // 10^12 labels announced, 48 bytes present: this allocated terabytes and aborted.
    let tmp = tempfile::tempdir().unwrap();
    let mut m = image_members();
    m.push(("labels_train", npy("<f8", "(1000000000000,)", &f64s(&[0.0; 6]))));
    let e = seqmodal_data::load_npz(&npz(tmp.path(), "huge.npz", &m)).unwrap_err().to_string();
    assert!(
        e.contains("huge.npz") && e.contains("labels_train") && e.contains("truncated or corrupt"),
        "{e}"
    );
    // A shape whose byte count overflows is named too.
    let mut m = image_members();
    m.push(("labels_train", npy("<f8", "(4294967296, 4294967296)", &f64s(&[0.0; 6]))));
    let e = seqmodal_data::load_npz(&npz(tmp.path(), "wrap.npz", &m)).unwrap_err().to_string();
    assert!(e.contains("wrap.npz") && e.contains("too large"), "{e}");
}

#[test]
fn npz_float_class_id_too_large_names_its_row() {
    // 1e300 saturated to usize::MAX and wrapped the class count to 0, blaming row 3.
    let tmp = tempfile::tempdir().unwrap();
    let mut m = image_members();
    m.push(("labels_train", npy("<f8", "(6,)", &f64s(&[0.0, 1.0, 2.0, 3.0, 4.0, 1e300]))));
    let e = seqmodal_data::load_npz(&npz(tmp.path(), "big-id.npz", &m)).unwrap_err().to_string();
    assert!(e.contains("big-id.npz") && e.contains("at row 5") && e.contains("too large"), "{e}");
}

#[test]
fn class_ids_beyond_the_supported_label_space_are_an_error() {
    // mfeat and xmedia size the label space from their largest id: 10^11 aborted the process.
    let e = seqmodal_data::Labels::from_class_ids(&[3, 100_000_000_000, 1], 100_000_000_001).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("class id 100000000000 at row 1") && e.contains("at most 65536"), "{e}");
    assert!(seqmodal_data::Labels::from_class_ids(&[65_535], 65_536).is_ok());
}
