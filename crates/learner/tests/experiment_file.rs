//! Experiment files: defaults, overrides, and the error for every kind of bad input.

use std::path::{Path, PathBuf};

use seqmodal_learner::{Experiment, LearnerError};

const GOOD: &str = r#"name = "t"
seed = 3

[dataset]
kind = "wiki"
path = "datasets/wiki"

[learner]
kind = "finetune"

[[stages]]
modality = "image"

[[stages]]
modality = "text"
epochs = 2
"#;

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn load_err(text: &str, overrides: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), text);
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let e = Experiment::load(&p, &o).unwrap_err().to_string();
    assert!(e.contains("exp.toml") || e.contains("--set"), "error does not name the file: {e}");
    e
}

fn wiki() -> seqmodal_data::Dataset {
    seqmodal_data::load_wiki(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/wiki")).unwrap()
}

#[test]
fn defaults_are_filled_and_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), GOOD);
    let e = Experiment::load(&p, &[]).unwrap();
    assert_eq!((e.model.bits, e.model.hidden, e.train.epochs, e.train.batch), (64, 512, 30, 128));
    assert_eq!(e.stages[0].epochs, 30);
    assert_eq!(e.stages[1].epochs, 2);
    assert_eq!(e.learner.name(), "finetune");
    assert_eq!(e.metrics.len(), 1);
    // The resolved config is itself a valid experiment file that checks to the same thing.
    let p2 = tmp.path().join("resolved.toml");
    std::fs::write(&p2, e.to_toml()).unwrap();
    let mut e2 = Experiment::load(&p2, &[]).unwrap();
    e2.source = e.source.clone();
    for (a, b) in e2.stages.iter_mut().zip(&e.stages) {
        a.line = b.line;
    }
    assert_eq!(e, e2);
}

#[test]
fn set_overrides_keys_and_stage_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), GOOD);
    let sets =
        ["learner.kind=joint", "model.bits=16", "stages.0.epochs=4", "train.lr=0.01"].map(String::from);
    let e = Experiment::load(&p, &sets).unwrap();
    assert_eq!(e.learner.name(), "joint");
    assert_eq!(e.model.bits, 16);
    assert_eq!(e.stages[0].epochs, 4);
    assert_eq!(e.train.lr, 0.01);
}

#[test]
fn syntax_error_names_line() {
    let e = load_err(&GOOD.replace("seed = 3", "seed = = 3"), &[]);
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn unknown_key_names_key_and_line() {
    let e = load_err(&GOOD.replace("[learner]\n", "[learner]\nmomentum = 0.9\n"), &[]);
    assert!(e.contains("momentum") && e.contains("line 9"), "{e}");
}

#[test]
fn wrong_type_names_key() {
    let e = load_err(&GOOD.replace("seed = 3", "seed = \"three\""), &[]);
    assert!(e.contains("seed") && e.contains("line 2"), "{e}");
}

#[test]
fn unknown_learner_names_file_line_and_known_ones() {
    let e = load_err(&GOOD.replace("kind = \"finetune\"", "kind = \"magic\""), &[]);
    assert!(e.contains("exp.toml:9: learner.kind") && e.contains("magic") && e.contains("finetune"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    let e = load_err(GOOD, &["model.bits=0"]);
    assert!(e.contains("model.bits") && e.contains("positive"), "{e}");
    let e = load_err(&GOOD.replace("epochs = 2", "epochs = -1"), &[]);
    assert!(e.contains("exp.toml:16: stages[1].epochs"), "{e}");
    let e = load_err(GOOD, &["model.adapter=wide"]);
    assert!(e.contains("model.adapter") && e.contains("shared-pad"), "{e}");
    let e = load_err(&format!("{GOOD}\n[eval]\nmetrics = [\"map\", \"ndcg\"]\n"), &[]);
    assert!(e.contains("eval.metrics") && e.contains("ndcg"), "{e}");
    let e = load_err(GOOD, &["dataset.kind=flickr"]);
    assert!(e.contains("dataset.kind") && e.contains("flickr"), "{e}");
}

#[test]
fn missing_stages_is_an_error() {
    let text = GOOD.split("[[stages]]").next().unwrap();
    let e = load_err(text, &[]);
    assert!(e.contains("stages"), "{e}");
}

#[test]
fn bad_override_is_reported() {
    let e = load_err(GOOD, &["stages.5.epochs=3"]);
    assert!(e.contains("--set stages.5.epochs=3") && e.contains("out of range"), "{e}");
    let e = load_err(GOOD, &["noequals"]);
    assert!(e.contains("key=value"), "{e}");
    // Errors caused by an override name it, not a line of the merged text (which the user
    // never wrote), in the words of the file format rather than of our structs.
    let e = load_err(GOOD, &["seed=3", "model.bitz=16"]);
    assert!(e.starts_with("--set model.bitz=16: unknown field `bitz`") && !e.contains("line"), "{e}");
    let e = load_err(GOOD, &["train.epochs=2.5"]);
    assert!(e.starts_with("--set train.epochs=2.5: invalid type: floating point `2.5`"), "{e}");
    // Types in words, not Rust's names.
    let e = load_err(GOOD, &["model.bits=abc"]);
    assert!(e.starts_with("--set model.bits=abc: invalid type: string \"abc\", expected an integer"), "{e}");
    let e = load_err(GOOD, &["train.lr=fast"]);
    assert!(e.contains("expected a number") && !e.contains("f64"), "{e}");
    let e = load_err(GOOD, &["model=3"]);
    assert!(
        e.starts_with("--set model=3:") && e.contains("expected a table") && !e.contains("Section"),
        "{e}"
    );
    let e = load_err(GOOD, &["stages.x.epochs=1"]);
    assert!(e.contains("'stages' is an array of tables") && e.contains("stages.0.epochs"), "{e}");
    // A value out of range after parsing is the override's too.
    let e = load_err(GOOD, &["model.bits=0"]);
    assert!(e.starts_with("--set model.bits=0:"), "{e}");
    let e = load_err(GOOD, &["stages.1.epochs=0"]);
    assert!(e.starts_with("--set stages.1.epochs=0:"), "{e}");
    // The name is a directory under runs/: `..` would write outside it.
    let e = load_err(&GOOD.replace("name = \"t\"", "name = \"..\""), &[]);
    assert!(e.contains("exp.toml:1: name") && e.contains("not . or .."), "{e}");
    // Errors in the file itself keep pointing at its lines.
    let e = load_err(&GOOD.replace("epochs = 2", "epochs = 0"), &["seed=3"]);
    assert!(e.contains("exp.toml:") && e.contains("stages[1].epochs"), "{e}");
}

#[test]
fn unknown_modality_names_stage_line_and_known_modalities() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), &GOOD.replace("modality = \"text\"", "modality = \"audio\""));
    let e = Experiment::load(&p, &[]).unwrap();
    let err = e.check_dataset(&wiki()).unwrap_err();
    assert!(matches!(err, LearnerError::Invalid { line: 15, .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("exp.toml:15: stages[1].modality")
            && msg.contains("audio")
            && msg.contains("image, text")
    );
}

#[test]
fn class_filter_out_of_range_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), &GOOD.replace("epochs = 2", "epochs = 2\nclasses = [3, 10]"));
    let e = Experiment::load(&p, &[]).unwrap();
    let msg = e.check_dataset(&wiki()).unwrap_err().to_string();
    assert!(msg.contains("stages[1].classes") && msg.contains("class id 10"), "{msg}");
}

