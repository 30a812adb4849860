//! The stage runner on real Wikipedia data with small models: it learns, it is
//! deterministic per seed, and it respects each stage's data.

use std::path::Path;

use seqmodal_hamming::Metric;
use seqmodal_learner::{run, EvalRow, Experiment, RunOptions, Silent};

fn wiki() -> seqmodal_data::Dataset {
    let mut ds =
        seqmodal_data::load_wiki(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/wiki")).unwrap();
    ds.standardize();
    ds
}

fn experiment(learner: &str, extra: &[&str]) -> Experiment {
    let text = format!(
        r#"name = "t"
seed = 11
[dataset]
kind = "wiki"
path = "datasets/wiki"
[model]
bits = 16
hidden = 64
[learner]
kind = "{learner}"
[train]
epochs = 4
batch = 64
lr = 3e-3
[[stages]]
modality = "image"
[[stages]]
modality = "text"
[eval]
metrics = ["map", "p@50"]
"#
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("t.toml");
    std::fs::write(&p, text).unwrap();
    let sets: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Experiment::load(&p, &sets).unwrap()
}

fn map(rows: &[EvalRow], stage: usize, q: &str, d: &str) -> f64 {
    rows.iter()
        .find(|r| r.stage == stage && r.query == q && r.database == d && r.metric == Metric::Map)
        .unwrap()
        .value
}

/// mAP of a random ranking: for each query the fraction of relevant database items.
fn chance(ds: &seqmodal_data::Dataset) -> f64 {
    let m = &ds.modalities[0];
    let (q, d) = (&m.test.labels, &m.train.labels);
    let mut total = 0.0;
    for i in 0..q.rows() {
        let rel = (0..d.rows()).filter(|&j| (0..q.classes()).any(|c| q.has(i, c) && d.has(j, c))).count();
        total += rel as f64 / d.rows() as f64;
    }
    total / q.rows() as f64
}

#[test]
fn joint_learns_cross_modal_retrieval_and_records_every_pair() {
    let ds = wiki();
    let exp = experiment("joint", &[]);
    let res = run(&exp, &ds, &RunOptions::default(), &mut Silent).unwrap();
    // stages 0,1,2 x 4 ordered pairs x 2 metrics
    assert_eq!(res.rows.len(), 3 * 4 * 2);
    assert!(res.rows.iter().filter(|r| r.stage == 0).all(|r| r.trained.is_none()));
    assert!(res.rows.iter().filter(|r| r.stage == 2).all(|r| r.trained.as_deref() == Some("text")));
    let c = chance(&ds);
    let cross = (map(&res.rows, 2, "image", "text") + map(&res.rows, 2, "text", "image")) / 2.0;
    assert!(cross > c + 0.1, "cross-modal mAP {cross} vs chance {c}");
    // joint at stage 2 trains on image + text rows for 4 epochs; stage 1 on image only.
    assert_eq!(res.train_samples, 4 * 2173 + 4 * 2 * 2173);
}

#[test]
fn finetune_learns_the_stage_modality() {
    let ds = wiki();
    let res = run(&experiment("finetune", &[]), &ds, &RunOptions::default(), &mut Silent).unwrap();
    let t0 = map(&res.rows, 0, "text", "text");
    let t2 = map(&res.rows, 2, "text", "text");
    assert!(t2 > t0 + 0.1, "text->text mAP {t0} -> {t2}");
    assert_eq!(res.train_samples, 4 * 2173 * 2);
}

#[test]
fn same_seed_same_numbers_other_seed_other_numbers() {
    let ds = wiki();
    let a =
        run(&experiment("finetune", &["train.epochs=2"]), &ds, &RunOptions::default(), &mut Silent).unwrap();
    let b =
        run(&experiment("finetune", &["train.epochs=2"]), &ds, &RunOptions::default(), &mut Silent).unwrap();
    assert_eq!(a.rows, b.rows);
    let c = run(
        &experiment("finetune", &["train.epochs=2", "seed=12"]),
        &ds,
        &RunOptions::default(),
        &mut Silent,
    )
    .unwrap();
    assert_ne!(a.rows, c.rows);
}

#[test]
fn class_filter_limits_training_rows_and_checkpoints_are_written() {
    let ds = wiki();
    let exp = experiment("finetune", &["train.epochs=1", "stages.1.classes=[0, 1]"]);
    let tmp = tempfile::tempdir().unwrap();
    let opts = RunOptions { checkpoint_dir: Some(tmp.path().join("ck")), ..Default::default() };
    let res = run(&exp, &ds, &opts, &mut Silent).unwrap();
    // classes 0 and 1 of the train split: 138 + 272 rows (PROVENANCE.md).
    assert_eq!(res.train_samples, 2173 + 138 + 272);
    for s in [1, 2] {
        let p = tmp.path().join(format!("ck/stage-{s}.safetensors"));
        let t = candle_core::safetensors::load(&p, &candle_core::Device::Cpu).unwrap();
        assert!(t.contains_key("adapter.image.weight") && t.contains_key("hash.weight"));
    }
}
