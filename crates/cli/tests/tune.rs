//! `seqmodal tune` end to end on a tiny budget (wiki, 1 epoch, hidden 32, 16 bits):
//! determinism, resume, the written experiment files, validation in every cell, and bad
//! tune files rejected before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

mod common;
use common::{repo, seqmodal, text};

/// A tune file over experiments/wiki.toml: finetune (no keys) and er, 2 trials, tiny cells.
fn tune_file(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        format!(
            "base = \"{}\"\nlearners = [\"finetune\", \"er\"]\ntrials = 2\nseed = 5\nvalidation = 0.2\n{extra}\n\
             [set]\n\"train.epochs\" = 1\n\"model.hidden\" = 32\n\"model.bits\" = 16\n\"learner.memory\" = 60\n\
             \"eval.metrics\" = [\"map\"]\n",
            repo().join("experiments/wiki.toml").display()
        ),
    )
    .unwrap();
    p
}

fn run_tune(tune: &Path, out: &Path, exps: &Path) -> Output {
    let args = [
        "tune",
        tune.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--write-experiments",
        exps.to_str().unwrap(),
        "--quiet",
    ];
    seqmodal(&args, tune.parent().unwrap())
}

fn mtimes(out: &Path) -> BTreeMap<String, SystemTime> {
    std::fs::read_dir(out.join("cells"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::metadata(e.path().join("summary.json")).unwrap().modified().unwrap();
            (e.file_name().to_string_lossy().into_owned(), m)
        })
        .collect()
}

