//! `seqmodal run`: load, check, train stage by stage, write every output.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use seqmodal_learner::{run as run_experiment, Experiment, RunOptions};

use crate::output;
use crate::progress::Progress;

/// Runs one experiment file and writes its outputs.
pub fn run(path: &Path, out: Option<PathBuf>, overrides: &[String], quiet: bool) -> Result<()> {
    let exp = Experiment::load(path, overrides)?;
    let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&exp.name));
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
        exp.learner.kind.as_str(),
        exp.model.bits,
        exp.stages.len(),
        dir.display()
    );
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    seqmodal_analysis::atomic_write(&dir.join("config.toml"), exp.to_toml().as_bytes())?;
    let total_epochs: u64 = exp.stages.iter().map(|s| s.epochs as u64).sum();
    let mut progress = Progress::new(total_epochs, ds.modality_names(), quiet);
    let opts = RunOptions { checkpoint_dir: Some(dir.join("checkpoints")) };
    let result = run_experiment(&exp, &ds, &opts, &mut progress);
    progress.finish();
    let result = result?;
    let summary = output::write_outputs(&exp, &result, &dir)?;
    println!("{}", output::summary_line(&summary));
    println!("outputs: {}", dir.display());
    Ok(())
}