/// `GOOD` reading the repository's wiki files, with `extra` lines in `[dataset]`.
fn wiki_text(extra: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/wiki");
    GOOD.replace(
        "path = \"datasets/wiki\"",
        &format!("path = {:?}\nstandardize = false\n{extra}", dir.display()),
    )
}

/// Rows of `m` as bit patterns, to look rows up exactly.
fn rows(m: &seqmodal_data::Matrix) -> Vec<Vec<u32>> {
    (0..m.rows()).map(|i| m.row(i).iter().map(|x| x.to_bits()).collect()).collect()
}

#[test]
fn validation_queries_come_from_training_rows_never_test_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let full = Experiment::load(&write(tmp.path(), &wiki_text("")), &[]).unwrap().load_dataset().unwrap();
    let e = Experiment::load(&write(tmp.path(), &wiki_text("validation = 0.25\nseed = 4")), &[]).unwrap();
    assert!(e.to_toml().contains("validation = 0.25"), "{}", e.to_toml());
    let val = e.load_dataset().unwrap();
    assert!(val.aligned);
    for (m, f) in val.modalities.iter().zip(&full.modalities) {
        let train = rows(&f.train.features);
        let test = rows(&f.test.features);
        let q = rows(&m.test.features);
        let t = rows(&m.train.features);
        assert_eq!(q.len(), (train.len() as f64 * 0.25).round() as usize);
        assert_eq!(q.len() + t.len(), train.len());
        // Queries and remaining rows together are the training rows, each once (as a
        // multiset: wiki has repeated feature rows, so rows are compared by count).
        let mut both: Vec<Vec<u32>> = q.iter().chain(&t).cloned().collect();
        let mut want = train.clone();
        both.sort();
        want.sort();
        assert_eq!(both, want);
        // So no query is a test-only row.
        assert!(q.iter().all(|r| !test.contains(r) || train.contains(r)));
        assert_eq!(rows(&m.database().features), t);
    }
    // Aligned wiki: image and text queries are the same items (their labels agree row by row).
    assert_eq!(val.modalities[0].test.labels, val.modalities[1].test.labels);
}

#[test]
fn bad_validation_fractions_name_file_line_and_key() {
    for bad in ["0.0", "1.0", "-0.5", "nan"] {
        let e = load_err(&wiki_text(&format!("validation = {bad}")), &[]);
        assert!(e.contains("exp.toml:8: dataset.validation: must be a fraction in (0, 1)"), "{e}");
    }
    // Valid in the file, but no query left at load time: still file, line and key.
    let tmp = tempfile::tempdir().unwrap();
    let e = Experiment::load(&write(tmp.path(), &wiki_text("validation = 1e-5")), &[]).unwrap();
    let err = e.load_dataset().unwrap_err().to_string();
    assert!(
        err.contains("exp.toml:8: dataset.validation:") && err.contains("both must be at least 1"),
        "{err}"
    );
}
