//! Frozen outputs: the resolved `config.toml` of every shipped experiment and the
//! `config.toml` + `metrics.csv` of a short run of every shipped learner, byte for byte.
//! The trained numbers depend on the matrix kernels gemm picks for the CPU (AVX-512 where the
//! CPU has it, else AVX2/FMA: another summation order), so `metrics.csv` is compared on CPUs
//! of the class that froze it (`learner-runs/CPU_CLASS`) and skipped, saying so, elsewhere.
//! A refactor must leave them unchanged; a deliberate change (a new default, with its
//! reason in the commit) regenerates them with `SEQMODAL_FREEZE=1 cargo test -p seqmodal
//! --test frozen`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::repo;

fn expected_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/frozen")
}

/// Compares `actual` with the stored file (or stores it when freezing); returns a
/// description of the mismatch.
fn compare(actual: &str, rel: &str) -> Option<String> {
    let path = expected_dir().join(rel);
    if std::env::var_os("SEQMODAL_FREEZE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (expected != actual).then(|| {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b);
        format!(
            "{rel} differs (first differing line: {line:?})\n--- expected\n{expected}\n--- actual\n{actual}"
        )
    })
}

/// The class of matrix kernels gemm runs on this CPU (its results differ between classes).
fn cpu_class() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "x86_64-avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "x86_64-avx2-fma";
        }
    }
    "other"
}

/// Every `.toml` under `experiments/`, as paths relative to the repository.
fn experiment_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    let root = repo();
    let mut files = Vec::new();
    walk(&root.join("experiments"), &mut files);
    let mut rel: Vec<String> =
        files.iter().map(|p| p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/")).collect();
    rel.sort();
    rel
}

#[test]
fn every_shipped_experiment_resolves_to_its_frozen_config() {
    let files = experiment_files();
    assert!(files.len() >= 20, "{files:?}");
    let mut bad = Vec::new();
    for rel in &files {
        let exp = seqmodal_learner::Experiment::load(&repo().join(rel), &[]).unwrap();
        let name = format!("config/{}", rel.trim_start_matches("experiments/").replace('/', "__"));
        bad.extend(compare(&exp.to_toml(), &name));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn a_short_run_of_every_learner_writes_its_frozen_config_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let mut learners: Vec<String> = experiment_files()
        .into_iter()
        .filter_map(|f| {
            f.strip_prefix("experiments/learners/").map(|s| s.trim_end_matches(".toml").to_string())
        })
        .collect();
    learners.sort();
    assert_eq!(learners.len(), 11, "{learners:?}");
    let mut bad = Vec::new();
    let class_file = expected_dir().join("learner-runs/CPU_CLASS");
    if std::env::var_os("SEQMODAL_FREEZE").is_some() {
        std::fs::write(&class_file, format!("{}\n", cpu_class())).unwrap();
    }
    let frozen_class = std::fs::read_to_string(&class_file).unwrap();
    let same_class = frozen_class.trim() == cpu_class();
    if !same_class {
        eprintln!(
            "frozen metrics.csv not compared: frozen on a {} CPU, this one is {}",
            frozen_class.trim(),
            cpu_class()
        );
    }
    for learner in &learners {
        let out = tmp.path().join(learner);
        // Tiny on purpose (1 epoch over 96 drawn rows per view, a small model): seconds,
        // yet every stage, the memory, the replay and each learner's own terms run.
        let status = Command::new(env!("CARGO_BIN_EXE_seqmodal"))
            .current_dir(repo())
            .args(["run", &format!("experiments/learners/{learner}.toml"), "--quiet", "--out"])
            .arg(&out)
            .args(["--set", "train.epochs=1", "--set", "model.hidden=32", "--set", "model.bits=16"])
            .args(["--set", "dataset.train=96", "--set", "train.batch=48"])
            .output()
            .unwrap();
        assert!(status.status.success(), "{learner}: {}", String::from_utf8_lossy(&status.stderr));
        let files: &[&str] = if same_class { &["config.toml", "metrics.csv"] } else { &["config.toml"] };
        for file in files {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            // config.toml opens with provenance comments (commit, command line, CPU), which
            // differ between builds and machines; the resolved experiment follows them.
            let text: String =
                text.lines().skip_while(|l| l.starts_with('#')).flat_map(|l| [l, "\n"]).collect();
            bad.extend(compare(&text, &format!("learner-runs/{learner}/{file}")));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
