//! Resuming from a checkpoint gives exactly the numbers of an uninterrupted run, for
//! every learner: model, learner state (memories, importances, previous models), the
//! RNG position, frozen database codes and drift are all restored.

use std::path::Path;

use seqmodal_learner::{run, Experiment, LearnerError, LearnerKind, RunOptions, Silent};

fn experiment(dir: &Path, learner: &str, extra: &str) -> Experiment {
    let text = format!(
        r#"name = "resume"
seed = 5
[dataset]
kind = "mfeat"
path = "{}"
[model]
bits = 16
hidden = 32
adapter = "shared-pad"
[learner]
kind = "{learner}"
[train]
epochs = 2
batch = 128
lr = 3e-3
[[stages]]
modality = "fac"
[[stages]]
modality = "kar"
[[stages]]
modality = "zer"
drift = {{ noise = 0.3, rotation = 20 }}
{extra}
"#,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mfeat").display()
    );
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    Experiment::load(&p, &[]).unwrap()
}

#[test]
fn every_learner_resumes_to_identical_numbers() {
    let ds = {
        let tmp = tempfile::tempdir().unwrap();
        experiment(tmp.path(), "finetune", "").load_dataset().unwrap()
    };
    for kind in LearnerKind::ALL {
        let tmp = tempfile::tempdir().unwrap();
        // The frozen policy for one learner, so stored database codes are restored too.
        let extra = if kind == LearnerKind::Meta { "[eval]\ndatabase = \"frozen\"" } else { "" };
        let exp = experiment(tmp.path(), kind.as_str(), extra);
        let ck = tmp.path().join("checkpoints");
        let opts = RunOptions { checkpoint_dir: Some(ck.clone()), ..RunOptions::default() };
        let full = run(&exp, &ds, &opts, &mut Silent).unwrap();
        // A crash after stage 1: the later checkpoints never happened.
        for k in [2, 3] {
            std::fs::remove_file(ck.join(format!("state-{k}.json"))).unwrap();
        }
        let opts = RunOptions { resume: true, ..opts };
        let resumed = run(&exp, &ds, &opts, &mut Silent).unwrap();
        assert_eq!(full.rows, resumed.rows, "{}: resumed run differs", kind.as_str());
        assert_eq!(full.train_samples, resumed.train_samples);
        assert_eq!(full.footprint, resumed.footprint, "{}", kind.as_str());
    }
}

#[test]
fn resume_refuses_a_checkpoint_of_another_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), "er", "");
    let ds = exp.load_dataset().unwrap();
    let opts = RunOptions {
        checkpoint_dir: Some(tmp.path().join("checkpoints")),
        resume: true,
        ..Default::default()
    };
    run(&exp, &ds, &opts, &mut Silent).unwrap();
    let other = experiment(tmp.path(), "meta", "");
    let err = run(&other, &ds, &opts, &mut Silent).unwrap_err();
    assert!(matches!(err, LearnerError::Resume { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("state-3.json") && msg.contains("different experiment") && msg.contains("kind"),
        "{msg}"
    );
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), "finetune", "");
    let ds = exp.load_dataset().unwrap();
    let ck = tmp.path().join("checkpoints");
    let opts = RunOptions { checkpoint_dir: Some(ck.clone()), resume: true, ..Default::default() };
    run(&exp, &ds, &opts, &mut Silent).unwrap();
    std::fs::write(ck.join("state-3.json"), b"{ truncated").unwrap();
    let msg = run(&exp, &ds, &opts, &mut Silent).unwrap_err().to_string();
    assert!(msg.contains("state-3.json") && msg.contains("not a seqmodal checkpoint"), "{msg}");
}
