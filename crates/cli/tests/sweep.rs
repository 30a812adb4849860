//! `seqmodal sweep` end to end on tiny cells (wiki, 1 epoch, hidden 32, 16 bits): outputs,
//! resume, failure recording, aggregation checked against the cells' own summary.json,
//! Slurm script emission and `--collect`, and bad sweep files rejected before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

mod common;
use common::{repo, seqmodal, text};

/// Writes a sweep file over experiments/wiki.toml with tiny cells plus `extra` lines.
fn sweep_file(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let base = repo().join("experiments/wiki.toml");
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "base = \"{}\"\n{extra}\n[set]\n\"train.epochs\" = 1\n\"model.hidden\" = 32\n\"model.bits\" = 16\n",
            base.display()
        ),
    )
    .unwrap();
    p
}

fn run_sweep(sweep: &Path, out: &Path, more: &[&str]) -> Output {
    let mut args = vec!["sweep", sweep.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(more);
    seqmodal(&args, sweep.parent().unwrap())
}

fn mtimes(out: &Path) -> BTreeMap<String, SystemTime> {
    std::fs::read_dir(out.join("cells"))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let m = std::fs::metadata(e.path().join("summary.json")).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), m.modified().unwrap()))
        })
        .collect()
}

/// Splits one CSV line, honouring double quotes (`"[0, 1]"` is one field).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Parses a CSV into rows of column name -> value.
fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let t = std::fs::read_to_string(path).unwrap();
    let mut lines = t.lines();
    let head = fields(lines.next().unwrap());
    lines
        .map(|l| {
            let f = fields(l);
            assert_eq!(f.len(), head.len(), "{l}");
            head.iter().cloned().zip(f).collect()
        })
        .collect()
}

const TWO_BY_TWO_BY_TWO: &str =
    "learners = [\"finetune\", \"er\"]\norderings = \"permutations\"\nseeds = [1, 2]";

