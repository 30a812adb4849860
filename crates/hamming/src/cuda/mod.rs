//! CUDA backend: custom kernels ([`KERNELS`], `kernels.cu`) and the host logic around them.
//!
//! - Top-k / range search: kernel 1 histograms every query's distances (shared-memory bins per
//!   block of queries, one pass over the database per block); the host turns each histogram
//!   into the distance threshold t that holds the k-th neighbour; kernel 2 collects exactly the
//!   items with distance <= t (count known in advance, so buffers are exact) and the host
//!   orders them by (distance, index). No cap on k: k = N returns the full ranking.
//! - mAP@all: kernel 1 with relevance bins gives every bucket's base position; kernel 3 walks
//!   the database in index order with one thread per query, exactly as the CPU engine does, and
//!   sums h/p in the same order and the same four interleaved lanes (`LaneSum` in `eval.rs`),
//!   so GPU and CPU numbers are bit-identical.
//!
//! The host logic ([`GpuEngine`]) is written once against [`Device`], which has two
//! implementations:
//! - `Driver` (cargo feature `cuda`, `CudaBackend`): a real GPU through cudarc, kernels
//!   compiled at run time with NVRTC. The driver and NVRTC are loaded dynamically, so it builds
//!   on machines without CUDA; `CudaBackend::new` fails with a typed error where there is none.
//! - `Emulator` (cargo feature `cuda-emulator`): the same kernel source compiled as C++ and run
//!   on the CPU with CUDA's execution model (a grid of blocks; a block's threads are fibers that
//!   meet at `__syncthreads`, in ascending order in even blocks and descending in odd ones;
//!   shared memory poisoned at every block start). It checks the kernels and the host logic on
//!   machines with no GPU: in tests, and through the CLI in rehearsals of `gpu-check.sh`.

use std::time::Instant;

use crate::codes::CodesView;
use crate::error::{HammingError, Result};
use crate::eval::{
    add_pr, combine_lanes, finish_metric, finish_report, validate_views, EvalReport, Hist, LANES, PR_BLOCK,
};
use crate::knn::{check_search, Neighbors, NO_DISTANCE, NO_ID};
use crate::labels::LabelSet;
use crate::metric::Metric;

#[cfg(feature = "cuda")]
mod driver;
#[cfg(feature = "cuda-emulator")]
mod emulator;

#[cfg(feature = "cuda")]
pub use driver::{CudaBackend, Driver};
#[cfg(feature = "cuda-emulator")]
pub use emulator::Emulator;

/// The kernels' CUDA C++ source: NVRTC compiles it at run time, the emulator at build time.
pub const KERNELS: &str = include_str!("kernels.cu");

// ap_kernel spells the lane count out as 4 (the `& 3` and `* 4` of its sums).
const _: () = assert!(LANES == 4);

/// Metrics one `ap_kernel` launch keeps per thread (`#define AP_METRICS` in `kernels.cu`).
const AP_METRICS: usize = 8;

/// Threads per block of the histogram and collect kernels.
const BLOCK: u32 = 256;
/// Most blocks along the database: threads stride over the rest.
const MAX_GRID_X: u64 = 1024;
/// Dynamic shared memory a block may use (CUDA's default limit without opt-in).
const SHARED_LIMIT: usize = 48 * 1024;

/// An element type the kernels take (`u32`, `u64`, `f64`).
#[cfg(feature = "cuda")]
pub trait Elem: Copy + Default + cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits {}
/// An element type the kernels take (`u32`, `u64`, `f64`).
#[cfg(not(feature = "cuda"))]
pub trait Elem: Copy + Default {}
impl Elem for u32 {}
impl Elem for u64 {}
impl Elem for f64 {}

/// A kernel launch's shape: grid, threads per block (1-D), dynamic shared memory. `repr(C)`:
/// the emulator takes it as is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Blocks along x, y, z.
    pub grid: [u32; 3],
    /// Threads per block (x only).
    pub block: u32,
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
}

/// The inputs `hist_kernel` and `ap_kernel` share (names as in `kernels.cu`).
pub struct Rows<'a, D: Device + ?Sized> {
    /// Database codes, `n·w` words.
    pub db: &'a D::Buf<u64>,
    /// Database labels, `n·lw` words (unread without labels).
    pub dl: &'a D::Buf<u64>,
    /// Database rows.
    pub n: u64,
    /// Query codes, `nq·w` words.
    pub q: &'a D::Buf<u64>,
    /// Query labels, `nq·lw` words (unread without labels).
    pub ql: &'a D::Buf<u64>,
    /// Query rows.
    pub nq: u32,
    /// Words per code.
    pub w: u32,
    /// Words per label row (0 without labels).
    pub lw: u32,
}

