//! The `seqmodal` binary end to end: outputs of a short real run, byte-identical
//! reruns, and a clear non-zero exit for every kind of bad experiment file.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::repo;

fn seqmodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqmodal")).current_dir(repo()).args(args).output().unwrap()
}

/// A short version of experiments/wiki.toml (small model, 2 epochs).
fn short_run(out: &Path) -> Output {
    seqmodal(&[
        "run",
        "experiments/wiki.toml",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "train.epochs=2",
        "--set",
        "model.hidden=64",
        "--set",
        "model.bits=16",
    ])
}

#[test]
fn run_writes_every_output_and_is_byte_identical_per_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let out = short_run(&a);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stage 0 (random init)") && stdout.contains("stage 2 (text)"), "{stdout}");
    for f in [
        "config.toml",
        "metrics.csv",
        "summary.json",
        "figures/forgetting.png",
        "figures/forgetting.svg",
        "figures/map_matrix.png",
        "figures/map_matrix.svg",
        "checkpoints/stage-1.safetensors",
        "checkpoints/stage-2.safetensors",
        "train_log.csv",
        "figures/loss.png",
        "figures/loss.svg",
    ] {
        assert!(a.join(f).is_file(), "missing {f}");
    }
    // One training-log line per epoch: 2 stages x 2 epochs.
    let log = std::fs::read_to_string(a.join("train_log.csv")).unwrap();
    let keys: Vec<String> =
        log.lines().skip(1).map(|l| l.split(',').take(2).collect::<Vec<_>>().join(",")).collect();
    assert_eq!(keys, ["1,1", "1,2", "2,1", "2,2"], "{log}");
    let csv = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "experiment,learner,seed,bits,stage,trained,query,database,metric,value"
    );
    // 3 evaluations (stage 0..2) x 4 pairs x 4 metrics
    assert_eq!(csv.lines().count(), 1 + 3 * 4 * 4);
    assert!(csv.lines().any(|l| l.starts_with("wiki,finetune,7,16,0,,image,text,map,")), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("wiki,finetune,7,16,2,text,text,image,p@r2,")), "{csv}");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    for key in ["acc", "bwt", "forgetting_max_prev", "wall_seconds", "train_samples_per_second"] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}: {summary}");
    }
    // acc is derived from metrics.csv: mean of the final image->text and text->image map.
    let final_map = |q: &str, d: &str| -> f64 {
        let prefix = format!("wiki,finetune,7,16,2,text,{q},{d},map,");
        csv.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().parse().unwrap()
    };
    let acc = (final_map("image", "text") + final_map("text", "image")) / 2.0;
    assert!((summary["acc"].as_f64().unwrap() - acc).abs() < 1e-12);

    let resolved = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(resolved.contains("bits = 16") && resolved.contains("epochs = 2"), "{resolved}");
    // Provenance: comments atop config.toml, an object in summary.json.
    let header: Vec<&str> = resolved.lines().take_while(|l| l.starts_with('#')).collect();
    assert_eq!(header.len(), 3, "{resolved}");
    assert!(header[0].starts_with("# written by seqmodal ") && header[0].contains("commit"), "{resolved}");
    assert!(header[1].starts_with("# command: ") && header[1].contains("--set train.epochs=2"), "{resolved}");
    assert!(header[2].starts_with("# machine: ") && header[2].contains("threads: train 1"), "{resolved}");
    let p = &summary["provenance"];
    assert_eq!(p["version"], env!("CARGO_PKG_VERSION"), "{summary}");
    assert_eq!(p["train_threads"], 1);
    assert!(p["eval_threads"].as_u64().unwrap() >= 1 && p["cpu"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(p["command"].as_str().unwrap().contains("experiments/wiki.toml"), "{summary}");

    let out = short_run(&b);
    assert!(out.status.success());
    assert_eq!(std::fs::read(a.join("metrics.csv")).unwrap(), std::fs::read(b.join("metrics.csv")).unwrap());
}

#[test]
fn a_fresh_run_replaces_its_own_experiment_and_refuses_another_without_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    assert!(short_run(&d).status.success());
    // A stale file of a longer earlier run must not survive a rerun into the same directory.
    let stale = d.join("checkpoints/stage-3.safetensors");
    std::fs::write(&stale, b"old").unwrap();
    let out = short_run(&d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stale.exists() && d.join("checkpoints/stage-2.safetensors").is_file());
    // Another experiment into it: refused, nothing touched.
    let before = std::fs::read(d.join("metrics.csv")).unwrap();
    let other = |extra: &[&str]| {
        let mut args = vec!["run", "experiments/wiki.toml", "--quiet", "--out", d.to_str().unwrap()];
        args.extend(["--set", "train.epochs=1", "--set", "model.hidden=64", "--set", "model.bits=16"]);
        args.extend(extra);
        seqmodal(&args)
    };
    let out = other(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("holds a run of a different experiment"), "{err}");
    assert!(err.contains("--overwrite") && err.contains("epochs"), "{err}");
    assert_eq!(std::fs::read(d.join("metrics.csv")).unwrap(), before);
    let out = other(&["--overwrite"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = std::fs::read_to_string(d.join("config.toml")).unwrap();
    assert!(config.contains("epochs = 1"), "{config}");
}

#[test]
fn a_second_writer_of_a_run_directory_is_refused_and_the_lock_is_released_on_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("locked");
    std::fs::create_dir_all(&d).unwrap();
    // Another process's run holds the lock (the same OS lock `seqmodal run` takes).
    let held = std::fs::File::create(d.join("run.lock")).unwrap();
    held.try_lock().unwrap();
    let args = ["run", "experiments/wiki.toml", "-q", "-o", d.to_str().unwrap(), "--set", "train.epochs=1"];
    let out = seqmodal(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("in use by another `seqmodal run`") && err.contains("run.lock"), "{err}");
    assert!(!d.join("config.toml").exists(), "the refused run wrote into the directory");
    // Released (as when that process exits or crashes): the run goes ahead, and its own lock
    // is gone once it exits, so the test can take it.
    drop(held);
    let out = seqmodal(&[&args[..], &["--set", "model.hidden=32", "--set", "model.bits=16"][..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::File::open(d.join("run.lock")).unwrap().try_lock().unwrap();
}

#[test]
fn command_line_polish() {
    // One line per command in the top-level help.
    let out = seqmodal(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(commands.len() >= 7, "{help}");
    assert!(
        commands.iter().all(|l| l.starts_with("  ") && !l.starts_with("   ")),
        "continuation lines:\n{help}"
    );
    // Values are checked, with the valid ones listed.
    let out = seqmodal(&["--log", "verbose", "report", "x", "--out", "y.md"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("'verbose'") && err.contains("error, warn, info, debug, trace"), "{err}");
    let out = seqmodal(&["sweep", "x.toml", "--jobs", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--jobs"), "{out:?}");
    // A mistyped command gets a suggestion.
    let out = seqmodal(&["rn", "experiments/wiki.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("similar subcommand") && err.contains("'run'"), "{err}");
    // Shell completions name the commands and flags.
    let out = seqmodal(&["completions", "bash"]);
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && script.contains("_seqmodal()") && script.contains("--train-threads"),
        "{script}"
    );
    // The version names the commit when built from git.
    let out = seqmodal(&["--version"]);
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with(&format!("seqmodal {}", env!("CARGO_PKG_VERSION"))), "{v}");
}

#[test]
fn a_closed_stdout_does_not_kill_the_command() {
    // `seqmodal ... | head` closes the pipe early: that must not panic or stop the work.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("p");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqmodal"))
        .current_dir(repo())
        .args(["run", "experiments/wiki.toml", "--quiet", "--out", d.to_str().unwrap()])
        .args(["--set", "train.epochs=1", "--set", "model.hidden=64", "--set", "model.bits=16"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("panicked"), "{:?}: {err}", out.status);
    assert!(d.join("summary.json").is_file());
}

/// Writes `text` as an experiment file, runs it, and returns (success, stderr).
fn run_bad(text: &str) -> (bool, String) {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(&p, text).unwrap();
    let out =
        seqmodal(&["run", p.to_str().unwrap(), "--quiet", "--out", tmp.path().join("o").to_str().unwrap()]);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn wiki_text() -> String {
    std::fs::read_to_string(repo().join("experiments/wiki.toml")).unwrap()
}

#[test]
fn bad_experiment_files_exit_non_zero_naming_file_and_key() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (wiki_text().replace("seed = 7", "seed = 7 7"), vec!["bad.toml", "line"]),
        (wiki_text().replace("[train]\n", "[train]\nwarmup = 3\n"), vec!["bad.toml", "warmup", "line"]),
        (
            wiki_text().replace("kind = \"finetune\"", "kind = \"nope\""),
            vec!["bad.toml:", "learner.kind", "nope"],
        ),
        (
            wiki_text().replace("modality = \"text\"", "modality = \"audio\""),
            vec!["bad.toml:", "stages[1].modality", "audio", "image, text"],
        ),
        (
            wiki_text().replace("path = \"datasets/wiki\"", "path = \"/no/such/dir\""),
            vec!["bad.toml", "dataset.path", "/no/such/dir"],
        ),
    ];
    for (text, needles) in cases {
        let (ok, err) = run_bad(&text);
        assert!(!ok, "should fail: {needles:?}");
        for n in needles {
            assert!(err.contains(n), "stderr lacks '{n}': {err}");
        }
    }
}

#[test]
fn missing_experiment_file_is_reported() {
    let out = seqmodal(&["run", "experiments/does-not-exist.toml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does-not-exist.toml"), "{err}");
}

#[test]
fn bench_train_reports_both_rates_and_their_ratio() {
    let out = seqmodal(&["bench", "train", "--steps", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "1 thread(s)",
        "seqmodal unified model",
        "seqmodal real-run loop",
        "plain candle loop",
        "ratio seqmodal tight / plain candle",
    ] {
        assert!(text.contains(needle), "{text}");
    }
    // The last line is JSON for bench/train_vs_torch.sh, every rate positive.
    let json: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(json["framework"], "seqmodal");
    for key in ["tight_samples_per_s", "epoch_samples_per_s", "plain_candle_samples_per_s"] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {json}");
    }
    let out = seqmodal(&["bench", "train", "--data", "/no/such/wiki"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/wiki"));
}

/// Training splits each batch into fixed blocks and sums in one fixed order, so a shipped
/// experiment (short settings, replay learner, blocks big enough to be split) writes the
/// same metrics.csv bytes on one training thread and on two.
#[test]
fn metrics_are_byte_identical_across_training_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = Vec::new();
    for threads in ["1", "2"] {
        let out_dir = tmp.path().join(threads);
        let out = seqmodal(&[
            "run",
            "experiments/forgetting/mfeat-shared.toml",
            "--quiet",
            "--train-threads",
            threads,
            "--out",
            out_dir.to_str().unwrap(),
            "--set",
            "learner.kind=er",
            "--set",
            "train.epochs=1",
            "--set",
            "model.hidden=192",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        csv.push(std::fs::read(out_dir.join("metrics.csv")).unwrap());
    }
    assert!(csv[0].len() > 100);
    assert!(csv[0] == csv[1], "metrics.csv differs between 1 and 2 training threads");
}
