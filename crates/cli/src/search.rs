//! `seqmodal search` and `seqmodal eval`: exact Hamming search over `.npy` packed codes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use seqmodal_hamming::npy::{self, CodeFile, NpyFile};
use seqmodal_hamming::{CodesView, Engine, EvalReport, Kernel, LabelSet, Metric, Neighbors, Width};

/// Where the search runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// Multi-threaded CPU engine (SIMD popcount chosen at run time).
    #[default]
    Cpu,
    /// NVIDIA GPU through CUDA (needs a binary built with `--features cuda`).
    Cuda,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }
}

/// Options shared by `search` and `eval`: inputs, backend, threads.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Database codes: .npy uint8 (N, bits/8), packed as numpy.packbits.
    #[arg(long)]
    pub database: PathBuf,
    /// Query codes: .npy uint8 (Q, bits/8), same width as the database.
    #[arg(long)]
    pub queries: PathBuf,
    /// Backend to run on.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// CPU threads for search and evaluation (0: all cores) [default: all cores].
    #[arg(short = 'j', long, visible_alias = "eval-threads", default_value_t = 0, hide_default_value = true)]
    pub threads: usize,
    /// CPU popcount kernel: auto, portable, popcnt, avx2, sliced, avx512, sliced512 (for comparisons).
    #[arg(long, default_value = "auto")]
    pub kernel: Kernel,
    /// Use the generic any-width loop instead of the 64/128/256-bit ones (for comparisons).
    #[arg(long)]
    pub generic: bool,
}

impl Common {
    fn engine(&self) -> Engine {
        Engine { kernel: self.kernel, width: if self.generic { Width::Generic } else { Width::Specialised } }
    }

    /// Runs `f` on a rayon pool of `--threads` threads (the global pool when 0).
    fn in_pool<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        if self.threads == 0 {
            return Ok(f());
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(self.threads).build()?;
        Ok(pool.install(f))
    }

    fn threads_used(&self) -> usize {
        if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        }
    }

    fn load(&self) -> Result<(CodeFile, CodeFile)> {
        let db = CodeFile::open(&self.database).context("reading the database codes")?;
        let q = CodeFile::open(&self.queries).context("reading the query codes")?;
        if db.bits() != q.bits() {
            bail!(
                "code widths differ: database {} has {} bits ({} bytes per row), queries {} have {} bits ({} bytes per row)",
                self.database.display(),
                db.bits(),
                db.bits() / 8,
                self.queries.display(),
                q.bits(),
                q.bits() / 8
            );
        }
        Ok((db, q))
    }
}

/// `seqmodal search` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    common: Common,
    /// Neighbours per query (1 <= K <= database size).
    #[arg(short = 'k', long = "k")]
    k: usize,
    /// Range search: keep only neighbours at Hamming distance <= R (missing slots: id -1,
    /// distance 2147483647, as FAISS pads).
    #[arg(long)]
    radius: Option<u32>,
    /// Output directory for ids.npy (int64 Q×K) and distances.npy (int32 Q×K).
    #[arg(short = 'o', long)]
    out: PathBuf,
}

/// `seqmodal eval` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    #[command(flatten)]
    common: Common,
    /// Database labels: .npy multi-hot (N, C) or class ids (N,), integer or integral float.
    #[arg(long)]
    db_labels: PathBuf,
    /// Query labels: .npy multi-hot (Q, C) or class ids (Q,), integer or integral float.
    #[arg(long)]
    query_labels: PathBuf,
    /// K of map@K and p@K (1 <= K <= database size).
    #[arg(short = 'k', long = "k", default_value_t = 100)]
    k: usize,
}

/// Top-k (or range) search on the chosen backend.
fn run_knn(
    common: &Common,
    q: CodesView<'_>,
    db: CodesView<'_>,
    k: usize,
    radius: Option<u32>,
) -> Result<Neighbors> {
    match common.backend {
        Backend::Cpu => Ok(common.in_pool(|| seqmodal_hamming::knn(q, db, k, radius, common.engine()))??),
        Backend::Cuda => cuda_knn(q, db, k, radius),
    }
}

