//! `seqmodal sweep`: run every cell of a sweep file (a base experiment × axes) as a normal run
//! directory under `DIR/cells/<id>/`, resume by skipping finished cells, record failures, and
//! aggregate everything into `sweep.csv`, `summary.csv` and figures. `--emit slurm` writes a
//! job-array script instead, `--cell I` runs one cell (a Slurm task), `--collect` aggregates.
//!
//! Each cell runs as a child process (`seqmodal run`, the same binary) rather than on a thread
//! of this one. A cell's panic, abort or out-of-memory kill then stays in that cell and is
//! recorded from its exit status and log; candle's thread settings are per process
//! (`threads.rs` sets them through the environment before the first tensor op), which a
//! thread-per-cell design could not give each cell; and a Slurm task runs exactly the same
//! code path as a local cell. Starting a process costs milliseconds against cells of seconds
//! to minutes.

pub mod slurm;
pub mod spec;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::builder::TypedValueParser as _;
use indicatif::{ProgressBar, ProgressStyle};
use seqmodal_analysis::{atomic_write, CellStatus, SweepCell};

use spec::{Cell, Sweep};

/// What `seqmodal sweep` should do.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepArgs {
    /// Sweep file (TOML), e.g. sweeps/ablation-wiki.toml; format in docs/sweeps.md.
    pub sweep: PathBuf,
    #[command(flatten)]
    pub cells: CellArgs,
}

/// How the cells of a sweep or a tune run: the options `seqmodal sweep` and `seqmodal tune`
/// share.
#[derive(clap::Args, Clone, Debug)]
pub struct CellArgs {
    /// Output directory [default: runs/sweeps/<name>/, for `tune` runs/tunes/<name>/].
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// Cells run at once (each trains on one thread).
    #[arg(short = 'j', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub jobs: usize,
    /// Run only cell I (0-based), e.g. as a Slurm array task; no aggregation.
    #[arg(long, value_name = "I", conflicts_with_all = ["collect", "emit"])]
    pub cell: Option<usize>,
    /// Write a job-array script for a scheduler to DIR/slurm/ instead of running.
    #[arg(long, value_enum, conflicts_with = "collect")]
    pub emit: Option<Emit>,
    /// Only aggregate what the cells wrote (after a Slurm array); exits non-zero if a cell
    /// failed or is missing.
    #[arg(long)]
    pub collect: bool,
    /// Do not draw the progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Schedulers `--emit` writes scripts for.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Emit {
    /// A Slurm job array: task i runs `seqmodal sweep|tune FILE --out DIR --cell i`.
    Slurm,
}

impl CellArgs {
    /// With `--emit`: writes the job-array script of `spec` for `seqmodal <command> FILE` and
    /// says how to submit and collect it. True when it did (nothing else is to run).
    pub(crate) fn emit_script(&self, spec: &Sweep, command: &str, file: &Path, dir: &Path) -> Result<bool> {
        let Some(Emit::Slurm) = self.emit else { return Ok(false) };
        let script = slurm::emit(spec, command, file, dir)?;
        say!("{} cells: wrote {}", spec.cells.len(), script.display());
        say!("submit:  sbatch {}", script.display());
        say!("collect: seqmodal {command} {} --out {} --collect", file.display(), dir.display());
        Ok(true)
    }

    /// The cell `--cell` asks for, refused (naming `file`) when the sweep has no such cell.
    pub(crate) fn one_cell<'a>(&self, spec: &'a Sweep, file: &Path) -> Result<Option<(usize, &'a Cell)>> {
        let Some(i) = self.cell else { return Ok(None) };
        let n = spec.cells.len();
        let cell = spec.cells.get(i).with_context(|| {
            format!("--cell {i}: {} has {n} cells (0..{})", file.display(), n.saturating_sub(1))
        })?;
        Ok(Some((i, cell)))
    }
}

/// How one cell ended in this invocation.
pub(crate) enum Outcome {
    /// Finished earlier (summary.json exists): not run again.
    Skipped,
    /// Ran and finished.
    Done(f64),
    /// Ran and failed; the first line of the reason.
    Failed(String),
}

