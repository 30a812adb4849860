//! Loader tests on the real datasets shipped in `datasets/`, and on broken copies of them.

use std::path::{Path, PathBuf};

use seqmodal_data::{load, load_mfeat, load_wiki, DataError, DatasetKind};

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets")
}

fn class_counts(labels: &seqmodal_data::Labels) -> Vec<usize> {
    (0..labels.classes()).map(|c| (0..labels.rows()).filter(|&i| labels.has(i, c)).count()).collect()
}

/// Copies a dataset directory into a temp dir so a test can break one file.
fn copy_dir(src: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    tmp
}

#[test]
fn wiki_shapes_and_class_counts_match_provenance() {
    let ds = load_wiki(&datasets().join("wiki")).unwrap();
    assert_eq!(ds.modality_names(), ["image", "text"]);
    assert_eq!(ds.classes(), 10);
    assert_eq!(ds.class_names[0], "art");
    assert_eq!(ds.class_names[9], "warfare");
    let img = ds.modality("image").unwrap();
    let txt = ds.modality("text").unwrap();
    assert_eq!((img.train.features.rows(), img.train.features.cols()), (2173, 128));
    assert_eq!((img.test.features.rows(), img.test.features.cols()), (693, 128));
    assert_eq!((txt.train.features.rows(), txt.train.features.cols()), (2173, 10));
    assert_eq!((txt.test.features.rows(), txt.test.features.cols()), (693, 10));
    // Counts written in PROVENANCE.md, computed there with another tool.
    assert_eq!(class_counts(&img.train.labels), [138, 272, 244, 248, 202, 178, 186, 144, 214, 347]);
    assert_eq!(class_counts(&txt.test.labels), [34, 88, 96, 85, 65, 58, 51, 41, 71, 104]);
    // Rows are L1-normalised histograms / topic proportions: checks the column-major
    // to row-major transpose (a wrong transpose would not sum to 1 per row).
    for m in [img, txt] {
        for i in [0, 1, 500, 2172] {
            let s: f32 = m.train.features.row(i).iter().sum();
            assert!((s - 1.0).abs() < 1e-4, "{} row {i} sums to {s}", m.name);
        }
    }
    assert!(ds.aligned);
}

#[test]
fn mfeat_split_views_and_labels() {
    let ds = load(DatasetKind::Mfeat, &datasets().join("mfeat")).unwrap();
    assert_eq!(ds.modality_names(), ["fac", "fou", "kar", "mor", "pix", "zer"]);
    let dims: Vec<usize> = ds.modalities.iter().map(|m| m.dim()).collect();
    assert_eq!(dims, [216, 76, 64, 6, 240, 47]);
    for m in &ds.modalities {
        assert_eq!(m.train.features.rows(), 1500);
        assert_eq!(m.test.features.rows(), 500);
        assert_eq!(class_counts(&m.train.labels), [150; 10]);
        assert_eq!(class_counts(&m.test.labels), [50; 10]);
    }
    // Split id 0 is in train or test; data row 0 of mor is "0,..." per file: check
    // the first train row of `mor` is the file's data row with the smallest train id.
    let text = std::fs::read_to_string(datasets().join("mfeat/mfeat-mor.csv")).unwrap();
    let split: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(datasets().join("mfeat/split_seed0_1500_500.json")).unwrap(),
    )
    .unwrap();
    let first_train = split["train"][0].as_u64().unwrap() as usize;
    let line = text.lines().nth(first_train + 1).unwrap().trim_end();
    let expected: Vec<f32> = line.split(',').take(6).map(|f| f.parse().unwrap()).collect();
    assert_eq!(ds.modality("mor").unwrap().train.features.row(0), expected.as_slice());
}

#[test]
fn standardize_uses_train_statistics() {
    let mut ds = load_mfeat(&datasets().join("mfeat")).unwrap();
    ds.standardize();
    let m = ds.modality("kar").unwrap();
    let x = &m.train.features;
    for c in [0, 13, 63] {
        let col: Vec<f64> = (0..x.rows()).map(|i| x.row(i)[c] as f64).collect();
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var - 1.0).abs() < 1e-3, "var {var}");
    }
    // Test rows are transformed with train statistics: their mean is not exactly 0.
    let t = &m.test.features;
    let mean0 = (0..t.rows()).map(|i| t.row(i)[0] as f64).sum::<f64>() / t.rows() as f64;
    assert!(mean0.abs() > 1e-6);
}

