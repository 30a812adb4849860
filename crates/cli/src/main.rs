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

use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand};

// candle allocates a fresh buffer for every tensor op; glibc malloc hands large freed
// buffers back to the kernel and page-faults them in again on the next step (measured: half
// of training time in the kernel). mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Continual (sequential) cross-modal retrieval experiments: one unified hashing model
/// learns modality after modality; every query→database pair is evaluated after every stage.
///
/// Threads: `--threads` (-j) is always retrieval (Hamming search and evaluation) threads,
/// `--train-threads` candle's training threads.
#[derive(Parser, Debug)]
#[command(name = "seqmodal", version = VERSION.as_str(), about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level for messages on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Info)]
    log: LogLevel,
    /// More log messages: -v is --log debug, -vv --log trace.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// `--version`: the version and the git commit this binary was built from.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(version);

fn version() -> String {
    let (commit, dirty) = (env!("SEQMODAL_GIT_COMMIT"), env!("SEQMODAL_GIT_DIRTY"));
    match (commit.get(..12), dirty) {
        (Some(c), "true") => format!("{} (commit {c}, uncommitted changes)", env!("CARGO_PKG_VERSION")),
        (Some(c), _) => format!("{} (commit {c})", env!("CARGO_PKG_VERSION")),
        (None, _) => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// An unknown command gets the nearest one as a tip: clap's own suggestion ranks by Jaro
/// similarity, which misses or misranks short typos (`rn` for `run` got `learners`); a
/// command within an edit distance of two replaces it.
fn with_suggestion(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::InvalidSubcommand {
        return e;
    }
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand) else { return e };
    let typed = typed.clone();
    let cmd = <Cli as clap::CommandFactory>::command();
    let nearest = cmd
        .get_subcommands()
        .map(|c| (edit_distance(&typed, c.get_name()), c.get_name().to_string()))
        .filter(|(d, name)| *d <= 2 && *d < name.len())
        .min();
    if let Some((_, name)) = nearest {
        e.insert(ContextKind::SuggestedSubcommand, ContextValue::Strings(vec![name]));
    }
    e
}

/// Levenshtein distance between `a` and `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Log levels of `--log`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Progress of a run (the default).
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// This level raised by `steps` (-v, -vv).
    fn raised(self, steps: u8) -> LogLevel {
        let all = [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace];
        let at = all.iter().position(|l| *l == self).unwrap_or(2);
        let floor = match steps {
            0 => 0,
            1 => 3,
            _ => 4,
        };
        all[at.max(floor)]
    }

    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train and evaluate an experiment file.
    ///
    /// Writes config.toml, metrics.csv, summary.json, train_log.csv, figures/ and checkpoints/
    /// to the output directory. One run at a time per directory (a lock file, run.lock).
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
        #[arg(short = 'o', long)]
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
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Training threads (same results for any count; 2 on a 2-core machine is ~1.5x faster
        /// for one run, but sweeps want one per cell).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
        train_threads: usize,
        /// Threads for retrieval evaluation [default: all cores].
        #[arg(
            short = 'j',
            long,
            visible_alias = "eval-threads",
            default_value_t = 0,
            hide_default_value = true
        )]
        threads: usize,
    },
    /// Run a sweep file: one run per cell of a grid of keys, orderings, learners and seeds.
    ///
    /// A sweep is a base experiment x axes (keys, orderings, learners, seeds): each cell a run
    /// directory under DIR/cells/, then DIR/sweep.csv, DIR/summary.csv and DIR/figures/.
    /// Finished cells are skipped and cells stopped part-way continue from their last checkpoint
    /// (resume); a failing cell is recorded and the others go on.
    Sweep(sweep::SweepArgs),
    /// Tune each learner's keys on a validation split of the training rows.
    ///
    /// An equal trial budget per learner; writes trials.csv, best.csv and one tuned experiment
    /// file per learner. Resumable; parallel; Slurm like `sweep` (see docs/tuning.md).
    Tune(tune::TuneArgs),
    /// Measure training or search speed against a plain reference in the same process.
    ///
    /// `train`: training throughput against a plain candle loop; `search`: Hamming search
    /// against a naive reference.
    Bench {
        /// What to measure.
        #[arg(value_enum)]
        what: BenchWhat,
        /// Threads for candle's training kernels (`bench train`); `--threads` is accepted
        /// for older scripts.
        #[arg(long, alias = "threads", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
        train_threads: usize,
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
    /// Exact Hamming top-k or range search of .npy packed codes.
    ///
    /// Writes ids.npy and distances.npy, sorted by (distance, database index), and prints one
    /// JSON line of timing.
    Search(search::SearchArgs),
    /// Retrieval metrics and the PR curve of .npy codes and labels.
    ///
    /// Metrics: map, map@K, p@K, p@r2 and the PR curve by Hamming radius; prints one JSON object.
    Eval(search::EvalArgs),
    /// Every learner: its role and its [learner] keys.
    ///
    /// Role (reference, lower bound, strategy); each key with type, range, default, tuning
    /// range and a one-line doc.
    Learners {
        /// Print one markdown table instead (the one docs/learners.md embeds).
        #[arg(long, conflicts_with = "names")]
        markdown: bool,
        /// Print only the names, one a line (for scripts, e.g. the justfile's reports).
        #[arg(long)]
        names: bool,
    },
    /// Tables and a full report (figures, HTML) from finished runs and sweeps.
    ///
    /// Aggregates finished runs (directories with metrics.csv, searched recursively) and sweeps
    /// (with sweep.csv). --out FILE.md: a markdown table per scenario, learners x (ACC, BWT,
    /// forgetting, FWT, intransigence, time, memory). --out DIR: a full report, DIR/index.md and
    /// DIR/index.html with figures (PNG + SVG) in DIR/figures/ and each table as CSV and LaTeX
    /// in DIR/tables/.
    Report {
        /// Run or sweep directories or folders containing them, e.g. runs/sweeps/wiki-shared.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Markdown file (ending in .md: the learner tables) or report directory to write (the
        /// full report: index.md, index.html, figures/, tables/), e.g. --out reports/learners.md.
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Title of the report.
        #[arg(long, default_value = "Learners across scenarios")]
        title: String,
        /// Full report: skip the precision–recall curves (recomputed from each run's final checkpoint).
        #[arg(long)]
        no_pr: bool,
        /// A paragraph printed under the report's header, e.g. where the runs' settings come
        /// from ("tuned by `seqmodal tune tunes/mfeat-shared.toml`, 12 trials per learner").
        #[arg(long)]
        note: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// e.g. `seqmodal completions bash > ~/.local/share/bash-completion/completions/seqmodal`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
    let cli = Cli::try_parse().unwrap_or_else(|e| with_suggestion(e).exit());
    let filter = tracing_subscriber::EnvFilter::new(cli.log.raised(cli.verbose).as_str());
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
            match run::run(experiment, resume, out, overwrite, &set, quiet, train_threads) {
                Err(e) if run::interrupted(&e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(130);
                }
                r => r,
            }
        }
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Tune(args) => tune::tune(&args),
        Command::Learners { markdown, names } => learners::learners(markdown, names),
        Command::Search(args) => search::search(&args),
        Command::Eval(args) => search::eval(&args),
        Command::Bench { what: BenchWhat::Search, backend, .. } => bench_search::bench_search(backend),
        Command::Report { runs, out, title, no_pr, note } => {
            report::report(&runs, &out, &title, !no_pr, note.as_deref())
        }
        Command::Bench { what: BenchWhat::Train, train_threads, steps, data, .. } => {
            bench::bench_train(&data, train_threads, steps)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "seqmodal", &mut std::io::stdout());
            Ok(())
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
