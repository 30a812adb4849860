//! Loader tests for the npz, mat73 and xmedia formats on the fixtures written by
//! `scripts/make-fixtures.py` in the published layouts. Every feature value there is a
//! formula of its (sample, column) position, so reads are checked element by element.

use std::path::{Path, PathBuf};

use seqmodal_data::{
    load, load_mat73, load_npz, load_with, load_xmedia, DataError, DatasetKind, LoadOptions,
};
use seqmodal_data::{Dataset, Labels, Matrix, Split};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixtures' feature formula: row i, column j = base + i + j / 100.
fn feat(base: f64, i: usize, j: usize) -> f32 {
    (base + i as f64 + j as f64 / 100.0) as f32
}

/// The fixtures' multi-hot formula: class (i + shift) % c, plus the next one for even i.
fn multi_hot(i: usize, c: usize, shift: usize) -> Vec<u8> {
    let mut v = vec![0u8; c];
    v[(i + shift) % c] = 1;
    if i.is_multiple_of(2) {
        v[(i + shift + 1) % c] = 1;
    }
    v
}

/// Asserts row r of `m` is source sample `i` of the formula with `base`.
fn assert_row(m: &Matrix, r: usize, base: f64, i: usize, what: &str) {
    for (j, &v) in m.row(r).iter().enumerate() {
        let want = feat(base, i, j);
        assert!((v - want).abs() < 1e-3, "{what}: row {r} col {j} = {v}, want {want} (sample {i})");
    }
}

fn opts(queries: Option<usize>, train: Option<usize>, seed: u64) -> LoadOptions {
    LoadOptions { queries, train, seed }
}

fn shape(m: &Matrix) -> (usize, usize) {
    (m.rows(), m.cols())
}

fn same_content(a: &Dataset, b: &Dataset) {
    assert_eq!(a.class_names, b.class_names);
    assert_eq!(a.aligned, b.aligned);
    assert_eq!(a.modalities, b.modalities);
}

// ------------------------------------------------------------------------------ npz

#[test]
fn npz_stored_values_shapes_and_labels() {
    let ds = load_npz(&fixtures().join("npz/aligned.npz")).unwrap();
    assert_eq!(ds.name, "aligned");
    assert_eq!(ds.modality_names(), ["image", "text"]);
    assert_eq!(ds.classes(), 5);
    assert!(ds.aligned);
    let img = ds.modality("image").unwrap();
    let txt = ds.modality("text").unwrap();
    assert_eq!(shape(&img.train.features), (6, 4));
    assert_eq!(shape(&img.test.features), (3, 4));
    assert_eq!(shape(&txt.train.features), (6, 3));
    assert_eq!(shape(&txt.test.features), (3, 3));
    for i in 0..6 {
        assert_row(&img.train.features, i, 0.0, i, "image_train");
        assert_row(&txt.train.features, i, 1000.0, i, "text_train");
        assert_eq!(img.train.labels.row(i), multi_hot(i, 5, 0).as_slice());
    }
    for i in 0..3 {
        assert_row(&img.test.features, i, 100.0, i, "image_test");
        assert_row(&txt.test.features, i, 2000.0, i, "text_test");
        assert_eq!(txt.test.labels.row(i), multi_hot(i, 5, 2).as_slice());
    }
}

#[test]
fn npz_compressed_fortran_and_bool_read_the_same() {
    let stored = load_npz(&fixtures().join("npz/aligned.npz")).unwrap();
    let deflated = load(DatasetKind::Npz, &fixtures().join("npz/compressed.npz")).unwrap();
    same_content(&stored, &deflated);
    // A directory is read through its dataset.npz and named after the directory.
    let dir = load(DatasetKind::Npz, &fixtures().join("npz/dir")).unwrap();
    assert_eq!(dir.name, "dir");
    same_content(&stored, &dir);
}

#[test]
fn npz_unaligned_per_modality_ids_and_multi_hot() {
    let ds = load_npz(&fixtures().join("npz/unaligned.npz")).unwrap();
    assert_eq!(ds.modality_names(), ["audio", "video"]);
    assert!(!ds.aligned);
    assert_eq!(ds.classes(), 4);
    let audio = ds.modality("audio").unwrap();
    let video = ds.modality("video").unwrap();
    assert_eq!((audio.train.features.rows(), video.train.features.rows()), (5, 7));
    let ids = [0, 1, 2, 3, 0];
    for (i, &c) in ids.iter().enumerate() {
        assert_eq!(audio.train.labels.classes_of(i).collect::<Vec<_>>(), [c]);
    }
    assert_eq!(audio.test.labels, Labels::from_class_ids(&[3, 1], 4).unwrap());
    for i in 0..4 {
        assert_eq!(video.test.labels.row(i), multi_hot(i, 4, 1).as_slice());
        assert_row(&video.test.features, i, 60.0, i, "video_test");
    }
}

