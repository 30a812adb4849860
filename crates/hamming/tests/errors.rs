//! Error cases and metric string forms.

use seqmodal_hamming::{evaluate, Codes, HammingError, LabelSet, Metric};

#[test]
fn metric_display_from_str_round_trip() {
    let all = [
        (Metric::Map, "map"),
        (Metric::MapAt(100), "map@100"),
        (Metric::PrecisionAt(100), "p@100"),
        (Metric::PrecisionRadius(2), "p@r2"),
        (Metric::PrecisionRadius(0), "p@r0"),
    ];
    for (m, s) in all {
        assert_eq!(m.to_string(), s);
        assert_eq!(s.parse::<Metric>().unwrap(), m);
    }
    assert_eq!("MAP@5".parse::<Metric>().unwrap(), Metric::MapAt(5));
}

#[test]
fn bad_metric_strings_are_named_with_valid_forms() {
    for bad in
        ["map@", "p@x", "foo", "p@", "p@r", "p@0", "map@0", "map@-1", "p@+3", "p@r-1", " map", "map@1x", ""]
    {
        let err = bad.parse::<Metric>().unwrap_err();
        assert!(matches!(err, HammingError::BadMetric(ref s) if s == bad), "{bad:?}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("\"{bad}\"")), "message does not quote input: {msg}");
        for form in ["\"map\"", "\"map@K\"", "\"p@K\"", "\"p@rR\""] {
            assert!(msg.contains(form), "message lacks {form}: {msg}");
        }
    }
}

#[test]
fn shape_errors_name_both_shapes() {
    let err = Codes::from_signs(&[1.0; 30], 4, 8).unwrap_err();
    assert!(matches!(err, HammingError::Shape { rows: 4, cols: 8, expected: 32, actual: 30, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("(4, 8)") && msg.contains("32") && msg.contains("30"), "{msg}");
    // packbits: 10 bits -> 2 bytes per row, 3 rows need 6.
    let err = Codes::from_packbits(&[0; 5], 3, 10).unwrap_err();
    assert!(matches!(err, HammingError::Shape { rows: 3, cols: 2, expected: 6, actual: 5, .. }), "{err:?}");
    let err = Codes::from_bools(&[true; 3], 2, 2).unwrap_err();
    assert!(matches!(err, HammingError::Shape { .. }), "{err:?}");
    let err = LabelSet::from_multi_hot(&[0; 7], 2, 4).unwrap_err();
    assert!(matches!(err, HammingError::Shape { rows: 2, cols: 4, .. }), "{err:?}");
    // Overflowing shape is an error, not a wrap-around.
    let err = Codes::from_bools(&[], usize::MAX, 2).unwrap_err();
    assert!(matches!(err, HammingError::Shape { .. }), "{err:?}");
}

#[test]
fn zero_bits_and_classes_rejected() {
    assert!(matches!(Codes::from_signs(&[], 0, 0), Err(HammingError::ZeroBits)));
    assert!(matches!(Codes::from_bools(&[], 3, 0), Err(HammingError::ZeroBits)));
    assert!(matches!(Codes::from_packbits(&[], 0, 0), Err(HammingError::ZeroBits)));
    assert!(matches!(LabelSet::from_class_ids(&[], 0), Err(HammingError::ZeroClasses)));
    assert!(matches!(LabelSet::from_multi_hot(&[], 2, 0), Err(HammingError::ZeroClasses)));
}

#[test]
fn class_id_out_of_range() {
    let err = LabelSet::from_class_ids(&[0, 3, 4], 4).unwrap_err();
    assert!(matches!(err, HammingError::ClassIdOutOfRange { id: 4, row: 2, classes: 4 }), "{err:?}");
}

fn codes(n: usize, bits: usize) -> Codes {
    Codes::from_bools(&vec![false; n * bits], n, bits).unwrap()
}

#[test]
fn evaluate_rejects_inconsistent_inputs() {
    let l2 = LabelSet::from_class_ids(&[0, 1], 3).unwrap();
    let l3 = LabelSet::from_class_ids(&[0, 1, 2], 3).unwrap();
    let m = [Metric::Map];

    let err = evaluate(&codes(2, 16), &l2, &codes(3, 17), &l3, &m).unwrap_err();
    assert!(matches!(err, HammingError::BitsMismatch { query: 16, database: 17 }), "{err:?}");
    assert!(err.to_string().contains("16") && err.to_string().contains("17"));

    let other = LabelSet::from_class_ids(&[0, 1, 2], 5).unwrap();
    let err = evaluate(&codes(2, 16), &l2, &codes(3, 16), &other, &m).unwrap_err();
    assert!(matches!(err, HammingError::ClassMismatch { query: 3, database: 5 }), "{err:?}");

    let err = evaluate(&codes(3, 16), &l2, &codes(3, 16), &l3, &m).unwrap_err();
    assert!(matches!(err, HammingError::RowMismatch { side: "queries", codes: 3, labels: 2 }), "{err:?}");

    let err = evaluate(&codes(2, 16), &l2, &codes(4, 16), &l3, &m).unwrap_err();
    assert!(matches!(err, HammingError::RowMismatch { side: "database", codes: 4, labels: 3 }), "{err:?}");
}