/// The `--backend cuda` engine: GPU 0.
#[cfg(feature = "cuda")]
pub(crate) fn gpu() -> Result<seqmodal_hamming::cuda::CudaBackend> {
    Ok(seqmodal_hamming::cuda::CudaBackend::new(0)?)
}

/// The `--backend cuda` engine of a build with `cuda-emulator` but not `cuda`: the CUDA kernels
/// on the CPU emulator, to rehearse `scripts/gpu-check.sh` where there is no GPU.
#[cfg(all(feature = "cuda-emulator", not(feature = "cuda")))]
pub(crate) fn gpu() -> Result<seqmodal_hamming::cuda::GpuEngine<seqmodal_hamming::cuda::Emulator>> {
    eprintln!(
        "warning: --backend cuda runs on the CPU emulator of the CUDA kernels (no GPU; results, not speed)"
    );
    Ok(seqmodal_hamming::cuda::GpuEngine::emulator())
}

/// Without CUDA support, `--backend cuda` is an error saying how to get it.
#[cfg(not(any(feature = "cuda", feature = "cuda-emulator")))]
pub(crate) fn gpu() -> Result<std::convert::Infallible> {
    bail!(
        "this seqmodal was built without CUDA support: rebuild with `cargo build --release --features cuda`"
    )
}

#[cfg(any(feature = "cuda", feature = "cuda-emulator"))]
fn cuda_knn(q: CodesView<'_>, db: CodesView<'_>, k: usize, radius: Option<u32>) -> Result<Neighbors> {
    Ok(gpu()?.knn(q, db, k, radius)?)
}

#[cfg(not(any(feature = "cuda", feature = "cuda-emulator")))]
fn cuda_knn(_: CodesView<'_>, _: CodesView<'_>, _: usize, _: Option<u32>) -> Result<Neighbors> {
    match gpu()? {}
}

/// Metrics and PR curve on the chosen backend.
fn run_eval(
    common: &Common,
    q: CodesView<'_>,
    ql: &LabelSet,
    db: CodesView<'_>,
    dl: &LabelSet,
    metrics: &[Metric],
) -> Result<EvalReport> {
    match common.backend {
        Backend::Cpu => Ok(common
            .in_pool(|| seqmodal_hamming::evaluate_with(q, ql, db, dl, metrics, common.engine(), true))??),
        Backend::Cuda => cuda_eval(q, ql, db, dl, metrics),
    }
}

#[cfg(any(feature = "cuda", feature = "cuda-emulator"))]
fn cuda_eval(
    q: CodesView<'_>,
    ql: &LabelSet,
    db: CodesView<'_>,
    dl: &LabelSet,
    metrics: &[Metric],
) -> Result<EvalReport> {
    Ok(gpu()?.evaluate(q, ql, db, dl, metrics, true)?)
}

#[cfg(not(any(feature = "cuda", feature = "cuda-emulator")))]
fn cuda_eval(
    _: CodesView<'_>,
    _: &LabelSet,
    _: CodesView<'_>,
    _: &LabelSet,
    _: &[Metric],
) -> Result<EvalReport> {
    match gpu()? {}
}

/// `seqmodal search`: writes DIR/ids.npy and DIR/distances.npy, prints one JSON line of timing.
pub fn search(args: &SearchArgs) -> Result<()> {
    let total = Instant::now();
    let common = &args.common;
    let (db, q) = common.load()?;
    if args.k == 0 || args.k > db.len() {
        bail!(
            "-k must be between 1 and the database size ({} codes in {}), got {}",
            db.len(),
            common.database.display(),
            args.k
        );
    }
    let start = Instant::now();
    let nn = run_knn(common, q.view(), db.view(), args.k, args.radius)?;
    let seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let shape = [q.len(), args.k];
    npy::write_i64(args.out.join("ids.npy"), &shape, nn.ids())?;
    npy::write_i32(args.out.join("distances.npy"), &shape, nn.distances())?;
    let compared = q.len() as f64 * db.len() as f64;
    let line = serde_json::json!({
        "command": "search",
        "backend": common.backend.name(),
        "kernel": kernel_name(common)?,
        "topk_path": match common.backend {
            Backend::Cpu => seqmodal_hamming::topk_path(common.engine(), db.bits())?,
            Backend::Cuda => "cuda",
        },
        "threads": common.threads_used(),
        "queries": q.len(),
        "database": db.len(),
        "bits": db.bits(),
        "k": args.k,
        "radius": args.radius,
        "zero_copy": db.is_zero_copy(),
        "seconds": seconds,
        "queries_per_second": q.len() as f64 / seconds,
        "codes_compared_per_second": compared / seconds,
        "total_seconds": total.elapsed().as_secs_f64(),
    });
    say!("{line}");
    Ok(())
}