#[test]
fn tune_runs_selects_resumes_and_writes_runnable_experiments() {
    let tmp = tempfile::tempdir().unwrap();
    let tune = tune_file(tmp.path(), "");
    let (out, exps) = (tmp.path().join("t1"), tmp.path().join("tuned"));
    let o = run_tune(&tune, &out, &exps);
    assert!(o.status.success(), "{}", text(&o));

    // One trial for finetune (no keys); for er two sampled ones and its defaults; every cell
    // validated on training rows.
    let trials = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    let lines: Vec<&str> = trials.lines().collect();
    assert_eq!(lines.len(), 5, "{trials}");
    assert!(lines[0].starts_with("learner,trial,status,"), "{trials}");
    assert!(
        lines[1].starts_with("finetune,0,ok,")
            && lines[1].ends_with("no tunable keys: one trial of the defaults")
    );
    assert!(lines[2].starts_with("er,0,ok,") && lines[3].starts_with("er,1,ok,"), "{trials}");
    assert!(
        lines[4].starts_with("er,2,ok,")
            && lines[4].ends_with("the learner's defaults (not a sampled trial)")
    );
    let cells: Vec<String> = std::fs::read_dir(out.join("cells"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(cells.len(), 4);
    for c in &cells {
        let cfg = std::fs::read_to_string(out.join("cells").join(c).join("config.toml")).unwrap();
        assert!(cfg.contains("validation = 0.2"), "{c}: {cfg}");
    }
    // memory is fixed by [set], so er tunes its other keys; columns hold the drawn values.
    let header: Vec<&str> = lines[0].split(',').collect();
    assert!(!header.contains(&"memory") && header.contains(&"replay_batch"), "{}", lines[0]);

    // The best er trial is the one with the higher validation ACC (ties: the first).
    let acc = |line: &str| -> f64 {
        let i = header.iter().position(|h| *h == "val_acc_mean").unwrap();
        line.split(',').nth(i).unwrap().parse().unwrap()
    };
    let mut best_id = 0;
    for id in 1..3 {
        if acc(lines[2 + id]) > acc(lines[2 + best_id]) {
            best_id = id;
        }
    }
    let best = std::fs::read_to_string(out.join("best.csv")).unwrap();
    assert!(best.lines().any(|l| l.starts_with(&format!("er,3,3,{best_id},"))), "{best}");

    // The tuned file: header, the chosen keys (or the defaults), no validation; it runs and
    // keeps them.
    let er = std::fs::read_to_string(exps.join("er.toml")).unwrap();
    assert!(er.starts_with("# Tuned by `seqmodal tune"), "{er}");
    assert!(er.contains("(budget 2 random trials per learner and the defaults, seed 5)"), "{er}");
    assert!(!er.contains("validation ="), "{er}");
    let rb = header.iter().position(|h| *h == "replay_batch").unwrap();
    let chosen_rb = lines[2 + best_id].split(',').nth(rb).unwrap();
    if best_id == 2 {
        assert!(er.contains("its defaults") && er.contains("# Chosen: the learner's defaults"), "{er}");
    } else {
        assert!(er.contains(&format!("trial {best_id} of 2")), "{er}");
        assert!(er.contains(&format!("replay_batch = {chosen_rb}")), "{er}");
    }
    let run_dir = tmp.path().join("run-er");
    let o = seqmodal(
        &["run", exps.join("er.toml").to_str().unwrap(), "--out", run_dir.to_str().unwrap(), "--quiet"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let cfg = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(cfg.contains("memory = 60"), "{cfg}");
    if best_id < 2 {
        assert!(cfg.contains(&format!("replay_batch = {chosen_rb}")), "{cfg}");
    }
    assert!(!cfg.contains("validation"), "{cfg}");
    assert!(exps.join("finetune.toml").is_file());

    // Resume: a second run does no work (no cell rewritten) and gives the same tables.
    let before = mtimes(&out);
    let o = run_tune(&tune, &out, &exps);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mtimes(&out), before);
    assert_eq!(std::fs::read_to_string(out.join("trials.csv")).unwrap(), trials);

    // Determinism: the same tune file into a fresh directory gives the same trials.csv.
    let out2 = tmp.path().join("t2");
    let o = run_tune(&tune, &out2, &exps);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(out2.join("trials.csv")).unwrap(), trials);

    // Slurm: one array task per cell, each running `seqmodal tune ... --cell i`.
    let o = seqmodal(
        &["tune", tune.to_str().unwrap(), "--out", out.to_str().unwrap(), "--emit", "slurm"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let script = std::fs::read_to_string(out.join("slurm/tune.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-3") && script.contains(" tune ") && script.contains("--cell"),
        "{script}"
    );
}

#[test]
fn bad_tune_files_are_errors_naming_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 8] = [
        ("trials_per = 3", "unknown field `trials_per`"),
        ("sampler = \"bayes\"", "tiny.toml:6: sampler: unknown sampler 'bayes'"),
        (
            "[ranges]\n\"er.replay_batch\" = { ints = [0, 5] }",
            "ranges.\"er.replay_batch\": ints: expected integers >= 1",
        ),
        ("[ranges]\n\"nope\" = \"fixed\"", "ranges.\"nope\": no tuned learner has the key `nope`"),
        ("[ranges]\n\"replay_batch\" = { log = [1.0, 2.0] }", "log does not apply"),
        ("[ranges]\n\"meta.inner_lr\" = \"fixed\"", "'meta' is not a tuned learner"),
        ("seeds = [1, 1]", "tiny.toml:6: seeds: seed 1 is negative or listed twice"),
        ("[slurm]\npartition = 3", "partition"),
    ];
    for (extra, want) in cases {
        let tune = tune_file(tmp.path(), extra);
        let out = tmp.path().join("never");
        let o = run_tune(&tune, &out, &tmp.path().join("x"));
        assert!(!o.status.success(), "{extra}");
        let t = text(&o);
        assert!(t.contains(want) && t.contains("tiny.toml"), "{extra}: {t}");
        assert!(!out.exists(), "{extra}: created the output directory");
    }
    let write = |body: &str| {
        let p = tmp.path().join("bad.toml");
        let base = repo().join("experiments/wiki.toml");
        std::fs::write(&p, format!("base = \"{}\"\n{body}\n", base.display())).unwrap();
        text(&seqmodal(
            &["tune", p.to_str().unwrap(), "--out", tmp.path().join("n").to_str().unwrap()],
            tmp.path(),
        ))
    };
    assert!(write("trials = 0").contains("bad.toml:2: trials: must be an integer in 1..=10000, got 0"));
    assert!(write("trials = 2\nvalidation = 1.5")
        .contains("bad.toml:3: validation: must be a fraction in (0, 1)"));
    assert!(
        write("trials = 2\nlearners = [\"nope\"]").contains("bad.toml:3: learners: unknown learner 'nope'")
    );
    let t = write("trials = 2\n[set]\n\"model.bitz\" = 3");
    assert!(t.contains("bad.toml:4: set.\"model.bitz\"") && t.contains("bitz"), "{t}");
    let t = write("trials = 2\nlearners = [\"finetune\"]\n[set]\n\"learner.memory\" = 3");
    assert!(t.contains("bad.toml:5: set.\"learner.memory\": no tuned learner has the key `memory`"), "{t}");
}
