//! `Dataset::validation_split`: queries and training rows drawn from the training split only,
//! disjoint, seeded, the same rows on aligned data, and clear errors for bad fractions.

use seqmodal_data::{DataError, Dataset, Labels, Matrix, Modality, Split};

/// A split whose row i has every feature equal to `base + i`, so a row's origin is readable.
fn split(rows: usize, base: f32) -> Split {
    let cols = 2;
    let data = (0..rows).flat_map(|i| [base + i as f32; 2]).collect();
    let ids: Vec<usize> = (0..rows).map(|i| i % 3).collect();
    Split {
        features: Matrix::new(rows, cols, data).unwrap(),
        labels: Labels::from_class_ids(&ids, 3).unwrap(),
    }
}

/// Two modalities: training rows 0..train (values 0..), test rows (values 1000..).
fn dataset(aligned: bool, train: [usize; 2]) -> Dataset {
    Dataset {
        name: "toy".into(),
        class_names: vec!["a".into(), "b".into(), "c".into()],
        modalities: vec![
            Modality::new("x", split(train[0], 0.0), split(7, 1000.0)),
            Modality::new("y", split(train[1], 0.0), split(7, 1000.0)),
        ],
        aligned,
    }
}

/// Original training-row ids of a split (its first feature).
fn ids(s: &Split) -> Vec<usize> {
    (0..s.features.rows()).map(|i| s.features.row(i)[0] as usize).collect()
}

#[test]
fn queries_and_training_rows_partition_the_training_split() {
    let mut ds = dataset(false, [50, 40]);
    ds.validation_split(0.2, 3).unwrap();
    for (m, n) in ds.modalities.iter().zip([50usize, 40]) {
        let q = ids(&m.test);
        let t = ids(&m.train);
        assert_eq!(q.len(), (n as f64 * 0.2).round() as usize);
        assert_eq!(q.len() + t.len(), n);
        // Disjoint and together every training row once; no test row (>= 1000) anywhere.
        let mut all: Vec<usize> = q.iter().chain(&t).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        assert!(q.iter().all(|r| !t.contains(r)));
        // The database is the remaining training rows.
        assert!(m.database.is_none());
        assert_eq!(ids(m.database()), t);
        // Labels moved with their rows.
        for (i, &r) in q.iter().enumerate() {
            assert!(m.test.labels.has(i, r % 3));
        }
    }
    ds.validate().unwrap();
}

#[test]
fn the_draw_is_seeded() {
    let draw = |seed| {
        let mut ds = dataset(false, [50, 50]);
        ds.validation_split(0.3, seed).unwrap();
        ds.modalities.iter().map(|m| ids(&m.test)).collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
    // Not aligned: each modality has its own draw.
    let d = draw(1);
    assert_ne!(d[0], d[1]);
}

#[test]
fn aligned_datasets_draw_the_same_rows_for_every_modality() {
    let mut ds = dataset(true, [60, 60]);
    ds.validation_split(0.25, 9).unwrap();
    assert_eq!(ids(&ds.modalities[0].test), ids(&ds.modalities[1].test));
    assert_eq!(ids(&ds.modalities[0].train), ids(&ds.modalities[1].train));
    let mut bad = dataset(true, [60, 59]);
    let e = bad.validation_split(0.25, 9).unwrap_err().to_string();
    assert!(e.starts_with("dataset.validation: ") && e.contains("aligned"), "{e}");
}

#[test]
fn a_database_larger_than_training_is_dropped() {
    // Training subsampled from the database: validation still uses training rows only.
    let mut ds = dataset(false, [30, 30]);
    ds.modalities[0].database = Some(split(80, 0.0));
    ds.validation_split(0.5, 1).unwrap();
    let m = &ds.modalities[0];
    assert!(m.database.is_none());
    assert_eq!(m.test.features.rows() + m.train.features.rows(), 30);
}

#[test]
fn bad_fractions_are_errors() {
    for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let e = dataset(false, [10, 10]).validation_split(f, 1).unwrap_err();
        assert!(matches!(&e, DataError::Setting { key, .. } if key == "validation"), "{e}");
        assert!(e.to_string().contains("fraction in (0, 1)"), "{e}");
    }
    // Rounds to no query (0.01 of 10) or to no training row (0.99 of 10).
    for f in [0.01, 0.99] {
        let e = dataset(false, [10, 10]).validation_split(f, 1).unwrap_err().to_string();
        assert!(e.contains("both must be at least 1") && e.contains("'x'"), "{e}");
    }
}