#[test]
fn npz_errors_name_file_and_array() {
    let err = load_npz(&fixtures().join("npz/no-labels.npz")).unwrap_err().to_string();
    assert!(
        err.contains("no-labels.npz") && err.contains("image_labels_train") && err.contains("labels_train"),
        "{err}"
    );

    let err = load_npz(&fixtures().join("npz/nan.npz")).unwrap_err();
    assert!(matches!(err, DataError::NonFinite { row: 4, col: 2, .. }), "{err}");
    let err = err.to_string();
    assert!(err.contains("nan.npz: image_train"), "{err}");

    let err = load_npz(&fixtures().join("npz/wrong-width.npz")).unwrap_err().to_string();
    assert!(
        err.contains("wrong-width.npz") && err.contains("image_test") && err.contains("5 feature columns"),
        "{err}"
    );

    let err = load(DatasetKind::Npz, Path::new("/nonexistent/x.npz")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/x.npz") && err.contains("datasets/README.md"), "{err}");

    // A truncated archive (the zip directory sits at the end) is named.
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("npz/aligned.npz")).unwrap();
    let cut = tmp.path().join("cut.npz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_npz(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.npz") && err.contains("not a readable .npz"), "{err}");
}

// ------------------------------------------------------------------------------ mat73

/// The source sample of a row of IAll-derived features: column 0 holds the sample index.
fn sample_of(m: &Matrix, r: usize) -> usize {
    m.row(r)[0].round() as usize
}

#[test]
fn mat73_all_layout_transposed_values_and_split() {
    let ds = load_mat73(&fixtures().join("mat73/all.mat"), &opts(Some(3), None, 7)).unwrap();
    assert_eq!(ds.modality_names(), ["image", "text"]);
    assert_eq!(ds.classes(), 3);
    assert!(ds.aligned);
    let img = ds.modality("image").unwrap();
    let txt = ds.modality("text").unwrap();
    assert_eq!(shape(&img.train.features), (9, 4));
    assert_eq!(shape(&img.test.features), (3, 4));
    assert_eq!(shape(&txt.train.features), (9, 6));
    let mut seen = Vec::new();
    for split in [&img.train, &img.test] {
        for r in 0..split.features.rows() {
            // Every element of the MATLAB 12x4 matrix stored as HDF5 (4, 12), gzip-chunked.
            let i = sample_of(&split.features, r);
            assert_row(&split.features, r, 0.0, i, "IAll");
            assert_eq!(split.labels.row(r), multi_hot(i, 3, 0).as_slice(), "LAll sample {i}");
            seen.push(i);
        }
    }
    // Rows keep file order within a split; the two splits partition the 12 samples.
    assert!(seen[..9].windows(2).all(|w| w[0] < w[1]) && seen[9..].windows(2).all(|w| w[0] < w[1]));
    seen.sort_unstable();
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    // Text row of sample i: tags are 1 exactly for odd i (see make-fixtures.py).
    for r in 0..9 {
        let i = sample_of(&img.train.features, r);
        assert!(txt.train.features.row(r).iter().all(|&v| v == (i % 2) as f32), "YAll sample {i}");
    }
    // The seed decides the queries; the same seed repeats them.
    let again = load_mat73(&fixtures().join("mat73/all.mat"), &opts(Some(3), None, 7)).unwrap();
    assert_eq!(again, ds);
    let queries = |seed| {
        let d = load_mat73(&fixtures().join("mat73/all.mat"), &opts(Some(3), None, seed)).unwrap();
        let t = &d.modality("image").unwrap().test.features;
        (0..3).map(|r| sample_of(t, r)).collect::<Vec<_>>()
    };
    assert!((0..4).any(|s| queries(s) != queries(7)));
    // Without `train` the training split is the database.
    assert!(img.database.is_none() && img.database() == &img.train);
}

/// Source samples of every row of an IAll-derived split.
fn samples(split: &Split) -> Vec<usize> {
    (0..split.features.rows()).map(|r| sample_of(&split.features, r)).collect()
}