pub(crate) fn cell_dir(dir: &Path, cell: &Cell) -> PathBuf {
    dir.join("cells").join(&cell.id)
}

/// Runs the `seqmodal sweep` command.
pub fn sweep(args: &SweepArgs) -> Result<()> {
    let c = &args.cells;
    let spec = Sweep::load(&args.sweep)?;
    let dir = c.out.clone().unwrap_or_else(|| PathBuf::from("runs/sweeps").join(&spec.name));
    if c.emit_script(&spec, "sweep", &args.sweep, &dir)? {
        return Ok(());
    }
    if c.collect {
        return collect(&spec, &dir);
    }
    // A bad --cell is refused before anything is written.
    let one = c.one_cell(&spec, &args.sweep)?;
    check_finished_cells_match(&spec, &dir)?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create sweep directory {}", dir.display()))?;
    // The sweep file as run, next to its results.
    let sweep_text =
        std::fs::read(&args.sweep).with_context(|| format!("cannot read {}", args.sweep.display()))?;
    atomic_write(&dir.join("sweep.toml"), &sweep_text)?;
    if let Some((i, cell)) = one {
        return run_one(i, cell, &dir);
    }
    run_all(&spec, &dir, c.jobs.max(1), c.quiet)
}

/// `--cell I`: runs cell `i` alone (a Slurm task); an error if it fails.
pub(crate) fn run_one(i: usize, cell: &Cell, dir: &Path) -> Result<()> {
    // Under Slurm, evaluate on the task's allocation, not on every core of a shared node.
    let threads = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    match run_cell(cell, dir, threads)? {
        Outcome::Skipped => {
            say!("cell {i} ({}) finished earlier: skipped", cell.id);
            Ok(())
        }
        Outcome::Done(s) => {
            say!("cell {i} ({}) done in {s:.1} s", cell.id);
            Ok(())
        }
        Outcome::Failed(why) => {
            bail!(
                "cell {i} ({}) failed: {why} (see {})",
                cell.id,
                cell_dir(dir, cell).join("error.txt").display()
            )
        }
    }
}

/// Refuses to mix results: a finished cell whose experiment.toml differs from what the sweep
/// file now gives was run from another version of the sweep.
pub(crate) fn check_finished_cells_match(spec: &Sweep, dir: &Path) -> Result<()> {
    let stale: Vec<&str> = spec
        .cells
        .iter()
        .filter(|c| {
            let d = cell_dir(dir, c);
            d.join("summary.json").is_file()
                && std::fs::read_to_string(d.join("experiment.toml")).map_or(true, |t| t != c.text)
        })
        .map(|c| c.id.as_str())
        .collect();
    if !stale.is_empty() {
        bail!(
            "{}: {} finished cell(s) were run with a different experiment than {} now gives ({}): \
             use another --out, or delete those cells to rerun them",
            dir.display(),
            stale.len(),
            spec.path.display(),
            stale.join(", ")
        );
    }
    Ok(())
}