// Manual impls: derive would require `D: Copy`, but only references are copied.
impl<D: Device + ?Sized> Clone for Rows<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<D: Device + ?Sized> Copy for Rows<'_, D> {}

/// Inputs of `hist_kernel`; the output is passed beside them.
pub struct HistArgs<'a, D: Device + ?Sized> {
    /// Codes and labels.
    pub rows: Rows<'a, D>,
    /// 1: bins of (2·distance + relevant); 0: bins of distance.
    pub with_labels: u32,
    /// Bins per query.
    pub nbins: u32,
    /// Queries per block.
    pub qb: u32,
}

/// Inputs of `collect_kernel`; the outputs (`fill`, `out`) are passed beside them.
pub struct CollectArgs<'a, D: Device + ?Sized> {
    /// Database codes, `n·w` words.
    pub db: &'a D::Buf<u64>,
    /// Database rows.
    pub n: u64,
    /// Query codes of this batch, `nq·w` words.
    pub q: &'a D::Buf<u64>,
    /// Queries in this batch.
    pub nq: u32,
    /// Words per code.
    pub w: u32,
    /// Queries per block.
    pub qb: u32,
    /// Distance threshold per query.
    pub thr: &'a D::Buf<u32>,
    /// First output slot per query.
    pub offs: &'a D::Buf<u64>,
}

/// Inputs of `ap_kernel`; the outputs (`sums`, `counts`) are passed beside them.
pub struct ApArgs<'a, D: Device + ?Sized> {
    /// Codes and labels.
    pub rows: Rows<'a, D>,
    /// Distance buckets (bits + 1).
    pub nb: u32,
    /// (miss, hit) histograms from `hist_kernel`, `nq·2·nb`.
    pub hist: &'a D::Buf<u32>,
    /// Rank cut-off per metric (u64::MAX for none).
    pub cuts: &'a D::Buf<u64>,
    /// Metrics.
    pub nm: u32,
}

/// What the host logic needs of a device: buffers, copies and the three kernels of [`KERNELS`].
pub trait Device {
    /// A device buffer of `T`.
    type Buf<T: Elem>;
    /// The device's name.
    fn name(&self) -> &str;
    /// Theoretical peak memory bandwidth, GB/s (None where the device has no such figure).
    fn peak_gigabytes_per_second(&self) -> Option<f64>;
    /// Copies non-empty `data` to the device.
    fn upload<T: Elem>(&self, data: &[T]) -> Result<Self::Buf<T>>;
    /// A zeroed buffer of `len >= 1` elements.
    fn zeros<T: Elem>(&self, len: usize) -> Result<Self::Buf<T>>;
    /// Copies a buffer back to the host.
    fn download<T: Elem>(&self, buf: &Self::Buf<T>) -> Result<Vec<T>>;
    /// Waits for every launched kernel.
    fn synchronize(&self) -> Result<()>;
    /// Launches `hist_kernel`, adding into `hist` (`nq·nbins`).
    fn hist_kernel(&self, launch: Launch, args: HistArgs<'_, Self>, hist: &mut Self::Buf<u32>) -> Result<()>;
    /// Launches `collect_kernel`, appending into `out` at `offs` + `fill`.
    fn collect_kernel(
        &self,
        launch: Launch,
        args: CollectArgs<'_, Self>,
        fill: &mut Self::Buf<u32>,
        out: &mut Self::Buf<u64>,
    ) -> Result<()>;
    /// Launches `ap_kernel`, writing `sums` (`nq·nm·LANES`) and `counts` (`nq·nm`).
    fn ap_kernel(
        &self,
        launch: Launch,
        args: ApArgs<'_, Self>,
        sums: &mut Self::Buf<f64>,
        counts: &mut Self::Buf<u64>,
    ) -> Result<()>;
}

/// Timing of a histogram-only scan ([`GpuEngine::scan_bandwidth`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanStats {
    /// Kernel wall time (synchronised), seconds.
    pub seconds: f64,
    /// Database bytes read from device memory per second / 1e9 (one read per query block).
    pub gigabytes_per_second: f64,
    /// Query-code comparisons per second.
    pub codes_per_second: f64,
    /// The device's theoretical peak memory bandwidth, GB/s, where known.
    pub peak_gigabytes_per_second: Option<f64>,
}

