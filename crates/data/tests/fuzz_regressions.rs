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
