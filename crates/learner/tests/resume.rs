//! Resuming from a checkpoint gives exactly the numbers of an uninterrupted run, for
//! every learner: model, learner state (memories, importances, previous models), the
//! RNG position, frozen database codes and drift are all restored.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use seqmodal_learner::{
    run, train_log, Experiment, LearnerError, Observer, Registry, RunOptions, Silent, TRAIN_LOG_COLUMNS,
};

fn experiment(dir: &Path, learner: &str, extra: &str) -> Experiment {
    experiment_with(dir, learner, "epochs = 2", extra)
}

fn experiment_with(dir: &Path, learner: &str, train: &str, extra: &str) -> Experiment {
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
{train}
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
    for entry in Registry::builtin().entries() {
        let kind = entry.name;
        let tmp = tempfile::tempdir().unwrap();
        // The frozen policy for one learner, so stored database codes are restored too.
        let extra = if kind == "meta" { "[eval]\ndatabase = \"frozen\"" } else { "" };
        let exp = experiment(tmp.path(), kind, extra);
        let ck = tmp.path().join("checkpoints");
        let log = tmp.path().join("train_log.csv");
        let opts = RunOptions {
            checkpoint_dir: Some(ck.clone()),
            train_log: Some(log.clone()),
            ..RunOptions::default()
        };
        let full = run(&exp, &ds, &opts, &mut Silent).unwrap();
        let full_log = std::fs::read_to_string(&log).unwrap();
        // A crash after stage 1: the later checkpoints never happened.
        for k in [2, 3] {
            std::fs::remove_file(ck.join(format!("state-{k}.json"))).unwrap();
        }
        let opts = RunOptions { resume: true, ..opts };
        let resumed = run(&exp, &ds, &opts, &mut Silent).unwrap();
        assert_eq!(full.rows, resumed.rows, "{}: resumed run differs", kind);
        assert_eq!(full.train_samples, resumed.train_samples);
        // The log was cut back to stage 1 and grew again: the same lines but for timing.
        assert_eq!(untimed(&full_log), untimed(&std::fs::read_to_string(&log).unwrap()), "{}", kind);
        assert_eq!(full.footprint, resumed.footprint, "{}", kind);
    }
}

/// A training log without its timing columns, checked to hold one line per epoch.
fn untimed(log: &str) -> Vec<String> {
    let header: Vec<&str> = log.lines().next().unwrap().split(',').collect();
    assert_eq!(header, TRAIN_LOG_COLUMNS);
    let timing: Vec<usize> =
        train_log::TIMING_COLUMNS.iter().map(|c| header.iter().position(|h| h == c).unwrap()).collect();
    log.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "{l}");
            f.iter()
                .enumerate()
                .filter(|(i, _)| !timing.contains(i))
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn the_training_log_has_one_line_per_epoch_with_finite_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path(), "ewc", "");
    let ds = exp.load_dataset().unwrap();
    let log = tmp.path().join("train_log.csv");
    let opts = RunOptions { train_log: Some(log.clone()), ..RunOptions::default() };
    let res = run(&exp, &ds, &opts, &mut Silent).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<f64>> =
        text.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    // 3 stages x 2 epochs, in order; steps grow to the run's total.
    let keys: Vec<(f64, f64)> = lines.iter().map(|f| (f[0], f[1])).collect();
    assert_eq!(keys, [(1., 1.), (1., 2.), (2., 1.), (2., 2.), (3., 1.), (3., 2.)]);
    assert_eq!(lines.last().unwrap()[2], res.steps as f64);
    assert!(lines.windows(2).all(|w| w[1][2] > w[0][2]), "{text}");
    for f in &lines {
        // loss and the three terms are finite and non-negative; lr as configured.
        assert!(f[3..7].iter().all(|v| v.is_finite() && *v >= 0.0), "{text}");
        assert_eq!(f[7], 3e-3);
    }
    // The objective of EWC includes the model loss; from stage 2 on also its penalty.
    assert!(lines.iter().all(|f| f[3] > 0.0));
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

/// Raises the stop flag at the end of one epoch of one stage and records the epochs seen.
struct StopAfter {
    at: (usize, usize),
    flag: Arc<AtomicBool>,
    seen: Vec<(usize, usize)>,
}

impl Observer for StopAfter {
    fn on_epoch(&mut self, stage: usize, epoch: usize, _loss: f64) {
        self.seen.push((stage, epoch));
        if (stage, epoch) == self.at {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn every_learner_resumes_inside_a_stage_to_identical_numbers() {
    let ds = {
        let tmp = tempfile::tempdir().unwrap();
        experiment(tmp.path(), "finetune", "").load_dataset().unwrap()
    };
    for entry in Registry::builtin().entries() {
        let name = entry.name;
        let tmp = tempfile::tempdir().unwrap();
        let exp = experiment_with(tmp.path(), name, "epochs = 3\ncheckpoint_every = 1", "");
        let ck = tmp.path().join("checkpoints");
        let log = tmp.path().join("train_log.csv");
        let opts = RunOptions {
            checkpoint_dir: Some(ck.clone()),
            train_log: Some(log.clone()),
            ..RunOptions::default()
        };
        let full = run(&exp, &ds, &opts, &mut Silent).unwrap();
        // Finished stages keep only their own checkpoints.
        let mut files: Vec<String> =
            std::fs::read_dir(&ck).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        files.sort();
        assert!(files.iter().all(|f| !f.contains("epoch")), "{name}: {files:?}");

        // Stopped after epoch 2 of stage 2: the run errs, leaving that in-stage checkpoint.
        let tmp2 = tempfile::tempdir().unwrap();
        let ck2 = tmp2.path().join("checkpoints");
        let flag = Arc::new(AtomicBool::new(false));
        let log2 = tmp2.path().join("train_log.csv");
        let opts2 = RunOptions {
            checkpoint_dir: Some(ck2.clone()),
            interrupt: Some(flag.clone()),
            train_log: Some(log2.clone()),
            ..RunOptions::default()
        };
        let mut stop = StopAfter { at: (2, 2), flag, seen: Vec::new() };
        let err = run(&exp, &ds, &opts2, &mut stop).unwrap_err();
        assert!(matches!(err, LearnerError::Interrupted { stage: 2 }), "{name}: {err}");
        assert!(ck2.join("state-2-epoch-2.json").exists(), "{name}");
        assert!(!ck2.join("state-2-epoch-1.json").exists(), "{name}: older in-stage checkpoint kept");

        let mut rest = StopAfter { at: (0, 0), flag: Arc::new(AtomicBool::new(false)), seen: Vec::new() };
        let opts2 = RunOptions { resume: true, interrupt: None, ..opts2 };
        let resumed = run(&exp, &ds, &opts2, &mut rest).unwrap();
        // Stage 2 went on at epoch 3: the first two were not trained again.
        assert_eq!(rest.seen.first(), Some(&(2, 3)), "{name}");
        assert_eq!(full.rows, resumed.rows, "{name}: resumed run differs");
        assert_eq!(
            (full.train_samples, full.steps, full.passes),
            (resumed.train_samples, resumed.steps, resumed.passes),
            "{name}"
        );
        let read = |p: &Path| untimed(&std::fs::read_to_string(p).unwrap());
        assert_eq!(read(&log), read(&log2), "{name}: the resumed run's training log differs");
    }
}