impl ScanStats {
    /// Achieved database-read bandwidth as a share of the device's peak (0..1), where known.
    pub fn share_of_peak(&self) -> Option<f64> {
        self.peak_gigabytes_per_second.map(|p| self.gigabytes_per_second / p)
    }
}

/// Exact search and metrics on a [`Device`]: results equal the CPU engine's bit for bit.
pub struct GpuEngine<D: Device> {
    device: D,
}

/// Queries per block of the histogram/collect kernels, so bins and queries fit shared memory.
fn query_block(words: usize, label_words: usize, nbins: usize) -> Result<u32> {
    let per_query = 8 * (words + label_words) + 4 * nbins;
    let qb = (SHARED_LIMIT / per_query).min(32);
    if qb == 0 {
        return Err(HammingError::Cuda(format!("codes of {nbins} bins do not fit shared memory")));
    }
    Ok(qb as u32)
}

/// Blocks along the database for `n` rows.
fn grid_x(n: usize) -> u32 {
    (n as u64).div_ceil(u64::from(BLOCK)).min(MAX_GRID_X) as u32
}

impl<D: Device> GpuEngine<D> {
    /// The engine on `device`.
    pub fn with_device(device: D) -> Self {
        GpuEngine { device }
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        self.device.name()
    }

    /// `data` on the device; empty data becomes a one-element zero buffer (kernels never read
    /// it, and a zero-length allocation fails on CUDA).
    fn upload<T: Elem>(&self, data: &[T]) -> Result<D::Buf<T>> {
        if data.is_empty() {
            self.zeros(1)
        } else {
            self.device.upload(data)
        }
    }

    /// A zeroed device buffer of `max(len, 1)` elements (see [`Self::upload`]).
    fn zeros<T: Elem>(&self, len: usize) -> Result<D::Buf<T>> {
        self.device.zeros(len.max(1))
    }

    /// Per-query histograms: `bits + 1` bins of distance, or `2 (bits + 1)` of (distance, relevant).
    fn histograms(
        &self,
        q: &D::Buf<u64>,
        ql: &D::Buf<u64>,
        db: &D::Buf<u64>,
        dl: &D::Buf<u64>,
        shape: (usize, usize, usize, usize, usize),
        with_labels: bool,
    ) -> Result<D::Buf<u32>> {
        let (nq, n, w, lw, bits) = shape;
        let nbins = if with_labels { 2 * (bits + 1) } else { bits + 1 };
        let lw_used = if with_labels { lw } else { 0 };
        let qb = query_block(w, lw_used, nbins)?;
        let mut hist = self.zeros::<u32>(nq * nbins)?;
        if nq == 0 || n == 0 {
            return Ok(hist);
        }
        let launch = Launch {
            grid: [grid_x(n), (nq as u32).div_ceil(qb), 1],
            block: BLOCK,
            shared_bytes: (8 * qb as usize * (w + lw_used) + 4 * qb as usize * nbins) as u32,
        };
        let args = HistArgs {
            rows: Rows { db, dl, n: n as u64, q, ql, nq: nq as u32, w: w as u32, lw: lw_used as u32 },
            with_labels: u32::from(with_labels),
            nbins: nbins as u32,
            qb,
        };
        self.device.hist_kernel(launch, args, &mut hist)?;
        Ok(hist)
    }

