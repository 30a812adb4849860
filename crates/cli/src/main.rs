//! `seqmodal`: run continual cross-modal retrieval experiments from TOML files.

// Doc comments on the clap types are `--help` text, written for the terminal: `[train]` is a
// TOML table and `<name>` a placeholder there, not rustdoc links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

/// `println!` that never panics: `seqmodal run ... | head` closes stdout early, and that must
/// not kill a run (or leave a backtrace), so write errors on stdout are dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod bench;
mod bench_search;
mod learners;
mod output;
mod pr;
mod progress;
mod report;
mod run;
mod search;
mod sweep;
mod threads;
mod tune;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// candle allocates a fresh buffer for every tensor op; glibc malloc hands large freed
// buffers back to the kernel and page-faults them in again on the next step (measured: half
// of training time in the kernel). mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Continual (sequential) cross-modal retrieval experiments: one unified hashing model
/// learns modality after modality; every query→database pair is evaluated after every stage.
#[derive(Parser, Debug)]
#[command(name = "seqmodal", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level for messages on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "info")]
    log: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train and evaluate an experiment: writes config.toml, metrics.csv, summary.json,
    /// figures/ and checkpoints/ to the output directory.
    Run {
        /// Experiment file (TOML), e.g. experiments/wiki.toml [default with --resume: DIR/config.toml].
        #[arg(required_unless_present = "resume")]
        experiment: Option<PathBuf>,
        /// Continue the run in DIR from its last checkpoint (after a stage, or inside one with
        /// [train] checkpoint_every) after a crash or Ctrl-C; the experiment, when given, must
        /// resolve to DIR/config.toml.
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        resume: Option<PathBuf>,
        /// Output directory [default: runs/<name>/]. A run of the same resolved experiment there
        /// is replaced; a different one is refused unless --overwrite.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace a run of a different experiment in the output directory (its config,
        /// checkpoints, metrics, summary and figures).
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Override a key of the experiment file, e.g. --set learner.kind=joint --set model.bits=32
        /// (repeatable; `stages.1.epochs=5` addresses the second stage).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Do not draw progress bars.
        #[arg(long)]
        quiet: bool,
        /// Threads for candle's training kernels (one is fastest at these model sizes).
        #[arg(long, default_value_t = 1)]
        train_threads: usize,
        /// Threads for retrieval evaluation [default: all cores].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
    },
    /// Run a sweep file (a base experiment x axes: keys, orderings, learners, seeds): each cell
    /// a run directory under DIR/cells/, then DIR/sweep.csv, DIR/summary.csv and DIR/figures/.
    /// Finished cells are skipped and cells stopped part-way continue from their last checkpoint (resume); a failing cell is recorded and the others go on.
    Sweep {
        /// Sweep file (TOML), e.g. sweeps/ablation-wiki.toml; format in docs/sweeps.md.
        sweep: PathBuf,
        /// Sweep directory [default: runs/sweeps/<name>/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Cells run at once (each trains on one thread).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Run only cell I (0-based), e.g. as a Slurm array task; no aggregation.
        #[arg(long, value_name = "I", conflicts_with_all = ["collect", "emit"])]
        cell: Option<usize>,
        /// Write a job-array script for a scheduler to DIR/slurm/ instead of running.
        #[arg(long, value_enum, conflicts_with = "collect")]
        emit: Option<Emit>,
        /// Only aggregate what the cells wrote (after a Slurm array); exits non-zero if a cell
        /// failed or is missing.
        #[arg(long)]
        collect: bool,
        /// Do not draw the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Tune each learner's keys on a validation split drawn from the training rows (an equal
    /// trial budget per learner); writes trials.csv, best.csv and one tuned experiment file
    /// per learner. Resumable; parallel; Slurm like `sweep` (see docs/tuning.md).
    Tune {
        /// The tune file (TOML: base, learners, trials, sampler, seed, validation, seeds, [set], [ranges]).
        tune: PathBuf,
        /// Tune directory [default: runs/tunes/<name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Cells (trial × seed) run at once.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Run only cell I (a Slurm array task).
        #[arg(long, value_name = "I", conflicts_with_all = ["collect", "emit"])]
        cell: Option<usize>,
        /// Write a Slurm job-array script instead of running.
        #[arg(long, value_enum, conflicts_with = "collect")]
        emit: Option<Emit>,
        /// Only collect what the cells wrote into the tables and experiment files.
        #[arg(long)]
        collect: bool,
        /// Folder of the tuned experiment files [default: experiments/tuned/<base name>].
        #[arg(long, value_name = "DIR")]
        write_experiments: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Measure speed side by side in one process: training throughput against a plain candle
    /// loop (`train`), or Hamming search against a naive reference (`search`).
    Bench {
        /// What to measure.
        #[arg(value_enum)]
        what: BenchWhat,
        /// Threads for candle's CPU kernels.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Optimiser steps per loop.
        #[arg(long, default_value_t = 300)]
        steps: usize,
        /// Wikipedia dataset directory (image features are the inputs).
        #[arg(long, default_value = "datasets/wiki")]
        data: PathBuf,
        /// Backend for `bench search` (cpu, or cuda in a binary built with --features cuda).
        #[arg(long, value_enum, default_value = "cpu")]
        backend: search::Backend,
    },
    /// Exact Hamming top-k (or range) search of .npy packed codes: writes ids.npy and
    /// distances.npy, sorted by (distance, database index), and prints one JSON line of timing.
    Search(search::SearchArgs),
    /// Retrieval metrics (map, map@K, p@K, p@r2) and the PR curve by Hamming radius for .npy
    /// codes and labels; prints one JSON object.
    Eval(search::EvalArgs),
    /// List every learner: its role (reference, lower bound, strategy), its [learner] keys
    /// with type, range, default, tuning range and a one-line doc.
    Learners {
        /// Print one markdown table instead (the one docs/learners.md embeds).
        #[arg(long, conflicts_with = "names")]
        markdown: bool,
        /// Print only the names, one a line (for scripts, e.g. the justfile's reports).
        #[arg(long)]
        names: bool,
    },
    /// Aggregate finished runs (directories with metrics.csv, searched recursively) and sweeps
    /// (with sweep.csv). --out FILE.md: a markdown table per scenario, learners x (ACC, BWT,
    /// forgetting, FWT, intransigence, time, memory). --out DIR: a full report, DIR/index.md and
    /// DIR/index.html with figures (PNG + SVG) in DIR/figures/.
    Report {
        /// Run or sweep directories or folders containing them, e.g. runs/sweeps/wiki-shared.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Markdown file (ending in .md: the learner tables) or report directory to write (the
        /// full report: index.md, index.html, figures/), e.g. --out reports/learners.md.
        #[arg(long)]
        out: PathBuf,
        /// Title of the report.
        #[arg(long, default_value = "Learners across scenarios")]
        title: String,
        /// Full report: skip the precision–recall curves (recomputed from each run's final checkpoint).
        #[arg(long)]
        no_pr: bool,
    },
}

/// Schedulers `seqmodal sweep --emit` writes scripts for.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Emit {
    /// A Slurm job array: task i runs `seqmodal sweep SWEEP --out DIR --cell i`.
    Slurm,
}

