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
    for name in ["mirflickr25k.mat", "nus-wide-tc21.mat", "iapr-tc12.mat", "XMediaFeatures.mat", "trImgCat"] {
        assert!(readme.contains(name), "datasets/README.md does not mention {name}");
    }
}

#[test]
fn mat73_split_keys_reach_the_loader_and_round_trip() {
    let text = experiment(
        &format!(
            "kind = \"mat73\"\npath = \"{}\"\nqueries = 3\ntrain = 6\nseed = 4\n",
            fixture("mat73/all.mat")
        ),
        &["image", "text"],
    );
    let (_tmp, exp) = load(&text);
    let exp = exp.unwrap();
    let ds = exp.load_dataset().unwrap();
    exp.check_dataset(&ds).unwrap();
    for m in &ds.modalities {
        // 3 queries, the other 9 samples the database, 6 of those the training rows.
        let rows = (m.train.features.rows(), m.test.features.rows(), m.database().features.rows());
        assert_eq!(rows, (6, 3, 9), "{}", m.name);
    }
    // config.toml keeps the split settings, and reading it back gives the same split.
    let resolved = exp.to_toml();
    for key in ["queries = 3", "train = 6", "seed = 4"] {
        assert!(resolved.contains(key), "{key} missing from:\n{resolved}");
    }
    let (_tmp2, again) = load(&resolved);
    let again = again.unwrap();
    assert_eq!((again.dataset.kind, &again.dataset.path), (exp.dataset.kind, &exp.dataset.path));
    assert_eq!(again.dataset.load, exp.dataset.load);
    assert_eq!(again.load_dataset().unwrap(), ds);
}

#[test]
fn runner_trains_on_the_subset_and_searches_the_whole_database() {
    use seqmodal_hamming::Metric;
    use seqmodal_learner::{run, EvalRow, RunOptions, Silent};
    let text = format!(
        "name = \"t\"\nseed = 1\n[dataset]\nkind = \"mat73\"\npath = \"{}\"\nqueries = 3\ntrain = 5\n\
         [model]\nbits = 16\nhidden = 16\n[learner]\nkind = \"finetune\"\n[train]\nepochs = 2\nbatch = 4\n\
         [[stages]]\nmodality = \"image\"\n[eval]\nmetrics = [\"map\", \"p@9\"]\n",
        fixture("mat73/all.mat")
    );
    let (_tmp, exp) = load(&text);
    let exp = exp.unwrap();
    let ds = exp.load_dataset().unwrap();
    let res = run(&exp, &ds, &RunOptions::default(), &mut Silent).unwrap();
    // Training saw the 5 training rows for 2 epochs, not the 9 database rows.
    assert_eq!(res.stage_samples, 2 * 5);
    assert_eq!(res.train_samples, 2 * 5);
    // p@9 over a 9-row database is the fraction of relevant database rows: the ranking
    // does not matter, so it names the database that was searched.
    let p9 = |q: &str, d: &str| {
        let is = |r: &&EvalRow| {
            r.stage == 1 && r.query == q && r.database == d && r.metric == Metric::PrecisionAt(9)
        };
        res.rows.iter().find(is).unwrap().value
    };
    let relevant = |q: &str, d: &str| {
        let (q, d) = (&ds.modality(q).unwrap().test.labels, &ds.modality(d).unwrap().database().labels);
        let hits: usize = (0..q.rows())
            .map(|i| (0..d.rows()).filter(|&j| (0..q.classes()).any(|c| q.has(i, c) && d.has(j, c))).count())
            .sum();
        hits as f64 / (q.rows() * d.rows()) as f64
    };
    for (q, d) in [("image", "text"), ("text", "image"), ("image", "image")] {
        let v = p9(q, d);
        assert!((v - relevant(q, d)).abs() < 1e-9, "{q}->{d}: p@9 {v} vs {}", relevant(q, d));
    }
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
    let (_t, r) = load(&experiment("kind = \"npz\"\npath = \"x.npz\"\nqueries = 5\n", &["image"]));
    let err = r.unwrap_err();
    assert!(err.contains("exp.toml:7") && err.contains("dataset.queries") && err.contains("'npz'"), "{err}");
    // mat73's query count is `queries`; `test` is the synthetic generator's.
    let (_t, r) = load(&experiment("kind = \"mat73\"\npath = \"x.mat\"\ntest = 5\n", &["image"]));
    let err = r.unwrap_err();
    assert!(
        err.contains("exp.toml:7") && err.contains("dataset.test") && err.contains("queries = N"),
        "{err}"
    );
    let (_t, r) = load(&experiment("kind = \"mat73\"\npath = \"x.mat\"\nqueries = 0\n", &["image"]));
    let err = r.unwrap_err();
    assert!(
        err.contains("exp.toml:7") && err.contains("dataset.queries") && err.contains("positive"),
        "{err}"
    );
    let (_t, r) = load(&experiment("kind = \"synthetic\"\nqueries = 5\n", &["a"]));
    let err = r.unwrap_err();
    assert!(err.contains("exp.toml:6") && err.contains("dataset.queries"), "{err}");
    // Splits larger than the file are reported when it is read, naming file, line and key.
    let all = fixture("mat73/all.mat");
    let (_t, r) =
        load(&experiment(&format!("kind = \"mat73\"\npath = \"{all}\"\nqueries = 12\n"), &["image"]));
    let err = r.unwrap().load_dataset().unwrap_err().to_string();
    assert!(err.contains("exp.toml:7: dataset.queries") && err.contains("12 queries"), "{err}");
    let (_t, r) = load(&experiment(
        &format!("kind = \"mat73\"\npath = \"{all}\"\nqueries = 3\ntrain = 10\n"),
        &["image"],
    ));
    let err = r.unwrap().load_dataset().unwrap_err().to_string();
    assert!(err.contains("exp.toml:8: dataset.train") && err.contains("queries + train = 13 > 12"), "{err}");
    // `train` works on any file kind; too many rows name the modality.
    let (_t, r) = load(&experiment(
        &format!("kind = \"xmedia\"\npath = \"{}\"\ntrain = 1000\n", fixture("xmedia")),
        &["image"],
    ));
    let err = r.unwrap().load_dataset().unwrap_err().to_string();
    assert!(err.contains("exp.toml:7: dataset.train") && err.contains("modality 'image'"), "{err}");
}
