//! `seqmodal sweep --emit slurm` against a real Slurm: a 4-cell sweep submitted as a job array,
//! collected, and compared with a local run of the same sweep.
//!
//! Needs a running Slurm (`scripts/slurm-up.sh` starts a single-node one), so it is ignored by
//! plain `cargo test`; `.ci/run` runs it with
//! `scripts/slurm-up.sh && cargo test --workspace --test slurm -- --ignored`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{repo, text};

/// Longest wait for the array to leave the queue; 4 tiny cells take a few seconds.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(180);

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}): start Slurm first with scripts/slurm-up.sh"))
}

fn seqmodal(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_seqmodal"), args)
}

/// summary.csv as rows of column -> value, without the timing columns (wall-clock time
/// differs between any two runs; every other column is a pure function of metrics.csv).
fn summary_without_time(path: &Path) -> Vec<BTreeMap<String, String>> {
    let t = std::fs::read_to_string(path).unwrap();
    let mut lines = t.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            head.iter()
                .zip(l.split(','))
                .filter(|(h, _)| !h.starts_with("train_seconds"))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
#[ignore = "needs Slurm: scripts/slurm-up.sh, then cargo test --workspace --test slurm -- --ignored"]
fn slurm_array_gives_the_same_results_as_a_local_run() {
    let sinfo = run("sinfo", &["-h", "-o", "%T"]);
    assert!(
        sinfo.status.success() && !sinfo.stdout.is_empty(),
        "no Slurm answering (start it with scripts/slurm-up.sh): {}",
        text(&sinfo)
    );
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("tiny.toml");
    std::fs::write(
        &sweep,
        format!(
            "base = \"{}\"\nlearners = [\"finetune\", \"er\"]\nseeds = [1, 2]\n[set]\n\"train.epochs\" = 1\n\
             \"model.hidden\" = 32\n\"model.bits\" = 16\n",
            repo().join("experiments/wiki.toml").display()
        ),
    )
    .unwrap();
    let sweep = sweep.to_str().unwrap();
    let (slurm_dir, local_dir) = (tmp.path().join("slurm-run"), tmp.path().join("local-run"));
    let slurm_out = slurm_dir.to_str().unwrap();

    let o = seqmodal(&["sweep", sweep, "--out", slurm_out, "--emit", "slurm"]);
    assert!(o.status.success(), "{}", text(&o));
    let script = slurm_dir.join("slurm/sweep.sbatch");
    let start = Instant::now();
    let o = run("sbatch", &["--parsable", script.to_str().unwrap()]);
    assert!(o.status.success(), "sbatch: {}", text(&o));
    let job = String::from_utf8_lossy(&o.stdout).trim().split(';').next().unwrap_or_default().to_string();
    loop {
        let q = run("squeue", &["-h", "-j", &job]);
        if q.stdout.iter().all(u8::is_ascii_whitespace) {
            break;
        }
        if start.elapsed() > QUEUE_TIMEOUT {
            let _ = run("scancel", &[&job]);
            panic!("job {job} still queued after {QUEUE_TIMEOUT:?}: {}", text(&q));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let slurm_secs = start.elapsed().as_secs_f64();
    let logs: Vec<String> = (0..4)
        .map(|i| {
            let p = slurm_dir.join(format!("slurm/{job}_{i}.out"));
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("task log {}: {e}", p.display()))
        })
        .collect();
    let o = seqmodal(&["sweep", sweep, "--out", slurm_out, "--collect"]);
    assert!(o.status.success(), "collect: {}\ntask logs:\n{}", text(&o), logs.join("\n"));
    eprintln!("slurm array of 4 cells: {slurm_secs:.1} s from sbatch to an empty queue");

    let o = seqmodal(&["sweep", sweep, "--out", local_dir.to_str().unwrap(), "--jobs", "2", "--quiet"]);
    assert!(o.status.success(), "local: {}", text(&o));
    // Every tidy row, byte for byte.
    let a = std::fs::read(slurm_dir.join("sweep.csv")).unwrap();
    let b = std::fs::read(local_dir.join("sweep.csv")).unwrap();
    assert_eq!(a.len(), b.len());
    assert!(a == b, "sweep.csv differs between the Slurm and the local run");
    let (sa, sb) = (
        summary_without_time(&slurm_dir.join("summary.csv")),
        summary_without_time(&local_dir.join("summary.csv")),
    );
    assert_eq!(sa.len(), 2);
    assert_eq!(sa, sb);
}