#[test]
fn mat73_queries_database_and_training_subset() {
    let path = fixtures().join("mat73/all.mat");
    let full = load_mat73(&path, &opts(Some(3), None, 7)).unwrap();
    let ds = load_mat73(&path, &opts(Some(3), Some(5), 7)).unwrap();
    ds.validate().unwrap();
    for m in &ds.modalities {
        // Exact row counts: 3 queries, the other 9 samples the database, 5 of them training.
        assert_eq!(m.test.features.rows(), 3, "{}", m.name);
        assert_eq!(m.database().features.rows(), 9, "{}", m.name);
        assert_eq!(m.train.features.rows(), 5, "{}", m.name);
        // `train` does not move the queries or shrink the database.
        let f = full.modality(&m.name).unwrap();
        assert_eq!(&m.test, &f.test);
        assert_eq!(m.database(), &f.train);
    }
    let img = ds.modality("image").unwrap();
    let (q, db, tr) = (samples(&img.test), samples(img.database()), samples(&img.train));
    // Queries and database partition the file; the training rows are database rows, in
    // file order, each with its own labels and the text row of the same sample.
    let mut all = [q.clone(), db.clone()].concat();
    all.sort_unstable();
    assert_eq!(all, (0..12).collect::<Vec<_>>());
    assert!(tr.iter().all(|i| db.contains(i)) && tr.windows(2).all(|w| w[0] < w[1]), "{tr:?} in {db:?}");
    let txt = ds.modality("text").unwrap();
    for (r, &i) in tr.iter().enumerate() {
        assert_row(&img.train.features, r, 0.0, i, "IAll training row");
        assert_eq!(img.train.labels.row(r), multi_hot(i, 3, 0).as_slice());
        assert_eq!(txt.train.labels.row(r), multi_hot(i, 3, 0).as_slice());
        assert!(txt.train.features.row(r).iter().all(|&v| v == (i % 2) as f32), "YAll sample {i}");
    }
    // Deterministic per seed; another seed draws other training rows.
    assert_eq!(load_mat73(&path, &opts(Some(3), Some(5), 7)).unwrap(), ds);
    let training =
        |seed| samples(&load_mat73(&path, &opts(Some(3), Some(5), seed)).unwrap().modalities[0].train);
    assert!((0..4).any(|s| training(s) != tr));
    // train = the whole database keeps one split.
    let same = load_mat73(&path, &opts(Some(3), Some(9), 7)).unwrap();
    assert_eq!(same, full);
    // Standardising uses the training rows' statistics for all three splits, so a training
    // row and its database row stay equal.
    let mut std = ds.clone();
    std.standardize();
    let m = &std.modalities[0];
    for (r, i) in tr.iter().enumerate() {
        let d = db.iter().position(|j| j == i).unwrap();
        assert_eq!(m.train.features.row(r), m.database().features.row(d));
    }
    let mean0: f32 = (0..5).map(|r| m.train.features.row(r)[0]).sum::<f32>() / 5.0;
    assert!(mean0.abs() < 1e-5, "training mean {mean0}");
}