    /// Exact top-k (or range) search; same results as [`crate::knn`], no cap on k.
    pub fn knn(
        &self,
        queries: CodesView<'_>,
        db: CodesView<'_>,
        k: usize,
        radius: Option<u32>,
    ) -> Result<Neighbors> {
        check_search(&queries, &db, k)?;
        let (nq, n, w, bits) = (queries.len(), db.len(), db.words_per_code(), db.bits());
        let mut ids = vec![NO_ID; nq * k];
        let mut dists = vec![NO_DISTANCE; nq * k];
        if nq == 0 {
            return Ok(Neighbors::from_parts(k, ids, dists));
        }
        let dq = self.upload(queries.as_words())?;
        let ddb = self.upload(db.as_words())?;
        let dummy = self.upload::<u64>(&[])?;
        let hist = self.histograms(&dq, &dummy, &ddb, &dummy, (nq, n, w, 0, bits), false)?;
        let hist = self.device.download(&hist)?;
        // Threshold per query: the smallest t with at least k items at distance <= t, capped
        // by the radius; the number of items <= t is then known exactly.
        let r = radius.map_or(bits, |r| (r as usize).min(bits));
        let mut thr = vec![0u32; nq];
        let mut cap = vec![0u64; nq];
        for qi in 0..nq {
            let h = &hist[qi * (bits + 1)..(qi + 1) * (bits + 1)];
            let mut seen = 0u64;
            for (t, &c) in h.iter().enumerate().take(r + 1) {
                seen += u64::from(c);
                thr[qi] = t as u32;
                if seen >= k as u64 {
                    break;
                }
            }
            cap[qi] = seen;
        }
        // Collect in batches of queries so the candidate buffer stays bounded.
        const BUDGET: u64 = 1 << 27;
        let qb = query_block(w, 0, 0)?;
        let mut start = 0;
        while start < nq {
            let mut end = start;
            let mut total = 0u64;
            while end < nq && (end == start || total + cap[end] <= BUDGET) {
                total += cap[end];
                end += 1;
            }
            let offs: Vec<u64> = cap[start..end]
                .iter()
                .scan(0u64, |a, &c| {
                    let o = *a;
                    *a += c;
                    Some(o)
                })
                .collect();
            let dqs = self.upload(&queries.as_words()[start * w..end * w])?;
            let dthr = self.upload(&thr[start..end])?;
            let doffs = self.upload(&offs)?;
            let mut fill = self.zeros::<u32>(end - start)?;
            let mut out = self.zeros::<u64>(total as usize)?;
            let launch = Launch {
                grid: [grid_x(n), ((end - start) as u32).div_ceil(qb), 1],
                block: BLOCK,
                shared_bytes: 8 * qb * w as u32,
            };
            let args = CollectArgs {
                db: &ddb,
                n: n as u64,
                q: &dqs,
                nq: (end - start) as u32,
                w: w as u32,
                qb,
                thr: &dthr,
                offs: &doffs,
            };
            self.device.collect_kernel(launch, args, &mut fill, &mut out)?;
            let out = self.device.download(&out)?;
            for (i, qi) in (start..end).enumerate() {
                let o = offs[i] as usize;
                let mut c = out[o..o + cap[qi] as usize].to_vec();
                // Keys (distance << 32 | index) are unique: the order is fixed whatever the
                // order the GPU appended them in.
                c.sort_unstable();
                for (slot, key) in c.into_iter().take(k).enumerate() {
                    ids[qi * k + slot] = (key & 0xffff_ffff) as i64;
                    dists[qi * k + slot] = (key >> 32) as i32;
                }
            }
            start = end;
        }
        Ok(Neighbors::from_parts(k, ids, dists))
    }

