//! `seqmodal sweep SWEEP --emit slurm` (and `seqmodal tune`): a Slurm job-array script in
//! which task `i` runs `seqmodal sweep SWEEP --out DIR --cell i`.
//!
//! Every path in the script is absolute (the binary, the sweep file, the sweep directory), so
//! it runs from whatever directory Slurm starts tasks in, as long as the cluster shares the
//! filesystem with the submitting machine, as research clusters do.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use seqmodal_analysis::atomic_write;

use super::spec::Sweep;

/// Absolute form of `p` (canonical when it exists).
fn absolute(p: &Path) -> Result<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Ok(c);
    }
    Ok(std::env::current_dir().context("cannot read the working directory")?.join(p))
}

/// Single-quotes `s` for bash.
fn quote(s: &Path) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// Writes `DIR/slurm/<command>.sbatch` (and creates `DIR/slurm/` for the task logs, which
/// Slurm does not create itself) for the subcommand `command` (`sweep` or `tune`) of
/// `sweep_file`; returns the script's path.
pub fn emit(spec: &Sweep, command: &str, sweep_file: &Path, dir: &Path) -> Result<PathBuf> {
    let logs = dir.join("slurm");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let dir = absolute(dir)?;
    let logs = dir.join("slurm");
    let sweep_file = absolute(sweep_file)?;
    let exe = std::env::current_exe().context("cannot locate the seqmodal executable")?;
    let o = &spec.slurm;
    let last = spec.cells.len().saturating_sub(1);
    let mut array = format!("0-{last}");
    if let Some(k) = o.max_parallel {
        array.push_str(&format!("%{k}"));
    }
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("# seqmodal {command} {}: {} cells, one array task each.", spec.name, spec.cells.len()),
        format!("# Submit: sbatch {}", quote(&logs.join(format!("{command}.sbatch")))),
        format!("# Then:   {} {command} {} --out {} --collect", quote(&exe), quote(&sweep_file), quote(&dir)),
        format!("#SBATCH --job-name=seqmodal-{}", spec.name),
        format!("#SBATCH --array={array}"),
        format!("#SBATCH --output={}", logs.join("%A_%a.out").display()),
        format!("#SBATCH --chdir={}", dir.display()),
        format!("#SBATCH --cpus-per-task={}", o.cpus_per_task.unwrap_or(1)),
    ];
    if let Some(p) = &o.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(t) = &o.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    if let Some(m) = &o.mem {
        lines.push(format!("#SBATCH --mem={m}"));
    }
    for e in &o.extra {
        lines.push(format!("#SBATCH {e}"));
    }
    lines.push("set -euo pipefail".into());
    lines.push(format!(
        "exec {} {command} {} --out {} --cell \"$SLURM_ARRAY_TASK_ID\" --quiet",
        quote(&exe),
        quote(&sweep_file),
        quote(&dir)
    ));
    let script = logs.join(format!("{command}.sbatch"));
    atomic_write(&script, (lines.join("\n") + "\n").as_bytes())?;
    Ok(script)
}