#[test]
fn training_subset_of_any_kind_keeps_aligned_rows_together() {
    // npz, aligned: image and text keep the same rows.
    let o = opts(None, Some(4), 3);
    let ds = load_with(DatasetKind::Npz, &fixtures().join("npz/aligned.npz"), &o).unwrap();
    let (img, txt) = (ds.modality("image").unwrap(), ds.modality("text").unwrap());
    assert_eq!(
        (img.train.features.rows(), img.database().features.rows(), img.test.features.rows()),
        (4, 6, 3)
    );
    for r in 0..4 {
        // Row i of image_train holds i + j/100, of text_train 1000 + i + j/100.
        let i = img.train.features.row(r)[0].round() as usize;
        assert_eq!(txt.train.features.row(r)[0].round() as usize, 1000 + i);
        assert_eq!(img.train.labels.row(r), multi_hot(i, 5, 0).as_slice());
    }
    // Unaligned modalities of different sizes: too many rows for one is an error naming it.
    let err = load_with(DatasetKind::Npz, &fixtures().join("npz/unaligned.npz"), &opts(None, Some(6), 0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dataset.train") && err.contains("'audio'") && err.contains("5 database rows"),
        "{err}"
    );
    // `queries` belongs to files without their own split.
    let err = load_with(DatasetKind::Npz, &fixtures().join("npz/aligned.npz"), &opts(Some(2), None, 0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("dataset.queries"), "{err}");
}

#[test]
fn mat73_image_stack_is_flattened_per_sample() {
    let ds = load_mat73(&fixtures().join("mat73/images.mat"), &opts(Some(2), None, 0)).unwrap();
    let img = ds.modality("image").unwrap();
    assert_eq!(img.dim(), 12);
    // MATLAB 2x2x3x12 uint8, element (a, b, c, i) = (a + 2b + 4c + 12i) % 251; sample i's
    // row is its 12 pixels in HDF5 (c, b, a) order, i.e. flat offsets 12i + k.
    let labels_rows: Vec<usize> = (0..12).collect();
    for split in [&img.train, &img.test] {
        for r in 0..split.features.rows() {
            let row = split.features.row(r);
            let i = labels_rows.iter().copied().find(|&i| row[0] == ((12 * i) % 251) as f32).unwrap();
            for (k, &v) in row.iter().enumerate() {
                assert_eq!(v, ((12 * i + k) % 251) as f32, "sample {i} pixel {k}");
            }
            assert_eq!(split.labels.row(r), multi_hot(i, 3, 0).as_slice());
        }
    }
}

#[test]
fn mat73_split_layout_either_orientation_and_subsample() {
    let path = fixtures().join("mat73/split.mat");
    let ds = load_with(DatasetKind::Mat73, &path, &LoadOptions::default()).unwrap();
    let img = ds.modality("image").unwrap();
    let txt = ds.modality("text").unwrap();
    assert_eq!(shape(&img.train.features), (8, 6));
    assert_eq!(shape(&txt.test.features), (4, 5));
    for i in 0..8 {
        assert_row(&img.train.features, i, 0.0, i, "I_tr");
        assert_row(&txt.train.features, i, 300.0, i, "T_tr");
        assert_eq!(img.train.labels.row(i), multi_hot(i, 3, 0).as_slice());
    }
    for i in 0..4 {
        // I_te is stored samples-first (not transposed) in the fixture.
        assert_row(&img.test.features, i, 200.0, i, "I_te");
        assert_row(&txt.test.features, i, 400.0, i, "T_te");
        assert_eq!(txt.test.labels.row(i), multi_hot(i, 3, 1).as_slice());
    }
    let sub = load_mat73(&path, &opts(None, Some(3), 1)).unwrap();
    let tr = &sub.modality("image").unwrap().train;
    assert_eq!(tr.features.rows(), 3);
    // The database stays the whole of I_tr.
    assert_eq!(sub.modality("image").unwrap().database(), &img.train);
    for r in 0..3 {
        let i = sample_of(&tr.features, r);
        assert_row(&tr.features, r, 0.0, i, "I_tr subsample");
        assert_eq!(tr.labels.row(r), multi_hot(i, 3, 0).as_slice());
    }
    let err = load_mat73(&path, &opts(Some(2), None, 0)).unwrap_err().to_string();
    assert!(err.contains("dataset.queries") && err.contains("I_te"), "{err}");
    let err = load_mat73(&path, &opts(None, Some(9), 0)).unwrap_err().to_string();
    assert!(err.contains("dataset.train") && err.contains("8 database rows"), "{err}");
}

#[test]
fn mat73_label_columns_of_class_ids_and_signed_labels() {
    // L_tr holds 1-based ids 1, 2, 3, 1, ... (one column); L_te only ids 1 and 2, yet both
    // splits share the 3-class label space. Read as multi-hot they were one class, all set.
    let ds = load_mat73(&fixtures().join("mat73/ids.mat"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.classes(), 3);
    let img = ds.modality("image").unwrap();
    for i in 0..8 {
        let mut want = [0u8; 3];
        want[i % 3] = 1;
        assert_eq!(img.train.labels.row(i), want.as_slice(), "L_tr row {i}");
    }
    let te: Vec<&[u8]> = (0..4).map(|i| img.test.labels.row(i)).collect();
    assert_eq!(te, [[0u8, 1, 0].as_slice(), &[1, 0, 0], &[0, 1, 0], &[1, 0, 0]]);
    // A -1/+1 coding would read as every label set: an error naming the variable.
    let err =
        load_mat73(&fixtures().join("mat73/signed.mat"), &opts(Some(3), None, 0)).unwrap_err().to_string();
    assert!(err.contains("signed.mat") && err.contains("LAll") && err.contains("label value -1"), "{err}");
}

#[test]
fn mat73_directory_of_v73_and_v5_parts_equals_one_file() {
    let one = load_mat73(&fixtures().join("mat73/all.mat"), &opts(Some(3), None, 5)).unwrap();
    let parts = load_mat73(&fixtures().join("mat73/parts"), &opts(Some(3), None, 5)).unwrap();
    same_content(&one, &parts);
}

#[test]
fn mat73_errors_name_file_and_variable() {
    let o = opts(Some(3), None, 0);
    let err = load_mat73(&fixtures().join("mat73/no-labels.mat"), &o).unwrap_err().to_string();
    assert!(err.contains("no-labels.mat") && err.contains("LAll") && err.contains("not found"), "{err}");

    let err = load_mat73(&fixtures().join("mat73/nan.mat"), &opts(Some(3), Some(9), 0)).unwrap_err();
    assert!(matches!(err, DataError::NonFinite { col: 1, .. }), "{err}");
    assert!(err.to_string().contains("nan.mat: IAll"), "{err}");

    let err = load_mat73(&fixtures().join("mat73/wrong-rows.mat"), &o).unwrap_err().to_string();
    assert!(
        err.contains("wrong-rows.mat") && err.contains("YAll is 11x6") && err.contains("LAll is 12x3"),
        "{err}"
    );

    let err = load_mat73(&fixtures().join("mat73/all.mat"), &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("dataset.queries") && err.contains("12 samples"), "{err}");
    let err =
        load_mat73(&fixtures().join("mat73/all.mat"), &opts(Some(3), Some(10), 0)).unwrap_err().to_string();
    assert!(err.contains("dataset.train") && err.contains("queries + train = 13 > 12"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("mat73/all.mat")).unwrap();
    let cut = tmp.path().join("cut.mat");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = load_mat73(&cut, &o).unwrap_err().to_string();
    assert!(err.contains("cut.mat"), "{err}");

    let err = load(DatasetKind::Mat73, Path::new("/nonexistent/flickr.mat")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/flickr.mat") && err.contains("datasets/README.md"), "{err}");
}

// ------------------------------------------------------------------------------ xmedia

#[test]
fn xmedia_five_unaligned_modalities() {
    let ds = load_xmedia(&fixtures().join("xmedia")).unwrap();
    assert_eq!(ds.name, "xmedia");
    assert_eq!(ds.modality_names(), ["image", "text", "audio", "video", "3d"]);
    assert!(!ds.aligned);
    assert_eq!(ds.classes(), 4);
    // (dim, train rows, test rows) per modality, as written by make-fixtures.py.
    let sizes = [(4, 10, 5), (3, 10, 5), (2, 4, 2), (5, 3, 2), (2, 3, 2)];
    for (k, (m, &(d, ntr, nte))) in ds.modalities.iter().zip(&sizes).enumerate() {
        assert_eq!((m.dim(), m.train.features.rows(), m.test.features.rows()), (d, ntr, nte), "{}", m.name);
        for i in 0..ntr {
            assert_row(&m.train.features, i, 1000.0 * k as f64, i, &m.name);
            // 1-based ids i % 4 + 1 in the file, 0-based here.
            assert_eq!(m.train.labels.classes_of(i).collect::<Vec<_>>(), [i % 4], "{}", m.name);
        }
        for i in 0..nte {
            assert_row(&m.test.features, i, 1000.0 * k as f64 + 500.0, i, &m.name);
            assert_eq!(m.test.labels.classes_of(i).collect::<Vec<_>>(), [(i + 1) % 4], "{}", m.name);
        }
    }
}

#[test]
fn xmedia_pku_layout_reads_the_same_dataset() {
    // XMediaFeatures.mat in PKU's published names (I_tr_CNN, T_tr_BOW, A_tr, V_tr_CNN, d3_tr,
    // trImgCat, ...; one MAT v5 file) holding the same values as the per-prefix fixture;
    // the CNN/BOW features win over the classic I_tr/T_tr/V_tr ones (one column wider).
    let pku = load_xmedia(&fixtures().join("xmedia-pku")).unwrap();
    assert_eq!(pku, load_xmedia(&fixtures().join("xmedia")).unwrap());
    let file = load_xmedia(&fixtures().join("xmedia-pku/XMediaFeatures.mat")).unwrap();
    assert_eq!(file, pku);
}

#[test]
fn xmedia_missing_variable_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["img.mat", "txt.mat", "aud.mat", "3d.mat"] {
        std::fs::copy(fixtures().join("xmedia").join(f), tmp.path().join(f)).unwrap();
    }
    let err = load_xmedia(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("vid_train_lab") && err.contains("img.mat"), "{err}");
    let err = load(DatasetKind::Xmedia, Path::new("/nonexistent/xmedia")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/xmedia") && err.contains("datasets/README.md"), "{err}");
}