#[test]
fn missing_directory_and_file_are_named() {
    let err = load(DatasetKind::Wiki, Path::new("/nonexistent/wiki")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/wiki"), "{err}");
    let tmp = copy_dir(&datasets().join("wiki"));
    std::fs::remove_file(tmp.path().join("raw_features.mat")).unwrap();
    let err = load_wiki(tmp.path()).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(err.to_string().contains("raw_features.mat"), "{err}");
}

#[test]
fn wiki_truncated_mat_file_is_named_as_truncated() {
    // The v5 parser read a cut file without complaint and the loader reported I_tr missing.
    let tmp = copy_dir(&datasets().join("wiki"));
    let p = tmp.path().join("raw_features.mat");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_wiki(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("raw_features.mat") && err.contains("truncated"), "{err}");
}

#[test]
fn wiki_label_rows_must_match_feature_rows() {
    let tmp = copy_dir(&datasets().join("wiki"));
    let p = tmp.path().join("testset_txt_img_cat.list");
    let text = std::fs::read_to_string(&p).unwrap();
    let shorter: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, shorter).unwrap();
    let err = load_wiki(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("I_te") && err.contains("693 rows") && err.contains("692 lines"), "{err}");
}

#[test]
fn wiki_bad_category_names_file_and_line() {
    let tmp = copy_dir(&datasets().join("wiki"));
    let p = tmp.path().join("trainset_txt_img_cat.list");
    let mut lines: Vec<String> = std::fs::read_to_string(&p).unwrap().lines().map(String::from).collect();
    lines[4] = "a\tb\t11".into();
    std::fs::write(&p, lines.join("\n")).unwrap();
    let err = load_wiki(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("trainset_txt_img_cat.list:5") && err.contains("category 11"), "{err}");
}

#[test]
fn corrupt_mat_file_is_reported() {
    let tmp = copy_dir(&datasets().join("wiki"));
    std::fs::write(tmp.path().join("raw_features.mat"), b"not a mat file").unwrap();
    let err = load_wiki(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("raw_features.mat") && err.contains("MAT"), "{err}");
}

#[test]
fn mfeat_nan_and_ragged_rows_are_reported() {
    let tmp = copy_dir(&datasets().join("mfeat"));
    let p = tmp.path().join("mfeat-mor.csv");
    let mut lines: Vec<String> = std::fs::read_to_string(&p).unwrap().lines().map(String::from).collect();
    lines[3] = "NaN,1,2,3,4,5,0".into();
    std::fs::write(&p, lines.join("\r\n")).unwrap();
    let err = load_mfeat(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("mfeat-mor.csv:4") && err.contains("non-finite"), "{err}");

    lines[3] = "1,2,3".into();
    std::fs::write(&p, lines.join("\r\n")).unwrap();
    let err = load_mfeat(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("mfeat-mor.csv:4") && err.contains("3 fields"), "{err}");
}

#[test]
fn mfeat_split_out_of_range_is_reported() {
    let tmp = copy_dir(&datasets().join("mfeat"));
    std::fs::write(tmp.path().join("split_seed0_1500_500.json"), r#"{"train":[0,1,5000],"test":[2]}"#)
        .unwrap();
    let err = load_mfeat(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("5000") && err.contains("out of range"), "{err}");
    // A test row that is also a training row (or listed twice) would be trained on.
    std::fs::write(tmp.path().join("split_seed0_1500_500.json"), r#"{"train":[0,1,5],"test":[2,5]}"#)
        .unwrap();
    let err = load_mfeat(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("split_seed0") && err.contains("row id 5 is listed in test and already in train"),
        "{err}"
    );
    std::fs::write(tmp.path().join("split_seed0_1500_500.json"), r#"{"train":[0,1,1],"test":[2]}"#).unwrap();
    let err = load_mfeat(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("row id 1 is listed in train and already in train"), "{err}");
}

#[test]
fn mfeat_view_with_a_row_missing_names_both_counts() {
    let tmp = copy_dir(&datasets().join("mfeat"));
    let p = tmp.path().join("mfeat-pix.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&p, lines[..lines.len() - 1].join("\n")).unwrap();
    let err = load_mfeat(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("mfeat-pix.csv") && err.contains("1999 rows but") && err.contains("2000"), "{err}");
}

#[test]
fn unknown_kind_lists_known_ones() {
    let err = "flickr".parse::<DatasetKind>().unwrap_err().to_string();
    assert!(err.contains("flickr") && err.contains("wiki") && err.contains("mfeat"), "{err}");
}
