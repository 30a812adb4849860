//! `seqmodal report`: learner × scenario tables (`--out FILE.md`), or a full report with
//! figures (`--out DIR`: index.md, index.html, figures/) from finished runs and sweeps.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::pr::{run_pr, DatasetCache};

/// Run directories and sweep directories (holding sweep.csv; their cells are not listed as
/// runs) at or below `root`, sorted.
fn find_runs_and_sweeps(root: &Path, runs: &mut Vec<PathBuf>, sweeps: &mut Vec<PathBuf>) -> Result<()> {
    if root.join("sweep.csv").is_file() {
        sweeps.push(root.to_path_buf());
        return Ok(());
    }
    if root.join("metrics.csv").is_file() {
        runs.push(root.to_path_buf());
        return Ok(());
    }
    let entries =
        std::fs::read_dir(root).with_context(|| format!("cannot read run directory {}", root.display()))?;
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for d in dirs {
        find_runs_and_sweeps(&d, runs, sweeps)?;
    }
    Ok(())
}

fn list(roots: &[PathBuf]) -> String {
    roots.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Writes the report of the runs under `roots` to `out`: the markdown table when `out` ends
/// in `.md`, else the full report directory.
/// `note`, when given, is a paragraph under the header.
pub fn report(roots: &[PathBuf], out: &Path, title: &str, pr: bool, note: Option<&str>) -> Result<()> {
    if out.extension().is_some_and(|e| e == "md") {
        learners_table(roots, out, title, note)
    } else {
        full_report(roots, out, title, pr, note)
    }
}

/// The full report: index.md, index.html and figures/ in `out`.
fn full_report(roots: &[PathBuf], out: &Path, title: &str, pr: bool, note: Option<&str>) -> Result<()> {
    let (mut run_dirs, mut sweep_dirs) = (Vec::new(), Vec::new());
    for r in roots {
        find_runs_and_sweeps(r, &mut run_dirs, &mut sweep_dirs)?;
    }
    if run_dirs.is_empty() && sweep_dirs.is_empty() {
        bail!("no runs (directories with metrics.csv) or sweeps (with sweep.csv) under {}", list(roots));
    }
    let runs = run_dirs
        .iter()
        .map(|d| seqmodal_analysis::load_run(d).with_context(|| format!("run {}", d.display())))
        .collect::<Result<Vec<_>>>()?;
    let sweeps = sweep_dirs
        .iter()
        .map(|d| seqmodal_analysis::load_sweep(d).with_context(|| format!("sweep {}", d.display())))
        .collect::<Result<Vec<_>>>()?;
    let mut curves = Vec::new();
    if pr {
        let mut cache = DatasetCache::default();
        for d in &run_dirs {
            match run_pr(d, &mut cache) {
                Ok(Some(c)) => curves.push(c),
                Ok(None) => tracing::warn!("{}: no final checkpoint, no PR curve", d.display()),
                // A run whose dataset or checkpoint cannot be read still gets every other section.
                Err(e) => tracing::warn!("{}: no PR curve: {e:#}", d.display()),
            }
        }
    }
    let pr_note = if pr {
        format!(
            "Recomputed by `seqmodal report` from each run's final checkpoint and dataset ({} of {} runs): \
             clean test queries, database re-encoded by the final model (runs with query drift or a \
             frozen database evaluated differently during training).",
            curves.len(),
            runs.len()
        )
    } else {
        "Not computed (`--no-pr`).".to_string()
    };
    let inputs = seqmodal_analysis::ReportInputs {
        title: title.to_string(),
        note: note.map(str::to_string),
        runs,
        sweeps,
        pr: curves,
        pr_note,
        sources: roots.iter().map(|p| p.display().to_string()).collect(),
        // The report renders no model: candle's training threads do not apply.
        provenance: Some(crate::output::provenance(1)),
    };
    let files = seqmodal_analysis::write_report(&inputs, out)
        .with_context(|| format!("writing the report to {}", out.display()))?;
    say!(
        "{} and {} ({} figure files, {} table files) from {} and {}",
        files.markdown.display(),
        files.html.display(),
        files.figures.len(),
        files.tables.len(),
        seqmodal_analysis::report::count(inputs.runs.len(), "run"),
        seqmodal_analysis::report::count(inputs.sweeps.len(), "sweep")
    );
    Ok(())
}

/// Aggregates the runs under `roots` into a markdown report written to `out`.
fn learners_table(roots: &[PathBuf], out: &Path, title: &str, note: Option<&str>) -> Result<()> {
    // Sweep cells stay out: they vary what the table holds fixed (orderings, keys), and
    // would join the rows of their learner and scenario.
    let (mut dirs, mut sweeps) = (Vec::new(), Vec::new());
    for r in roots {
        find_runs_and_sweeps(r, &mut dirs, &mut sweeps)?;
    }
    for s in &sweeps {
        tracing::info!("{}: a sweep, left out of the learner table", s.display());
    }
    if dirs.is_empty() {
        bail!("no runs (directories with metrics.csv) under {}", list(roots));
    }
    let runs = dirs
        .iter()
        .map(|d| seqmodal_analysis::load_run(d).with_context(|| format!("run {}", d.display())))
        .collect::<Result<Vec<_>>>()?;
    let body = seqmodal_analysis::learners_report(&runs);
    let text = format!(
        "# {title}\n\nGenerated by `seqmodal report` from {} (metrics.csv of each; run facts from summary.json).\n\
         Values are mean ± sample std over seeds. ACC: mean final mAP over cross-modal pairs; BWT, forgetting \
         (max over previous stages − final), FWT and intransigence as defined in docs/metrics.md; \
         intransigence against the `joint` run of the same seed; train s: seconds spent training (wall clock: runs that shared a machine vary); compute: sample passes per stage sample \
         (1.0 = finetune).\n{}{body}",
        seqmodal_analysis::report::count(runs.len(), "run"),
        note.map(|n| format!("\n{n}\n")).unwrap_or_default()
    );
    seqmodal_analysis::atomic_write(out, text.as_bytes())?;
    say!("{text}");
    Ok(())
}