fn kernel_name(common: &Common) -> Result<&'static str> {
    Ok(match common.backend {
        Backend::Cpu => common.kernel.resolve()?.name(),
        Backend::Cuda => "cuda",
    })
}

/// Reads both label files; class ids get one shared class count (max id + 1 over both).
fn load_labels(q_path: &Path, db_path: &Path) -> Result<(LabelSet, LabelSet)> {
    let read = |p: &Path, classes| npy::read_labels(p, classes).context("reading labels");
    let ql = read(q_path, None)?;
    let dl = read(db_path, None)?;
    if ql.classes() == dl.classes() {
        return Ok((ql, dl));
    }
    let is_ids = |p: &Path| -> Result<bool> { Ok(npy::holds_class_ids(&NpyFile::open(p)?)) };
    match (is_ids(q_path)?, is_ids(db_path)?) {
        (true, true) => {
            let c = Some(ql.classes().max(dl.classes()));
            Ok((read(q_path, c)?, read(db_path, c)?))
        }
        (true, false) => Ok((read(q_path, Some(dl.classes()))?, dl)),
        (false, true) => {
            let c = Some(ql.classes());
            Ok((ql, read(db_path, c)?))
        }
        (false, false) => bail!(
            "label widths differ: {} has {} classes, {} has {}",
            q_path.display(),
            ql.classes(),
            db_path.display(),
            dl.classes()
        ),
    }
}

/// `seqmodal eval`: prints one JSON object with map, map@K, p@K, p@r2 and the PR curve.
pub fn eval(args: &EvalArgs) -> Result<()> {
    let common = &args.common;
    let (db, q) = common.load()?;
    let (ql, dl) = load_labels(&args.query_labels, &args.db_labels)?;
    if db.len() != dl.len() {
        bail!(
            "{} has {} codes but {} has {} label rows",
            common.database.display(),
            db.len(),
            args.db_labels.display(),
            dl.len()
        );
    }
    if q.len() != ql.len() {
        bail!(
            "{} has {} codes but {} has {} label rows",
            common.queries.display(),
            q.len(),
            args.query_labels.display(),
            ql.len()
        );
    }
    if args.k == 0 || args.k > db.len() {
        bail!("--k must be between 1 and the database size ({}), got {}", db.len(), args.k);
    }
    if q.is_empty() {
        bail!("{} has no query codes: every metric is a mean over queries", common.queries.display());
    }
    let metrics =
        [Metric::Map, Metric::MapAt(args.k), Metric::PrecisionAt(args.k), Metric::PrecisionRadius(2)];
    let start = Instant::now();
    let report = run_eval(common, q.view(), &ql, db.view(), &dl, &metrics)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut obj = serde_json::Map::new();
    for (m, v) in metrics.iter().zip(&report.metrics) {
        obj.insert(m.to_string(), serde_json::json!(v));
    }
    let pr: Vec<_> = report
        .pr_curve
        .iter()
        .map(|p| serde_json::json!({"radius": p.radius, "precision": p.precision, "recall": p.recall}))
        .collect();
    obj.insert("pr_curve".into(), serde_json::Value::Array(pr));
    obj.insert("queries".into(), q.len().into());
    obj.insert("database".into(), db.len().into());
    obj.insert("bits".into(), db.bits().into());
    obj.insert("classes".into(), dl.classes().into());
    obj.insert("backend".into(), common.backend.name().into());
    obj.insert("kernel".into(), kernel_name(common)?.into());
    obj.insert("threads".into(), common.threads_used().into());
    obj.insert("seconds".into(), seconds.into());
    say!("{}", serde_json::Value::Object(obj));
    Ok(())
}