    /// Metrics and optional PR curve; bit-identical to [`crate::evaluate_with`].
    pub fn evaluate(
        &self,
        queries: CodesView<'_>,
        query_labels: &LabelSet,
        database: CodesView<'_>,
        database_labels: &LabelSet,
        metrics: &[Metric],
        pr_curve: bool,
    ) -> Result<EvalReport> {
        validate_views(&queries, query_labels, &database, database_labels)?;
        let (nq, n, w, lw, bits) = (
            queries.len(),
            database.len(),
            database.words_per_code(),
            database_labels.words_per_row(),
            database.bits(),
        );
        let nb = bits + 1;
        let pr_len = if pr_curve { 2 * nb } else { 0 };
        if nq == 0 {
            return Ok(finish_report(0, metrics, &[], &[], pr_len, bits));
        }
        let dq = self.upload(queries.as_words())?;
        let dql = self.upload(query_labels.as_words())?;
        let ddb = self.upload(database.as_words())?;
        let ddl = self.upload(database_labels.as_words())?;
        let dhist = self.histograms(&dq, &dql, &ddb, &ddl, (nq, n, w, lw, bits), true)?;
        let hist = self.device.download(&dhist)?;
        let cuts: Vec<u64> = metrics
            .iter()
            .map(|m| match *m {
                Metric::MapAt(k) | Metric::PrecisionAt(k) => k as u64,
                _ => u64::MAX,
            })
            .collect();
        let nm = metrics.len();
        // LANES partial sums per (query, metric), combined below as the CPU's LaneSum does.
        let (mut sums, mut counts) = (vec![0.0f64; nq * nm * LANES], vec![0u64; nq * nm]);
        if nm > 0 && n > 0 {
            let threads = (SHARED_LIMIT / (8 * nb)).clamp(1, 64) as u32;
            if 8 * nb > SHARED_LIMIT {
                return Err(HammingError::Cuda(format!("{bits}-bit codes need too much shared memory")));
            }
            let launch = Launch {
                grid: [(nq as u32).div_ceil(threads), 1, 1],
                block: threads,
                shared_bytes: 8 * threads * nb as u32,
            };
            let rows = Rows {
                db: &ddb,
                dl: &ddl,
                n: n as u64,
                q: &dq,
                ql: &dql,
                nq: nq as u32,
                w: w as u32,
                lw: lw as u32,
            };
            // The kernel keeps at most AP_METRICS metrics per thread: one launch per group.
            for (g, group) in cuts.chunks(AP_METRICS).enumerate() {
                let gm = group.len();
                let dcuts = self.upload(group)?;
                let mut dsums = self.zeros::<f64>(nq * gm * LANES)?;
                let mut dcounts = self.zeros::<u64>(nq * gm)?;
                let args = ApArgs { rows, nb: nb as u32, hist: &dhist, cuts: &dcuts, nm: gm as u32 };
                self.device.ap_kernel(launch, args, &mut dsums, &mut dcounts)?;
                let (gs, gc) = (self.device.download(&dsums)?, self.device.download(&dcounts)?);
                let first = g * AP_METRICS;
                for qi in 0..nq {
                    let (to, from) = (qi * nm + first, qi * gm);
                    sums[to * LANES..(to + gm) * LANES]
                        .copy_from_slice(&gs[from * LANES..(from + gm) * LANES]);
                    counts[to..to + gm].copy_from_slice(&gc[from..from + gm]);
                }
            }
        }
        let mut values = vec![0.0f64; nq * nm];
        let mut pr = Vec::new();
        for qi in 0..nq {
            let h = &hist[qi * 2 * nb..(qi + 1) * 2 * nb];
            let hist = Hist {
                total: (0..nb).map(|d| h[2 * d] + h[2 * d + 1]).collect(),
                hits: (0..nb).map(|d| h[2 * d + 1]).collect(),
            };
            for (m, metric) in metrics.iter().enumerate() {
                let at = (qi * nm + m) * LANES;
                let lanes = std::array::from_fn(|l| sums[at + l]);
                values[qi * nm + m] =
                    finish_metric(*metric, &hist, combine_lanes(lanes), counts[qi * nm + m]);
            }
            if pr_curve {
                // Same fixed blocks of queries as the CPU, so the sums match bit for bit.
                if qi % PR_BLOCK == 0 {
                    pr.resize(pr.len() + pr_len, 0.0);
                }
                let at = pr.len() - pr_len;
                add_pr(&hist, &mut pr[at..]);
            }
        }
        Ok(finish_report(nq, metrics, &values, &pr, pr_len, bits))
    }

    /// Times the histogram kernel alone: the distance scan's achieved bandwidth.
    pub fn scan_bandwidth(&self, queries: CodesView<'_>, db: CodesView<'_>) -> Result<ScanStats> {
        if queries.bits() != db.bits() {
            return Err(HammingError::BitsMismatch { query: queries.bits(), database: db.bits() });
        }
        let (nq, n, w, bits) = (queries.len(), db.len(), db.words_per_code(), db.bits());
        let dq = self.upload(queries.as_words())?;
        let ddb = self.upload(db.as_words())?;
        let dummy = self.upload::<u64>(&[])?;
        // Warm-up launch (module load, clocks), then the timed one.
        self.histograms(&dq, &dummy, &ddb, &dummy, (nq, n, w, 0, bits), false)?;
        self.device.synchronize()?;
        let start = Instant::now();
        self.histograms(&dq, &dummy, &ddb, &dummy, (nq, n, w, 0, bits), false)?;
        self.device.synchronize()?;
        let seconds = start.elapsed().as_secs_f64();
        let qb = query_block(w, 0, bits + 1)? as usize;
        let bytes = (n * w * 8) as f64 * nq.div_ceil(qb) as f64;
        Ok(ScanStats {
            seconds,
            gigabytes_per_second: bytes / seconds / 1e9,
            codes_per_second: (nq * n) as f64 / seconds,
            peak_gigabytes_per_second: self.device.peak_gigabytes_per_second(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ap_metrics_matches_the_kernel_source() {
        let define = format!("#define AP_METRICS {}\n", super::AP_METRICS);
        assert!(super::KERNELS.contains(&define), "kernels.cu must say `{}`", define.trim());
    }
}
