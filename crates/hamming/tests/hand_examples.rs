//! Hand-computed examples: packbits layout, tie order, every metric on a tiny database.

use seqmodal_hamming::{evaluate, hamming_distance, rank, Codes, LabelSet, Metric};

fn bools(s: &str) -> Vec<bool> {
    s.chars().filter(|c| !c.is_whitespace()).map(|c| c == '1').collect()
}

#[test]
fn packbits_hand_example_10_bits() {
    // Row bits 1000000111: byte 0 = 1000_0001 = 0x81, byte 1 = 11 + six zero pad bits = 0xC0.
    let codes = Codes::from_bools(&bools("1000000111"), 1, 10).unwrap();
    assert_eq!(codes.to_packbits(), vec![0x81, 0xC0]);
    let back = Codes::from_packbits(&[0x81, 0xC0], 1, 10).unwrap();
    assert_eq!(back, codes);
    let expect = bools("1000000111");
    for (j, &b) in expect.iter().enumerate() {
        assert_eq!(back.bit(0, j), b, "bit {j}");
    }
    // Internal layout: bit j at word bit j, so bits 0, 7, 8, 9 set.
    assert_eq!(back.row(0), &[1 | 1 << 7 | 1 << 8 | 1 << 9]);
}

#[test]
fn packbits_padding_bits_are_ignored() {
    // 0xFF in the last byte has 6 padding bits set; they must not count in distances.
    let dirty = Codes::from_packbits(&[0x81, 0xFF], 1, 10).unwrap();
    let clean = Codes::from_packbits(&[0x81, 0xC0], 1, 10).unwrap();
    assert_eq!(dirty, clean);
    assert_eq!(dirty.to_packbits(), vec![0x81, 0xC0]);
}

#[test]
fn packbits_round_trip_many_widths() {
    for bits in [1usize, 7, 8, 9, 63, 64, 65, 127, 128, 130, 200] {
        let n = 5;
        let flat: Vec<bool> = (0..n * bits).map(|k| (k * 7 + k / 3) % 5 < 2).collect();
        let codes = Codes::from_bools(&flat, n, bits).unwrap();
        assert_eq!(codes.words_per_code(), bits.div_ceil(64));
        let bytes = codes.to_packbits();
        assert_eq!(bytes.len(), n * bits.div_ceil(8));
        let back = Codes::from_packbits(&bytes, n, bits).unwrap();
        assert_eq!(back, codes, "bits {bits}");
        for i in 0..n {
            for j in 0..bits {
                assert_eq!(back.bit(i, j), flat[i * bits + j]);
                // numpy.packbits layout: byte j/8, bit 7 - j%8 of row i.
                let byte = bytes[i * bits.div_ceil(8) + j / 8];
                assert_eq!(byte >> (7 - j % 8) & 1 == 1, flat[i * bits + j]);
            }
        }
    }
}

#[test]
fn from_signs_uses_strictly_positive() {
    let c = Codes::from_signs(&[0.5, 0.0, -0.0, -1.0, f32::NAN, 1e-30], 1, 6).unwrap();
    let got: Vec<bool> = (0..6).map(|j| c.bit(0, j)).collect();
    assert_eq!(got, vec![true, false, false, false, false, true]);
}

#[test]
fn select_gathers_rows_in_order() {
    let c = Codes::from_bools(&bools("100 010 001"), 3, 3).unwrap();
    let s = c.select(&[2, 0, 2]);
    assert_eq!(s.len(), 3);
    assert_eq!(s, Codes::from_bools(&bools("001 100 001"), 3, 3).unwrap());
    let l = LabelSet::from_class_ids(&[0, 1, 2], 3).unwrap();
    assert_eq!(l.select(&[2, 0]), LabelSet::from_class_ids(&[2, 0], 3).unwrap());
}

#[test]
fn hamming_distance_multi_word() {
    let a = [u64::MAX, 0, 0b1011];
    let b = [0, 0, 0b0001];
    assert_eq!(hamming_distance(&a, &b), 64 + 2);
}

#[test]
fn labels_relevance_and_has() {
    let a = LabelSet::from_multi_hot(&[1, 0, 0, 1, 0, 0, 0, 0, 0], 3, 3).unwrap();
    let b = LabelSet::from_class_ids(&[2, 1], 3).unwrap();
    assert!(a.has(0, 0) && !a.has(0, 1) && a.has(1, 0) && !a.has(2, 0));
    assert!(!a.relevant(0, &b, 0)); // {0} vs {2}
    assert!(!a.relevant(0, &b, 1)); // {0} vs {1}
    assert!(!a.relevant(2, &b, 0)); // {} vs {2}
    let c = LabelSet::from_class_ids(&[0], 3).unwrap();
    assert!(a.relevant(1, &c, 0)); // {0} vs {0}
                                   // Classes past the first word.
    let wide = LabelSet::from_class_ids(&[100, 64], 130).unwrap();
    assert!(wide.has(0, 100) && wide.has(1, 64) && !wide.has(0, 64));
    assert!(wide.relevant(0, &wide, 0) && !wide.relevant(0, &wide, 1));
}

#[test]
fn rank_breaks_ties_by_index() {
    // Query 0000; distances by index: 1, 0, 2, 1, 4, 0, 1.
    let db = Codes::from_bools(&bools("0001 0000 0011 1000 1111 0000 0100"), 7, 4).unwrap();
    let q = Codes::from_bools(&bools("0000"), 1, 4).unwrap();
    assert_eq!(rank(q.row(0), &db), vec![1, 5, 0, 3, 6, 2, 4]);
}

