//! `seqmodal run`: load, check, train stage by stage, write every output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use seqmodal_learner::{run as run_experiment, Experiment, LearnerError, RunOptions};

use crate::output;
use crate::progress::Progress;

/// Runs one experiment file (or resumes a run directory) and writes its outputs.
pub fn run(
    experiment: Option<PathBuf>,
    resume: Option<PathBuf>,
    out: Option<PathBuf>,
    overwrite: bool,
    overrides: &[String],
    quiet: bool,
    train_threads: usize,
) -> Result<()> {
    let provenance = output::provenance(train_threads);
    let path = match (&experiment, &resume) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => dir.join("config.toml"),
        (None, None) => anyhow::bail!("give an experiment file or --resume DIR"),
    };
    let path = path.as_path();
    if !path.exists() {
        match &resume {
            Some(dir) if experiment.is_none() => anyhow::bail!(
                "{}: no such file: --resume needs a run directory written by `seqmodal run`",
                path.display()
            ),
            _ => {}
        }
    }
    let exp = Experiment::load(path, overrides)?;
    let dir = resume.clone().or(out).unwrap_or_else(|| PathBuf::from("runs").join(&exp.name));
    let config = exp.to_toml();
    let config_path = dir.join("config.toml");
    if resume.is_some() {
        // A directory of another experiment would mix two runs' numbers: refuse up front.
        let stored = std::fs::read_to_string(&config_path)
            .with_context(|| format!("--resume {}: cannot read {}", dir.display(), config_path.display()))?;
        if let Some(diff) = difference(&stored, &config) {
            anyhow::bail!(
                "--resume {}: {} was written by a different experiment ({diff})",
                dir.display(),
                config_path.display()
            );
        }
    }
    let ds = exp.load_dataset().with_context(|| match exp.dataset.synthetic {
        Some(_) => format!("{}: [dataset] kind = \"synthetic\"", path.display()),
        None => format!("{}: dataset.path = \"{}\"", path.display(), exp.dataset.path),
    })?;
    exp.check_dataset(&ds)?;
    tracing::info!(
        "{}: dataset {} ({}), learner {}, {} bits, {} stages -> {}",
        exp.name,
        ds.name,
        ds.modalities.iter().map(|m| format!("{} {}-d", m.name, m.dim())).collect::<Vec<_>>().join(", "),
        exp.learner.name(),
        exp.model.bits,
        exp.stages.len(),
        dir.display()
    );
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    // Held until this function returns; the OS releases it if the process dies.
    let _lock = lock_run_dir(&dir)?;
    if resume.is_none() {
        replace_previous_run(&dir, &config, overwrite)?;
    }
    if resume.is_none() {
        // Provenance as comments: the file still parses to the same experiment, and
        // comparisons (`difference`) skip them.
        let text = format!("{}{config}", provenance.toml_header());
        seqmodal_analysis::atomic_write(&config_path, text.as_bytes())?;
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // First Ctrl-C: stop at the next optimiser step (the last checkpoint, after a stage or
    // inside one with `checkpoint_every`, is on disk). A second one exits at once.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let total_epochs: u64 = exp.stages.iter().map(|s| s.epochs as u64).sum();
    let mut progress = Progress::new(total_epochs, ds.modality_names(), quiet);
    let opts = RunOptions {
        checkpoint_dir: Some(dir.join("checkpoints")),
        resume: resume.is_some(),
        interrupt: Some(interrupt),
        train_log: Some(dir.join("train_log.csv")),
    };
    let result = run_experiment(&exp, &ds, &opts, &mut progress);
    progress.finish();
    let result = result.map_err(|e| match e {
        LearnerError::Interrupted { stage } => anyhow::anyhow!(
            "interrupted during stage {stage}; the run so far is checkpointed in {} (after each \
             stage, and inside stages with [train] checkpoint_every).\n\
             resume with: seqmodal run --resume {}",
            dir.join("checkpoints").display(),
            dir.display()
        )
        .context(Interrupted),
        e => anyhow::Error::from(e),
    })?;
    let summary = output::write_outputs(&exp, &result, &dir, &provenance)?;
    say!("{}", output::summary_line(&summary));
    say!("outputs: {}", dir.display());
    Ok(())
}

/// Name of the lock file in a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// Takes the run directory's exclusive lock (an OS file lock on `dir/run.lock`, not a PID
/// file: a crashed run leaves no stale lock), so a second `seqmodal run` into the same
/// directory stops with a clear error instead of mixing two runs' files.
fn lock_run_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{} is in use by another `seqmodal run` (it holds {}); wait for it to finish, or pass \
             --out for another directory",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Marker context of an interrupted run (exit status 130, like a shell's SIGINT).
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by Ctrl-C")
    }
}

/// Whether `e` is an interrupted run.
pub fn interrupted(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Interrupted>().is_some()
}

/// Before a fresh run into `dir`: a previous run there (its `config.toml`) would leave its
/// checkpoints and figures among the new ones, mixing two runs, and a later `--resume` could
/// pick up the old checkpoints. The same experiment's run is replaced; another experiment's
/// only with `overwrite`. Only the files a run writes are removed.
fn replace_previous_run(dir: &Path, config: &str, overwrite: bool) -> Result<()> {
    let config_path = dir.join("config.toml");
    let Ok(stored) = std::fs::read_to_string(&config_path) else { return Ok(()) };
    if let Some(diff) = difference(&stored, config).filter(|_| !overwrite) {
        anyhow::bail!(
            "{} holds a run of a different experiment ({diff}): pass --overwrite to replace it, --out for \
             another directory, or --resume {} to continue that run",
            dir.display(),
            dir.display()
        );
    }
    tracing::info!("replacing the earlier run in {}", dir.display());
    // config.toml is rewritten by the new run itself.
    for name in ["checkpoints", "figures", "metrics.csv", "summary.json", "train_log.csv"] {
        let p = dir.join(name);
        let removed = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", p.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where a stored `config.toml` (its provenance comments aside) first differs from the run's
/// resolved `config`, if it does.
fn difference(stored: &str, config: &str) -> Option<String> {
    let stored = seqmodal_analysis::provenance::strip_comment_header(stored);
    (stored != config).then(|| seqmodal_learner::checkpoint::first_difference(stored, config))
}