#[test]
fn sweep_runs_resumes_and_aggregates_like_the_cells_say() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = sweep_file(tmp.path(), "tiny", TWO_BY_TWO_BY_TWO);
    let out = tmp.path().join("out");
    let o = run_sweep(&sweep, &out, &["--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("8 cells, 0 finished earlier, 8 to run"), "{}", text(&o));

    // Cells: learner (outer) x ordering x seed (inner), readable ids.
    let ids: Vec<String> = mtimes(&out).into_keys().collect();
    assert_eq!(ids.len(), 8);
    assert_eq!(ids[0], "0_finetune_image.text_s1");
    assert_eq!(ids[3], "3_finetune_text.image_s2");
    assert_eq!(ids[7], "7_er_text.image_s2");
    // The cell file: reordered stages, the seed and learner set, an absolute dataset path.
    let exp = std::fs::read_to_string(out.join("cells").join(&ids[3]).join("experiment.toml")).unwrap();
    let v: toml::Table = exp.parse().unwrap();
    let stages: Vec<&str> =
        v["stages"].as_array().unwrap().iter().map(|s| s["modality"].as_str().unwrap()).collect();
    assert_eq!(stages, ["text", "image"]);
    assert_eq!(v["seed"].as_integer(), Some(2));
    assert!(Path::new(v["dataset"]["path"].as_str().unwrap()).is_absolute(), "{exp}");
    for f in
        ["sweep.csv", "summary.csv", "figures/learners.png", "figures/learners.svg", "figures/orderings.png"]
    {
        assert!(out.join(f).is_file(), "missing {f}");
    }

    // sweep.csv: every cell's metrics.csv rows, with the cell, status and ordering in front.
    let rows = csv(&out.join("sweep.csv"));
    let per_cell = std::fs::read_to_string(out.join("cells").join(&ids[3]).join("metrics.csv")).unwrap();
    let n = per_cell.lines().count() - 1;
    assert_eq!(rows.len(), 8 * n);
    let mine: Vec<&BTreeMap<String, String>> = rows.iter().filter(|r| r["cell"] == ids[3]).collect();
    assert_eq!(mine.len(), n);
    for (r, line) in mine.iter().zip(per_cell.lines().skip(1)) {
        assert_eq!((r["status"].as_str(), r["ordering"].as_str()), ("ok", "text>image"));
        let tail = [
            "experiment",
            "learner",
            "seed",
            "bits",
            "stage",
            "trained",
            "query",
            "database",
            "metric",
            "value",
        ]
        .map(|k| r[k].as_str())
        .join(",");
        assert_eq!(tail, line);
    }

    // summary.csv equals mean / sample std over seeds of the cells' own summary.json.
    let summary = csv(&out.join("summary.csv"));
    assert_eq!(summary.len(), 4);
    for row in &summary {
        let cells: Vec<serde_json::Value> = ids
            .iter()
            .filter(|id| {
                id.contains(&format!("_{}_", row["learner"]))
                    && id.contains(&row["ordering"].replace('>', "."))
            })
            .map(|id| {
                serde_json::from_str(
                    &std::fs::read_to_string(out.join("cells").join(id).join("summary.json")).unwrap(),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(cells.len(), 2);
        assert_eq!(row["n_seeds"], "2");
        for key in ["acc", "bwt", "forgetting", "fwt", "train_seconds"] {
            let v: Vec<f64> = cells.iter().map(|c| c[key].as_f64().unwrap()).collect();
            let mean = (v[0] + v[1]) / 2.0;
            let std = (v[0] - v[1]).abs() / 2f64.sqrt();
            let got_mean: f64 = row[&format!("{key}_mean")].parse().unwrap();
            let got_std: f64 = row[&format!("{key}_std")].parse().unwrap();
            assert!((got_mean - mean).abs() < 1e-12, "{key}: {got_mean} vs {mean}");
            assert!((got_std - std).abs() < 1e-12, "{key} std: {got_std} vs {std}");
        }
    }

    // Resume: a rerun runs nothing and touches no finished cell.
    let before = mtimes(&out);
    let o = run_sweep(&sweep, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("8 finished earlier, 0 to run"), "{}", text(&o));
    assert_eq!(mtimes(&out), before);
    // Losing one cell's summary reruns that cell only.
    std::fs::remove_file(out.join("cells").join(&ids[5]).join("summary.json")).unwrap();
    let o = run_sweep(&sweep, &out, &["--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("7 finished earlier, 1 to run"), "{}", text(&o));
    let after = mtimes(&out);
    for (id, t) in &before {
        if *id != ids[5] {
            assert_eq!(after[id], *t, "{id} was rerun");
        }
    }
    assert!(after.contains_key(&ids[5]));

    // --collect gives the same tables; train time is the only column that may differ after
    // the rerun of one cell, and it did not change for the others.
    let collected = run_sweep(&sweep, &out, &["--collect"]);
    assert!(collected.status.success(), "{}", text(&collected));

    // A changed sweep file must not mix with old results.
    std::fs::write(
        &sweep,
        std::fs::read_to_string(&sweep).unwrap().replace("\"model.hidden\" = 32", "\"model.hidden\" = 16"),
    )
    .unwrap();
    let o = run_sweep(&sweep, &out, &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("different experiment"), "{}", text(&o));
}

#[test]
fn a_failing_cell_is_recorded_and_the_others_finish() {
    let tmp = tempfile::tempdir().unwrap();
    // Class 99 passes the file checks but not the dataset's (10 classes): the run fails.
    let sweep =
        sweep_file(tmp.path(), "fail", "seeds = [1, 2]\n[axes]\n\"stages.0.classes\" = [[0, 1, 2], [99]]");
    let out = tmp.path().join("out");
    let o = run_sweep(&sweep, &out, &["--jobs", "2"]);
    assert!(!o.status.success(), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("2 of 4 cells failed") && msg.contains("2_classes-99_s1"), "{msg}");
    let cells = out.join("cells");
    for ok in ["0_classes-0-1-2_s1", "1_classes-0-1-2_s2"] {
        assert!(cells.join(ok).join("summary.json").is_file(), "{ok}");
    }
    for bad in ["2_classes-99_s1", "3_classes-99_s2"] {
        let err = std::fs::read_to_string(cells.join(bad).join("error.txt")).unwrap();
        assert!(err.contains("class id 99"), "{err}");
        assert!(!cells.join(bad).join("summary.json").exists());
    }
    let rows = csv(&out.join("sweep.csv"));
    let failed: Vec<_> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["stages.0.classes"], "[99]");
    assert_eq!(failed[0]["value"], "");
    let summary = csv(&out.join("summary.csv"));
    assert_eq!(summary.len(), 2);
    assert_eq!((summary[0]["n_seeds"].as_str(), summary[0]["n_failed"].as_str()), ("2", "0"));
    assert_eq!((summary[1]["n_seeds"].as_str(), summary[1]["n_failed"].as_str()), ("0", "2"));
    assert_eq!(summary[1]["acc_mean"], "");
    // --collect reports the failed cells too.
    let o = run_sweep(&sweep, &out, &["--collect"]);
    assert!(!o.status.success() && text(&o).contains("2 of 4 cells did not finish"), "{}", text(&o));
}

#[test]
fn bad_sweep_files_are_errors_naming_file_and_key_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown_axis_key",
            "[axes]\n\"model.bitz\" = [16]",
            &["unknown_axis_key.toml", "axes.\"model.bitz\"", "bitz"][..],
        ),
        (
            "bad_axis_value",
            "[axes]\n\"model.bits\" = [16, 0]",
            &["bad_axis_value.toml:", "axes.\"model.bits\"", "positive"],
        ),
        (
            "empty_axis",
            "[axes]\n\"model.bits\" = []",
            &["empty_axis.toml:", "axes.\"model.bits\"", "empty axis"],
        ),
        ("empty_seeds", "seeds = []", &["empty_seeds.toml:2:", "seeds", "empty axis"]),
        (
            "unknown_learner",
            "learners = [\"finetune\", \"nope\"]",
            &["unknown_learner.toml:2:", "learners", "nope"],
        ),
        (
            "unknown_modality",
            "orderings = [[\"image\", \"text\"], [\"text\", \"audio\"]]",
            &["unknown_modality.toml:2:", "orderings", "unknown modality 'audio'", "image, text"],
        ),
        (
            "not_a_permutation",
            "orderings = [[\"image\"]]",
            &["not_a_permutation.toml:2:", "orderings", "not an ordering"],
        ),
        ("bad_orderings", "orderings = \"all\"", &["bad_orderings.toml:2:", "orderings", "permutations"]),
        ("unknown_top_key", "learner = [\"er\"]", &["unknown_top_key.toml", "unknown field `learner`"]),
        (
            "twice",
            "learners = [\"er\"]\n[axes]\n\"learner.kind\" = [\"meta\"]",
            &["twice.toml:", "learner.kind", "same axis"],
        ),
        (
            // Two spellings of one key: the cell id and config disagreed, aggregation failed.
            "spaced_key",
            "[axes]\n\"model.bits\" = [16]\n\" model.bits\" = [32]",
            &["spaced_key.toml:", "same key as another axis"],
        ),
        (
            // The ordering label would name the base's stages, not the ones that ran.
            "modality_axis",
            "orderings = [[\"image\", \"text\"]]\n[axes]\n\"stages.0.modality\" = [\"text\"]",
            &["modality_axis.toml:", "stages.0.modality", "cannot vary together with `orderings`"],
        ),
        ("dot_name", "name = \"..\"", &["dot_name.toml:2:", "name", "not . or .."]),
    ];
    for (name, extra, needles) in cases {
        let sweep = sweep_file(tmp.path(), name, extra);
        let out = tmp.path().join(format!("out-{name}"));
        let o = run_sweep(&sweep, &out, &[]);
        assert!(!o.status.success(), "{name}: {}", text(&o));
        let msg = String::from_utf8_lossy(&o.stderr).to_string();
        for n in needles {
            assert!(msg.contains(n), "{name}: expected `{n}` in: {msg}");
        }
        assert!(!out.exists(), "{name}: the sweep wrote {} before failing", out.display());
    }
    // A --cell past the end is refused before the sweep directory is made.
    let sweep = sweep_file(tmp.path(), "cells", "seeds = [1, 2]");
    let out = tmp.path().join("out-cells");
    let o = run_sweep(&sweep, &out, &["--cell", "9"]);
    assert!(!o.status.success() && text(&o).contains("has 2 cells"), "{}", text(&o));
    assert!(!out.exists(), "--cell 9 wrote {}", out.display());
    // Learner keys apply when a swept learner has them, whichever way the learners are given.
    for (name, extra) in [
        ("set_memory", "learners = [\"er\", \"der\"]\n[set]\n\"learner.memory\" = 100"),
        ("axis_memory", "[axes]\n\"learner.kind\" = [\"er\", \"der\"]\n\"learner.memory\" = [100, 200]"),
    ] {
        let text_ = std::fs::read_to_string(sweep_file(tmp.path(), name, "")).unwrap();
        // [set] of the helper comes last; put the case's tables after the base line.
        let p = tmp.path().join(format!("{name}.toml"));
        let (head, set) = text_.split_once("[set]\n").unwrap();
        let body = if extra.contains("[set]") {
            format!("{head}{}\n{set}", extra)
        } else {
            format!("{head}{extra}\n[set]\n{set}")
        };
        std::fs::write(&p, body).unwrap();
        let o = run_sweep(&p, &tmp.path().join(format!("out-{name}")), &["--emit", "slurm"]);
        assert!(o.status.success(), "{name}: {}", text(&o));
    }
    // The base file itself is checked, and named.
    let sweep = tmp.path().join("nobase.toml");
    std::fs::write(&sweep, "base = \"missing.toml\"\n").unwrap();
    let o = run_sweep(&sweep, &tmp.path().join("o"), &[]);
    assert!(!o.status.success() && text(&o).contains("nobase.toml:1: base: cannot read"), "{}", text(&o));
}

#[test]
fn slurm_script_and_shipped_sweeps() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = sweep_file(tmp.path(), "tiny", TWO_BY_TWO_BY_TWO);
    let out = tmp.path().join("out");
    let o = run_sweep(&sweep, &out, &["--emit", "slurm"]);
    assert!(o.status.success(), "{}", text(&o));
    let script = std::fs::read_to_string(out.join("slurm/sweep.sbatch")).unwrap();
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    assert!(script.contains("#SBATCH --array=0-7\n"), "{script}");
    assert!(script
        .contains(&format!("#SBATCH --output={}/slurm/%A_%a.out", out.canonicalize().unwrap().display())));
    assert!(script.contains("--cell \"$SLURM_ARRAY_TASK_ID\""), "{script}");
    // Nothing ran.
    assert!(!out.join("cells").exists());
    // One cell, as a Slurm task would run it.
    let o = run_sweep(&sweep, &out, &["--cell", "6"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("cells/6_er_text.image_s1/summary.json").is_file());
    assert_eq!(std::fs::read_dir(out.join("cells")).unwrap().count(), 1);
    let o = run_sweep(&sweep, &out, &["--cell", "8"]);
    assert!(!o.status.success() && text(&o).contains("has 8 cells"), "{}", text(&o));
    // Collect with cells missing writes the tables and says which cells are missing.
    let o = run_sweep(&sweep, &out, &["--collect"]);
    assert!(!o.status.success() && text(&o).contains("7 of 8 cells did not finish"), "{}", text(&o));
    assert_eq!(csv(&out.join("sweep.csv")).iter().filter(|r| r["status"] == "missing").count(), 7);

    // The shipped sweep files check, from the repository root, with their cell counts.
    for (file, cells) in [("sweeps/orderings-mfeat.toml", 54), ("sweeps/ablation-wiki.toml", 27)] {
        let out = tmp.path().join(file.replace('/', "-"));
        let o = seqmodal(&["sweep", file, "--out", out.to_str().unwrap(), "--emit", "slurm"], &repo());
        assert!(o.status.success(), "{file}: {}", text(&o));
        assert!(text(&o).contains(&format!("{cells} cells")), "{file}: {}", text(&o));
    }
}

/// Processes whose command line mentions `needle` (Linux /proc).
#[cfg(target_os = "linux")]
fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmd).contains(needle).then_some(pid)
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn killing_the_sweep_process_stops_its_running_cells() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    // Two long cells (500 epochs a stage), so both are surely still running when killed.
    let sweep = sweep_file(tmp.path(), "long", "seeds = [1, 2]");
    let text =
        std::fs::read_to_string(&sweep).unwrap().replace("\"train.epochs\" = 1", "\"train.epochs\" = 500");
    std::fs::write(&sweep, text).unwrap();
    let out = tmp.path().join("out");
    let mut parent = Command::new(env!("CARGO_BIN_EXE_seqmodal"))
        .args(["sweep", sweep.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--jobs", "2"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let needle = out.join("cells").display().to_string();
    let t0 = Instant::now();
    while processes_with(&needle).len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the cells did not start");
        assert!(parent.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL to the sweep alone (not its process group): no handler of ours runs.
    parent.kill().unwrap();
    parent.wait().unwrap();
    let t0 = Instant::now();
    while !processes_with(&needle).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(10), "cells still running after the sweep died");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!out.join("cells/0_s1/summary.json").exists());
}

#[cfg(target_os = "linux")]
#[test]
fn a_cell_stopped_by_a_killed_sweep_resumes_from_its_checkpoint() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    // Stage 2 long enough to be killed in (150 epochs), stage 1 one epoch.
    let sweep = sweep_file(tmp.path(), "resume", "seeds = [1]");
    let file = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("\"train.epochs\" = 1", "\"train.epochs\" = 1\n\"stages.1.epochs\" = 150");
    std::fs::write(&sweep, file).unwrap();
    let out = tmp.path().join("out");
    let mut parent = Command::new(env!("CARGO_BIN_EXE_seqmodal"))
        .args(["sweep", sweep.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let cell = loop {
        let found = std::fs::read_dir(out.join("cells"))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
            .filter(|c| c.join("checkpoints/state-1.json").is_file());
        if let Some(c) = found {
            break c;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "stage 1 did not finish");
        assert!(parent.try_wait().unwrap().is_none(), "the sweep ended before it could be killed");
        std::thread::sleep(Duration::from_millis(10));
    };
    parent.kill().unwrap();
    parent.wait().unwrap();
    assert!(!cell.join("summary.json").exists(), "the cell finished before the kill");
    let stage1 = cell.join("checkpoints/stage-1.safetensors");
    let before = std::fs::metadata(&stage1).unwrap().modified().unwrap();
    let o = run_sweep(&sweep, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Resumed after stage 1 (its checkpoint untouched), with the numbers of an unbroken run.
    assert_eq!(std::fs::metadata(&stage1).unwrap().modified().unwrap(), before);
    let fresh = tmp.path().join("fresh");
    let o = run_sweep(&sweep, &fresh, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let name = cell.file_name().unwrap();
    assert_eq!(
        std::fs::read_to_string(cell.join("metrics.csv")).unwrap(),
        std::fs::read_to_string(fresh.join("cells").join(name).join("metrics.csv")).unwrap()
    );
}
