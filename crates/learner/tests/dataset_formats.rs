//! The `[dataset]` keys of the npz / mat73 / xmedia kinds, and the shipped benchmark
//! experiments, which stop with a message naming the missing file and datasets/README.md.

use std::path::{Path, PathBuf};

use seqmodal_learner::Experiment;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> String {
    repo().join("crates/data/tests/fixtures").join(rel).display().to_string()
}

fn experiment(dataset: &str, stages: &[&str]) -> String {
    let mut s = format!("name = \"t\"\nseed = 1\n\n[dataset]\n{dataset}\n[learner]\nkind = \"finetune\"\n");
    for m in stages {
        s += &format!("\n[[stages]]\nmodality = \"{m}\"\n");
    }
    s
}

fn load(text: &str) -> (tempfile::TempDir, Result<Experiment, String>) {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("exp.toml");
    std::fs::write(&p, text).unwrap();
    let r = Experiment::load(&p, &[]).map_err(|e| e.to_string());
    (tmp, r)
}

#[test]
fn shipped_benchmarks_name_the_missing_file_and_the_readme() {
    for (file, data) in [
        ("mirflickr", "datasets/mirflickr/mirflickr25k.mat"),
        ("nuswide", "datasets/nuswide/nus-wide-tc21.mat"),
        ("iapr", "datasets/iapr/iapr-tc12.mat"),
        ("xmedia", "datasets/xmedia"),
    ] {
        let exp = Experiment::load(&repo().join(format!("experiments/{file}.toml")), &[]).unwrap();
        if repo().join(data).exists() {
            eprintln!("{data} is present: not testing the missing-data message of {file}.toml");
            continue;
        }
        let err = exp.load_dataset().unwrap_err().to_string();
        assert!(err.contains(data) && err.contains("datasets/README.md"), "{file}.toml: {err}");
    }
    // The README has a section for each of them.
    let readme = std::fs::read_to_string(repo().join("datasets/README.md")).unwrap();
    for name in ["mirflickr25k.mat", "nus-wide-tc21.mat", "iapr-tc12.mat", "img_train_fea"] {
        assert!(readme.contains(name), "datasets/README.md does not mention {name}");
    }
}

#[test]
fn mat73_split_keys_reach_the_loader_and_round_trip() {
    let text = experiment(
        &format!(
            "kind = \"mat73\"\npath = \"{}\"\ntest = 3\ntrain = 6\nseed = 4\n",
            fixture("mat73/all.mat")
        ),
        &["image", "text"],
    );
    let (_tmp, exp) = load(&text);
    let exp = exp.unwrap();
    let ds = exp.load_dataset().unwrap();
    exp.check_dataset(&ds).unwrap();
    let img = ds.modality("image").unwrap();
    assert_eq!((img.train.features.rows(), img.test.features.rows()), (6, 3));
    // config.toml keeps the split settings, and reading it back gives the same experiment.
    let resolved = exp.to_toml();
    for key in ["test = 3", "train = 6", "seed = 4"] {
        assert!(resolved.contains(key), "{key} missing from:\n{resolved}");
    }
    let (_tmp2, again) = load(&resolved);
    assert_eq!(again.unwrap().dataset, exp.dataset);
}

#[test]
fn npz_and_xmedia_experiments_load() {
    let (_t, exp) = load(&experiment(
        &format!("kind = \"npz\"\npath = \"{}\"\n", fixture("npz/aligned.npz")),
        &["image", "text"],
    ));
    let exp = exp.unwrap();
    exp.check_dataset(&exp.load_dataset().unwrap()).unwrap();
    let (_t, exp) = load(&experiment(
        &format!("kind = \"xmedia\"\npath = \"{}\"\n", fixture("xmedia")),
        &["image", "audio", "3d"],
    ));
    let exp = exp.unwrap();
    let ds = exp.load_dataset().unwrap();
    exp.check_dataset(&ds).unwrap();
    assert_eq!(ds.modalities.len(), 5);
}

#[test]
fn split_keys_are_errors_on_other_kinds_and_out_of_range() {
    let (_t, r) = load(&experiment("kind = \"npz\"\npath = \"x.npz\"\ntest = 5\n", &["image"]));
    let err = r.unwrap_err();
    assert!(err.contains("exp.toml:7") && err.contains("dataset.test") && err.contains("'npz'"), "{err}");
    let (_t, r) = load(&experiment("kind = \"mat73\"\npath = \"x.mat\"\ntest = 0\n", &["image"]));
    let err = r.unwrap_err();
    assert!(err.contains("exp.toml:7") && err.contains("dataset.test") && err.contains("positive"), "{err}");
    // A split larger than the file is reported by the loader, naming the key.
    let (_t, r) = load(&experiment(
        &format!("kind = \"mat73\"\npath = \"{}\"\ntest = 12\n", fixture("mat73/all.mat")),
        &["image"],
    ));
    let err = r.unwrap().load_dataset().unwrap_err().to_string();
    assert!(err.contains("dataset.test") && err.contains("12 queries"), "{err}");
}