/// Runs one cell as a child `seqmodal run` process; skips it if it finished before.
pub(crate) fn run_cell(cell: &Cell, dir: &Path, eval_threads: usize) -> Result<Outcome> {
    let cdir = cell_dir(dir, cell);
    if cdir.join("summary.json").is_file() {
        return Ok(Outcome::Skipped);
    }
    std::fs::create_dir_all(&cdir).with_context(|| format!("cannot create {}", cdir.display()))?;
    let exp = cdir.join("experiment.toml");
    atomic_write(&exp, cell.text.as_bytes())?;
    let error_file = cdir.join("error.txt");
    if error_file.exists() {
        std::fs::remove_file(&error_file)
            .with_context(|| format!("cannot remove {}", error_file.display()))?;
    }
    let log_path = cdir.join("log.txt");
    let log =
        std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let log_err = log.try_clone().with_context(|| format!("cannot reopen {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot locate the seqmodal executable")?;
    let start = Instant::now();
    let mut cmd = Command::new(&exe);
    cmd.arg("run").arg(&exp);
    // A cell stopped part-way (its sweep was killed) continues from its last checkpoint; a
    // config.toml from another experiment makes the run fail with a message naming it.
    if cdir.join("config.toml").is_file() {
        cmd.arg("--resume").arg(&cdir);
    } else {
        cmd.arg("--out").arg(&cdir);
    }
    cmd.args(["--quiet", "--log", "warn", "--train-threads", "1", "--threads"])
        .arg(eval_threads.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    die_with_parent(&mut cmd);
    let status = cmd.status();
    let secs = start.elapsed().as_secs_f64();
    let why = match status {
        Ok(s) if s.success() && cdir.join("summary.json").is_file() => return Ok(Outcome::Done(secs)),
        Ok(s) if s.success() => "exited 0 without writing summary.json".to_string(),
        Ok(s) => format!("seqmodal run {s}"),
        Err(e) => format!("cannot start {}: {e}", exe.display()),
    };
    let tail = log_tail(&log_path, 40);
    // The run's own error line (`error: ...`) is the most useful one-line reason.
    let first =
        tail.lines().rev().find(|l| l.starts_with("error:")).map_or(why.clone(), |l| format!("{why}: {l}"));
    let text = format!(
        "cell {} ({}) failed after {secs:.1} s: {why}\n\nlast lines of log.txt:\n{tail}\n",
        cell.index, cell.id
    );
    atomic_write(&error_file, text.as_bytes())?;
    Ok(Outcome::Failed(first))
}

/// Makes the cell's process receive SIGTERM when the sweep dies (Linux): killing only the
/// sweep (`kill PID`, a scheduler's time limit) would otherwise leave its cells running. The
/// cell keeps its checkpoints, and the next `seqmodal sweep` runs it again.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let sweep_pid = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only calls prctl and
        // getppid, which are async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The sweep may have died between fork and prctl: then the signal never comes.
                if libc::getppid() as u32 != sweep_pid {
                    return Err(std::io::Error::other("the sweep process exited"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// The last `lines` lines of a file (empty if unreadable).
fn log_tail(path: &Path, lines: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs every unfinished cell, `jobs` at a time, then aggregates.
fn run_all(spec: &Sweep, dir: &Path, jobs: usize, quiet: bool) -> Result<()> {
    let n = spec.cells.len();
    let failed = run_pending(spec, dir, jobs, quiet, "sweep")?;
    aggregate(spec, dir)?;
    if !failed.is_empty() {
        return Err(failed_cells(&failed, n));
    }
    Ok(())
}

/// The error for failed cells: how many, and the first few with their reasons (each was
/// also printed as it failed; every cell directory holds its error.txt).
pub(crate) fn failed_cells(failed: &[String], n: usize) -> anyhow::Error {
    const SHOWN: usize = 5;
    let more = failed.len().saturating_sub(SHOWN);
    anyhow::anyhow!(
        "{} of {n} cells failed (error.txt in each cell directory): {}{}",
        failed.len(),
        failed[..failed.len().min(SHOWN)].join("; "),
        if more > 0 { format!("; and {more} more") } else { String::new() }
    )
}

/// Runs every unfinished cell of `spec`, `jobs` at a time (`what` names the command in the
/// first line); returns the failed cells as `id (first error line)`.
pub(crate) fn run_pending(
    spec: &Sweep,
    dir: &Path,
    jobs: usize,
    quiet: bool,
    what: &str,
) -> Result<Vec<String>> {
    let n = spec.cells.len();
    let pending: Vec<&Cell> =
        spec.cells.iter().filter(|c| !cell_dir(dir, c).join("summary.json").is_file()).collect();
    let skipped = n - pending.len();
    say!(
        "{what} {} (base {}): {n} cells, {skipped} finished earlier, {} to run, {jobs} at a time -> {}",
        spec.name,
        spec.base.display(),
        pending.len(),
        dir.display()
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Evaluation threads per cell: share the cores between the cells running at once.
    let eval_threads = (cores / jobs.min(pending.len().max(1))).max(1);
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(pending.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cells  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(500));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..jobs.min(pending.len()))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(cell) = pending.get(i) else { return Ok(()) };
                        let outcome = run_cell(cell, dir, eval_threads)?;
                        let line = match &outcome {
                            Outcome::Done(secs) => format!("cell {} done in {secs:.1} s", cell.id),
                            Outcome::Failed(why) => format!("cell {} FAILED: {why}", cell.id),
                            Outcome::Skipped => format!("cell {} finished meanwhile", cell.id),
                        };
                        if quiet {
                            if let Outcome::Failed(_) = outcome {
                                eprintln!("{line}");
                            }
                        } else {
                            bar.println(&line);
                        }
                        bar.inc(1);
                        bar.set_message(line);
                        results
                            .lock()
                            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
                            .push((cell.index, outcome));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a sweep worker thread panicked"))??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let results = results.into_inner().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    let ran = results.iter().filter(|(_, o)| matches!(o, Outcome::Done(_))).count();
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(i, o)| match o {
            Outcome::Failed(why) => Some(format!("{} ({why})", spec.cells[*i].id)),
            _ => None,
        })
        .collect();
    say!(
        "ran {ran} cells in {:.1} s ({skipped} skipped, {} failed)",
        start.elapsed().as_secs_f64(),
        failed.len()
    );
    Ok(failed)
}

/// `--collect`: aggregates what the cells (e.g. Slurm tasks) wrote; fails, after writing the
/// tables, if a cell failed or has not finished.
fn collect(spec: &Sweep, dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("{}: no such sweep directory (run the sweep or its Slurm tasks first)", dir.display());
    }
    check_finished_cells_match(spec, dir)?;
    let cells = aggregate(spec, dir)?;
    let not_ok: Vec<String> = cells
        .iter()
        .filter(|c| c.status != CellStatus::Ok)
        .map(|c| format!("{} ({})", c.id, c.status.as_str()))
        .collect();
    if !not_ok.is_empty() {
        bail!("{} of {} cells did not finish: {}", not_ok.len(), cells.len(), not_ok.join(", "));
    }
    Ok(())
}

/// Writes sweep.csv, summary.csv and the figures; returns the cells with their status.
fn aggregate(spec: &Sweep, dir: &Path) -> Result<Vec<SweepCell>> {
    let cells: Vec<SweepCell> = spec
        .cells
        .iter()
        .map(|c| {
            let d = cell_dir(dir, c);
            let status = if d.join("summary.json").is_file() {
                CellStatus::Ok
            } else if d.join("error.txt").is_file() {
                CellStatus::Failed
            } else {
                CellStatus::Missing
            };
            SweepCell {
                index: c.index,
                id: c.id.clone(),
                dir: d,
                axes: c.axes.clone(),
                experiment: c.experiment.clone(),
                learner: c.learner.clone(),
                seed: c.seed,
                bits: c.bits,
                status,
            }
        })
        .collect();
    let ok = cells.iter().filter(|c| c.status == CellStatus::Ok).count();
    let title = format!("sweep {} ({ok} of {} cells)", spec.name, cells.len());
    let out = seqmodal_analysis::aggregate_sweep(&cells, &spec.axis_columns, dir, &title)
        .with_context(|| format!("aggregating sweep {}", dir.display()))?;
    say!("wrote {} and {}", out.sweep_csv.display(), out.summary_csv.display());
    for f in out.figures.iter().filter(|f| f.extension().is_some_and(|e| e == "png")) {
        say!("figure {}", f.display());
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::failed_cells;

    #[test]
    fn failed_cells_lists_the_first_five_and_counts_the_rest() {
        let failed: Vec<String> = (0..7).map(|i| format!("c{i} (why {i})")).collect();
        let msg = failed_cells(&failed, 96).to_string();
        assert_eq!(
            msg,
            "7 of 96 cells failed (error.txt in each cell directory): \
             c0 (why 0); c1 (why 1); c2 (why 2); c3 (why 3); c4 (why 4); and 2 more"
        );
        let msg = failed_cells(&failed[..2], 4).to_string();
        assert_eq!(msg, "2 of 4 cells failed (error.txt in each cell directory): c0 (why 0); c1 (why 1)");
    }
}
