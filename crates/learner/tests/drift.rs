//! Drift schedules and the synthetic dataset through the experiment file and the runner:
//! ramps expand into stages, values are checked with file:line:key errors, drift reaches
//! training and queries, and every run is deterministic per seed.

use seqmodal_data::Drift;
use seqmodal_hamming::Metric;
use seqmodal_learner::{run, EvalRow, Experiment, LearnerError, RunOptions, Silent};

const SYNTH: &str = r#"name = "s"
seed = 2
[dataset]
kind = "synthetic"
modalities = ["x", "y"]
dims = [12, 20]
classes = 4
train = 300
test = 60
latent = 8
noise = 0.5
[model]
bits = 16
hidden = 32
[learner]
kind = "finetune"
[train]
epochs = 3
batch = 64
lr = 3e-3
[[stages]]
modality = "x"
[[stages]]
modality = "y"
"#;

fn load(text: &str, sets: &[&str]) -> Result<Experiment, LearnerError> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("exp.toml");
    std::fs::write(&p, text).unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Experiment::load(&p, &sets)
}

fn with_stage(extra: &str) -> String {
    format!("{SYNTH}[[stages]]\nmodality = \"x\"\n{extra}\n")
}

fn map(rows: &[EvalRow], stage: usize, q: &str, d: &str) -> f64 {
    rows.iter()
        .find(|r| r.stage == stage && r.query == q && r.database == d && r.metric == Metric::Map)
        .unwrap()
        .value
}

fn run_rows(e: &Experiment) -> Vec<EvalRow> {
    let ds = e.load_dataset().unwrap();
    run(e, &ds, &RunOptions::default(), &mut Silent).unwrap().rows
}

#[test]
fn ramps_expand_into_linear_stages() {
    let e = load(&with_stage("repeat = 3\ndrift = { rotation = { from = 10, to = 50 }, noise = 0.2 }"), &[])
        .unwrap();
    assert_eq!(e.stages.len(), 5);
    let angles: Vec<f64> = e.stages[2..].iter().map(|s| s.drift.rotation).collect();
    assert_eq!(angles, [10.0, 30.0, 50.0]);
    assert!(e.stages[2..].iter().all(|s| s.drift.noise == 0.2 && s.modality == "x"));
    assert_eq!(e.stages[0].drift, Drift::default());
    // The resolved config spells every stage out and checks to the same schedule.
    let again = load(&e.to_toml(), &[]).unwrap();
    let drifts = |e: &Experiment| e.stages.iter().map(|s| s.drift.clone()).collect::<Vec<_>>();
    assert_eq!(drifts(&again), drifts(&e));
}

#[test]
fn bad_drift_and_synthetic_values_name_file_line_and_key() {
    let cases: [(String, &str); 9] = [
        (with_stage("repeat = 233333333"), "stages[2].repeat"),
        (with_stage("drift = { noise = -1 }"), "stages[2].drift.noise"),
        (with_stage("drift = { dropout = 1.5 }"), "stages[2].drift.dropout"),
        (with_stage("drift = { class_prior = [0, 0, 0, 0] }"), "stages[2].drift.class_prior"),
        (with_stage("drift = { wobble = 1 }"), "wobble"),
        (with_stage("repeat = 0"), "stages[2].repeat"),
        (SYNTH.replace("dims = [12, 20]", "dims = [12]"), "dims"),
        (SYNTH.replace("classes = 4", "classes = 4\nlabels_per_item = [1, 9]"), "labels_per_item"),
        (SYNTH.replace("latent = 8", "latent = 8\npath = \"x\""), "dataset.path"),
    ];
    for (text, key) in cases {
        let e = load(&text, &[]).unwrap_err().to_string();
        assert!(e.contains("exp.toml") && e.contains(key), "'{e}' should name exp.toml and {key}");
    }
    // Generator keys on a file dataset.
    let e =
        load(&GOOD_WIKI.replace("path = \"datasets/wiki\"", "path = \"datasets/wiki\"\nnoise = 1.0"), &[])
            .unwrap_err()
            .to_string();
    assert!(e.contains("exp.toml:7") && e.contains("dataset.noise") && e.contains("synthetic"), "{e}");
    // Class prior with the wrong number of classes: a dataset-dependent error at the stage's line.
    let e = load(&with_stage("drift = { class_prior = [1, 2] }"), &[]).unwrap();
    let err = e.check_dataset(&e.load_dataset().unwrap()).unwrap_err().to_string();
    assert!(err.contains("stages[2].drift.class_prior") && err.contains("4 classes"), "{err}");
}

const GOOD_WIKI: &str = r#"name = "t"
seed = 3

[dataset]
kind = "wiki"
path = "datasets/wiki"

[learner]
kind = "finetune"

[[stages]]
modality = "image"
"#;

#[test]
fn synthetic_runs_learn_and_are_deterministic() {
    let e = load(SYNTH, &[]).unwrap();
    let a = run_rows(&e);
    assert_eq!(a, run_rows(&e), "same seed, same numbers");
    // Above chance (4 balanced classes: a random ranking scores about 0.25).
    let (xy, yx) = (map(&a, 2, "x", "y"), map(&a, 2, "y", "x"));
    assert!(xy > 0.4 && yx > 0.4, "x->y {xy}, y->x {yx}");
    let b = run_rows(&load(SYNTH, &["seed=3"]).unwrap());
    assert_ne!(a, b, "the run seed changes training");
}

#[test]
fn drift_reaches_training_and_queries() {
    let base = run_rows(&load(&with_stage(""), &[]).unwrap());
    // An identity drift table changes nothing at all.
    let identity = run_rows(&load(&with_stage("drift = { noise = 0, scale = 1 }"), &[]).unwrap());
    assert_eq!(base, identity);
    // A strong drift on the returning modality changes its queries and training.
    let drifted = run_rows(&load(&with_stage("drift = { rotation = 90, noise = 1.0 }"), &[]).unwrap());
    assert_eq!(map(&base, 2, "x", "x"), map(&drifted, 2, "x", "x"), "stages before the drift agree");
    assert_ne!(map(&base, 3, "x", "x"), map(&drifted, 3, "x", "x"));
    // Noise-only drift with a class prior keeping one class: the stage trains on fewer rows.
    let e = load(&with_stage("drift = { class_prior = [1, 0, 0, 0] }"), &[]).unwrap();
    let ds = e.load_dataset().unwrap();
    let r = run(&e, &ds, &RunOptions::default(), &mut Silent).unwrap();
    let full = run(&load(&with_stage(""), &[]).unwrap(), &ds, &RunOptions::default(), &mut Silent).unwrap();
    let (ones, all) = (r.stage_samples - 2 * 300 * 3, full.stage_samples - 2 * 300 * 3);
    assert_eq!(all, 300 * 3);
    assert!(ones > 0 && ones < all / 2, "class prior kept {ones} of {all} sample-epochs");
}
