//! Crash and Ctrl-C: a run killed with SIGKILL, or stopped with SIGINT, and resumed with
//! `seqmodal run --resume DIR` ends with a metrics.csv byte-identical to an
//! uninterrupted run of the same experiment and seed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_seqmodal")
}

fn experiment(dir: &Path) -> PathBuf {
    let text = format!(
        r#"name = "crash"
seed = 9
[dataset]
kind = "mfeat"
path = "{}"
[model]
bits = 16
hidden = 64
adapter = "shared-pad"
[learner]
kind = "meta"
memory = 60
[train]
epochs = 6
batch = 64
checkpoint_every = 2
[[stages]]
modality = "fac"
epochs = 2
[[stages]]
modality = "pix"
[[stages]]
modality = "kar"
"#,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/mfeat").display()
    );
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn start(exp: &Path, out: &Path) -> Child {
    Command::new(bin())
        .args(["run", exp.to_str().unwrap(), "--quiet", "--log", "warn", "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn resume(out: &Path) -> std::process::Output {
    Command::new(bin())
        .args(["run", "--resume", out.to_str().unwrap(), "--quiet", "--log", "warn"])
        .output()
        .unwrap()
}

/// Asserts `dir/metrics.csv` equals `want` byte for byte, showing the first differing line.
fn same(dir: &Path, want: &str, what: &str) {
    let got = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    if got != want {
        let diff = got.lines().zip(want.lines()).find(|(a, b)| a != b);
        panic!("{what}: metrics.csv differs: {diff:?}");
    }
}

/// Waits (bounded) until `path` exists; false when the child ended first.
fn wait_for(path: &Path, child: &mut Child) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if path.exists() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{} did not appear within 120 s", path.display());
}

#[test]
fn killed_or_interrupted_runs_resume_to_identical_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let reference = tmp.path().join("reference");
    let st = start(&exp, &reference).wait_with_output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let want = std::fs::read_to_string(reference.join("metrics.csv")).unwrap();

    // SIGKILL at four moments: before any checkpoint, just after stage 1's, just after the
    // in-stage one after epoch 2 of stage 2 (`checkpoint_every = 2`), just after stage 2's.
    for (i, after) in [None, Some("1"), Some("2-epoch-2"), Some("2")].into_iter().enumerate() {
        let out = tmp.path().join(format!("killed-{i}"));
        let mut child = start(&exp, &out);
        let alive = match after {
            None => wait_for(&out.join("config.toml"), &mut child),
            Some(k) => wait_for(&out.join(format!("checkpoints/state-{k}.json")), &mut child),
        };
        assert!(alive, "run {i} finished before it could be killed");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!out.join("metrics.csv").exists(), "killed run {i} wrote metrics.csv");
        let r = resume(&out);
        assert!(r.status.success(), "resume {i}: {}", String::from_utf8_lossy(&r.stderr));
        same(&out, &want, &format!("resume after kill {i}"));
    }

    // Ctrl-C: stops at the next step with exit status 130 and says how to resume.
    let out = tmp.path().join("interrupted");
    let mut child = start(&exp, &out);
    assert!(wait_for(&out.join("checkpoints/state-1.json"), &mut child));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("seqmodal run --resume") && err.contains("interrupted during stage"), "{err}");
    let r = resume(&out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    same(&out, &want, "resume after Ctrl-C");
}

#[test]
fn resume_of_a_directory_from_another_experiment_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let out = tmp.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("config.toml"), "name = \"something else\"\n").unwrap();
    let o = Command::new(bin())
        .args(["run", exp.to_str().unwrap(), "--resume", out.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("config.toml") && err.contains("different experiment"), "{err}");
    // A directory with no run in it.
    let o = Command::new(bin()).args(["run", "--resume", tmp.path().to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("config.toml"), "{err}");
}