/// Benchmarks `seqmodal bench` knows.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum BenchWhat {
    /// Training steps of the joint-size model (hidden 512, 64 bits, batch 128).
    Train,
    /// Hamming search: top-100 on 1M codes (64/128 bits, 1 and 2 threads) and mAP@all on
    /// 2000 × 200000, against a naive sort-based reference in the same process.
    Search,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: a log redirected to a file should be plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
    let result = match cli.command {
        Command::Run {
            experiment,
            resume,
            out,
            overwrite,
            set,
            quiet,
            train_threads,
            threads: eval_threads,
        } => {
            threads::configure(train_threads, eval_threads);
            match run::run(experiment, resume, out, overwrite, &set, quiet) {
                Err(e) if run::interrupted(&e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(130);
                }
                r => r,
            }
        }
        Command::Sweep { sweep: file, out, jobs, cell, emit, collect, quiet } => {
            sweep::sweep(&sweep::SweepArgs {
                sweep: file,
                out,
                jobs,
                cell,
                emit_slurm: matches!(emit, Some(Emit::Slurm)),
                collect,
                quiet,
            })
        }
        Command::Tune { tune: file, out, jobs, cell, emit, collect, write_experiments, quiet } => {
            tune::tune(&tune::TuneArgs {
                tune: file,
                out,
                jobs,
                cell,
                emit_slurm: matches!(emit, Some(Emit::Slurm)),
                collect,
                write_experiments,
                quiet,
            })
        }
        Command::Learners { markdown, names } => learners::learners(markdown, names),
        Command::Search(args) => search::search(&args),
        Command::Eval(args) => search::eval(&args),
        Command::Bench { what: BenchWhat::Search, backend, .. } => bench_search::bench_search(backend),
        Command::Report { runs, out, title, no_pr } => report::report(&runs, &out, &title, !no_pr),
        Command::Bench { what: BenchWhat::Train, threads, steps, data, .. } => {
            bench::bench_train(&data, threads, steps)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