/// Query 0 (labels {0}) vs five 4-bit database items; query 1 (labels {3}) has no relevant item.
///
/// item  code  dist  labels  rel(q0)
/// d0    0001  1     {0}     yes
/// d1    0000  0     {1}     no
/// d2    0011  2     {0,2}   yes
/// d3    0001  1     {2}     no
/// d4    1111  4     {0,1}   yes
/// Ranking (ties by index): d1, d0, d3, d2, d4 -> relevance 0, 1, 0, 1, 1; R = 3.
fn tiny() -> (Codes, LabelSet, Codes, LabelSet) {
    let q = Codes::from_bools(&bools("0000 0000"), 2, 4).unwrap();
    let ql = LabelSet::from_multi_hot(&[1, 0, 0, 0, 0, 0, 0, 1], 2, 4).unwrap();
    let db = Codes::from_bools(&bools("0001 0000 0011 0001 1111"), 5, 4).unwrap();
    #[rustfmt::skip]
    let dl = LabelSet::from_multi_hot(&[
        1, 0, 0, 0,
        0, 1, 0, 0,
        1, 0, 1, 0,
        0, 0, 1, 0,
        1, 1, 0, 0,
    ], 5, 4).unwrap();
    (q, ql, db, dl)
}

#[test]
fn every_metric_on_tiny_example() {
    let (q, ql, db, dl) = tiny();
    assert_eq!(rank(q.row(0), &db), vec![1, 0, 3, 2, 4]);
    let cases: [(Metric, f64); 14] = [
        // Relevant at positions 2, 4, 5: (1/2 + 2/4 + 3/5) / 3 = 1.6 / 3.
        (Metric::Map, 1.6 / 3.0),
        // Top 1 = [0]: R_1 = 0 -> 0.
        (Metric::MapAt(1), 0.0),
        // Top 3 = [0,1,0]: R_3 = 1, sum = 1/2 -> 0.5.
        (Metric::MapAt(3), 0.5),
        // Top 4 = [0,1,0,1]: R_4 = 2, (1/2 + 2/4) / 2 = 0.5.
        (Metric::MapAt(4), 0.5),
        // k > N: whole ranking, same as Map.
        (Metric::MapAt(10), 1.6 / 3.0),
        (Metric::PrecisionAt(1), 0.0),
        (Metric::PrecisionAt(2), 0.5),
        (Metric::PrecisionAt(3), 1.0 / 3.0),
        // k = 10 > N = 5: divisor 5, 3 relevant.
        (Metric::PrecisionAt(10), 0.6),
        // Radius 0: {d1} -> 0/1.
        (Metric::PrecisionRadius(0), 0.0),
        // Radius 1: {d1, d0, d3} -> 1/3.
        (Metric::PrecisionRadius(1), 1.0 / 3.0),
        // Radius 2 and 3: {d1, d0, d3, d2} -> 2/4.
        (Metric::PrecisionRadius(2), 0.5),
        (Metric::PrecisionRadius(3), 0.5),
        // Radius 4 (and beyond): everything -> 3/5.
        (Metric::PrecisionRadius(9), 0.6),
    ];
    let metrics: Vec<Metric> = cases.iter().map(|c| c.0).collect();
    // Query 0 alone.
    let one = evaluate(&q.select(&[0]), &ql.select(&[0]), &db, &dl, &metrics).unwrap();
    // Both queries: query 1 has R = 0, scores 0 everywhere, and still counts -> half.
    let both = evaluate(&q, &ql, &db, &dl, &metrics).unwrap();
    for (((m, want), got1), got2) in cases.iter().zip(&one).zip(&both) {
        assert!((got1 - want).abs() < 1e-15, "{m}: got {got1}, want {want}");
        assert!((got2 - want / 2.0).abs() < 1e-15, "{m} (2 queries): got {got2}, want {}", want / 2.0);
    }
}

#[test]
fn radius_with_no_item_within_is_zero() {
    // Query 1111 vs database all 0000 (distance 4): nothing within radius 3.
    let q = Codes::from_bools(&bools("1111"), 1, 4).unwrap();
    let db = Codes::from_bools(&bools("0000 0000"), 2, 4).unwrap();
    let l = LabelSet::from_class_ids(&[0], 1).unwrap();
    let dl = LabelSet::from_class_ids(&[0, 0], 1).unwrap();
    let v = evaluate(&q, &l, &db, &dl, &[Metric::PrecisionRadius(3), Metric::PrecisionRadius(4)]).unwrap();
    assert_eq!(v, vec![0.0, 1.0]);
}

#[test]
fn empty_inputs() {
    let q = Codes::from_bools(&[], 0, 4).unwrap();
    let ql = LabelSet::from_class_ids(&[], 2).unwrap();
    let db = Codes::from_bools(&bools("0000"), 1, 4).unwrap();
    let dl = LabelSet::from_class_ids(&[1], 2).unwrap();
    assert!(q.is_empty() && ql.is_empty());
    // No queries: documented as 0.0 per metric.
    assert_eq!(evaluate(&q, &ql, &db, &dl, &[Metric::Map]).unwrap(), vec![0.0]);
    // No metrics: empty result.
    assert!(evaluate(&db, &dl, &db, &dl, &[]).unwrap().is_empty());
    // Empty database: rank is empty, every metric 0.
    assert!(rank(db.row(0), &q).is_empty());
    assert_eq!(evaluate(&db, &dl, &q, &ql, &[Metric::Map, Metric::PrecisionAt(3)]).unwrap(), vec![0.0, 0.0]);
}
