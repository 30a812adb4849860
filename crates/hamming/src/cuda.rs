//! CUDA backend (cargo feature `cuda`): custom kernels compiled at run time with NVRTC.
//!
//! The CUDA driver and NVRTC are loaded dynamically (cudarc), so this module builds on machines
//! without CUDA; [`CudaBackend::new`] fails with a typed error where there is none.
//!
//! - Top-k / range search: kernel 1 histograms every query's distances (shared-memory bins per
//!   block of queries, one pass over the database per block); the host turns each histogram
//!   into the distance threshold t that holds the k-th neighbour; kernel 2 collects exactly the
//!   items with distance <= t (count known in advance, so buffers are exact) and the host
//!   orders them by (distance, index). No cap on k: k = N returns the full ranking.
//! - mAP@all: kernel 1 with relevance bins gives every bucket's base position; kernel 3 walks
//!   the database in index order with one thread per query, exactly as the CPU engine does, and
//!   sums h/p in the same order and the same interleaved lanes ([`crate::eval::LANES`]), so GPU
//!   and CPU numbers are bit-identical.

use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};

use crate::codes::CodesView;
use crate::error::{HammingError, Result};
use crate::eval::{
    add_pr, combine_lanes, finish_metric, finish_report, validate_views, EvalReport, Hist, LANES, PR_BLOCK,
};
use crate::knn::{check_search, Neighbors, NO_DISTANCE, NO_ID};
use crate::labels::LabelSet;
use crate::metric::Metric;

const KERNELS: &str = r#"
typedef unsigned long long u64;
typedef unsigned int u32;

__device__ __forceinline__ u32 dist(const u64* a, const u64* b, u32 w) {
    u32 d = 0;
    for (u32 i = 0; i < w; ++i) d += __popcll(a[i] ^ b[i]);
    return d;
}

__device__ __forceinline__ u32 relevant(const u64* a, const u64* b, u32 lw) {
    u64 x = 0;
    for (u32 i = 0; i < lw; ++i) x |= a[i] & b[i];
    return x != 0;
}

// Bins per query: nbins = bits + 1 (distance) or 2 * (bits + 1) (2 * distance + relevant).
// Grid: x strides over the database, y = blocks of qb queries. Shared: queries, labels, bins.
extern "C" __global__ void hist_kernel(const u64* db, const u64* dl, u64 n, const u64* q, const u64* ql,
                                       u32 nq, u32 w, u32 lw, u32 with_labels, u32 nbins, u32 qb, u32* hist) {
    extern __shared__ u64 shm[];
    u32 q0 = blockIdx.y * qb;
    u32 qn = min(qb, nq - q0);
    u64* sq = shm;
    u64* sql = shm + qb * w;
    u32* bins = (u32*)(sql + qb * lw);
    for (u32 i = threadIdx.x; i < qn * w; i += blockDim.x) sq[i] = q[(u64)q0 * w + i];
    if (with_labels) for (u32 i = threadIdx.x; i < qn * lw; i += blockDim.x) sql[i] = ql[(u64)q0 * lw + i];
    for (u32 i = threadIdx.x; i < qn * nbins; i += blockDim.x) bins[i] = 0;
    __syncthreads();
    for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < n; j += (u64)gridDim.x * blockDim.x) {
        if (w == 1) {
            u64 c = db[j];
            for (u32 t = 0; t < qn; ++t) {
                u32 bin = __popcll(sq[t] ^ c);
                if (with_labels) bin = 2 * bin + relevant(sql + t * lw, dl + j * lw, lw);
                atomicAdd(&bins[t * nbins + bin], 1u);
            }
        } else {
            for (u32 t = 0; t < qn; ++t) {
                u32 bin = dist(sq + t * w, db + j * w, w);
                if (with_labels) bin = 2 * bin + relevant(sql + t * lw, dl + j * lw, lw);
                atomicAdd(&bins[t * nbins + bin], 1u);
            }
        }
    }
    __syncthreads();
    for (u32 i = threadIdx.x; i < qn * nbins; i += blockDim.x)
        if (bins[i]) atomicAdd(&hist[(u64)q0 * nbins + i], bins[i]);
}

// Appends (distance << 32 | index) of every item with distance <= thr[query] at out[offs[query] + ...].
extern "C" __global__ void collect_kernel(const u64* db, u64 n, const u64* q, u32 nq, u32 w, u32 qb,
                                          const u32* thr, const u64* offs, u32* fill, u64* out) {
    extern __shared__ u64 shm[];
    u32 q0 = blockIdx.y * qb;
    u32 qn = min(qb, nq - q0);
    for (u32 i = threadIdx.x; i < qn * w; i += blockDim.x) shm[i] = q[(u64)q0 * w + i];
    __syncthreads();
    for (u64 j = blockIdx.x * (u64)blockDim.x + threadIdx.x; j < n; j += (u64)gridDim.x * blockDim.x) {
        for (u32 t = 0; t < qn; ++t) {
            u32 d = dist(shm + t * w, db + j * w, w);
            u32 qi = q0 + t;
            if (d <= thr[qi]) {
                u32 slot = atomicAdd(&fill[qi], 1u);
                out[offs[qi] + slot] = ((u64)d << 32) | j;
            }
        }
    }
}

// One thread per query walks the database in index order (the CPU engine's order): running
// (position << 32 | hits) per distance bucket, starting from the bucket bases; every relevant
// item adds h / p to the sums of the metrics whose cut-off it is within (u64 max for map).
// Each metric's i-th term goes to lane i % 4 of its 4 partial sums (the CPU's LaneSum); the
// host combines them as (l0 + l1) + (l2 + l3).
extern "C" __global__ void ap_kernel(const u64* db, const u64* dl, u64 n, const u64* q, const u64* ql,
                                     u32 nq, u32 w, u32 lw, u32 nb, const u32* hist,
                                     const u64* cuts, u32 nm, double* sums, u64* counts) {
    extern __shared__ u64 cur_all[];
    u32 qi = blockIdx.x * blockDim.x + threadIdx.x;
    if (qi >= nq) return;
    u64* cur = cur_all + (u64)threadIdx.x * nb;
    const u32* h = hist + (u64)qi * 2 * nb;
    u64 acc = 0;
    for (u32 d = 0; d < nb; ++d) {
        cur[d] = acc;
        u64 miss = h[2 * d], hit = h[2 * d + 1];
        acc += ((miss + hit) << 32) | hit;
    }
    for (u32 m = 0; m < nm; ++m) {
        for (u32 l = 0; l < 4; ++l) sums[((u64)qi * nm + m) * 4 + l] = 0.0;
        counts[(u64)qi * nm + m] = 0;
    }
    const u64* qq = q + (u64)qi * w;
    const u64* qqq = ql + (u64)qi * lw;
    for (u64 j = 0; j < n; ++j) {
        u32 d = dist(qq, db + j * w, w);
        u32 r = relevant(qqq, dl + j * lw, lw);
        u64 v = cur[d] + ((1ull << 32) | r);
        cur[d] = v;
        if (r) {
            u64 p = v >> 32;
            double t = (double)(v & 0xffffffffull) / (double)p;
            for (u32 m = 0; m < nm; ++m) {
                if (p <= cuts[m]) {
                    u64 c = counts[(u64)qi * nm + m];
                    sums[((u64)qi * nm + m) * 4 + (c & 3)] += t;
                    counts[(u64)qi * nm + m] = c + 1;
                }
            }
        }
    }
}
"#;

// ap_kernel spells the lane count out as 4 (the `& 3` and `* 4` of its sums).
const _: () = assert!(LANES == 4);

/// Timing of a histogram-only scan ([`CudaBackend::scan_bandwidth`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScanStats {
    /// Kernel wall time (synchronised), seconds.
    pub seconds: f64,
    /// Database bytes read from device memory per second / 1e9 (one read per query block).
    pub gigabytes_per_second: f64,
    /// Query-code comparisons per second.
    pub codes_per_second: f64,
}

/// An NVIDIA GPU with the search kernels loaded.
pub struct CudaBackend {
    stream: Arc<CudaStream>,
    hist: CudaFunction,
    collect: CudaFunction,
    ap: CudaFunction,
    name: String,
}

fn cuda<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> HammingError {
    move |e| HammingError::Cuda(format!("{what}: {e:?}"))
}

/// Queries per block of the histogram/collect kernels, so bins and queries fit 48 KiB shared memory.
fn query_block(words: usize, label_words: usize, nbins: usize) -> Result<u32> {
    let per_query = 8 * (words + label_words) + 4 * nbins;
    let qb = (48 * 1024 / per_query).min(32);
    if qb == 0 {
        return Err(HammingError::Cuda(format!("codes of {nbins} bins do not fit shared memory")));
    }
    Ok(qb as u32)
}

impl CudaBackend {
    /// Opens GPU `ordinal` and compiles the kernels; an error (not a panic) without CUDA.
    pub fn new(ordinal: usize) -> Result<CudaBackend> {
        // SAFETY: these only try to dlopen the libraries; nothing is called through them yet.
        let present =
            unsafe { cudarc::driver::sys::is_culib_present() && cudarc::nvrtc::sys::is_culib_present() };
        if !present {
            return Err(HammingError::Cuda(
                "the CUDA driver (libcuda) or NVRTC (libnvrtc) library was not found".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(cuda("opening the device"))?;
        let name = ctx.name().map_err(cuda("device name"))?;
        let ptx = cudarc::nvrtc::compile_ptx(KERNELS).map_err(cuda("compiling kernels with NVRTC"))?;
        let module = ctx.load_module(ptx).map_err(cuda("loading kernels"))?;
        let f = |n: &str| module.load_function(n).map_err(cuda("loading a kernel"));
        Ok(CudaBackend {
            stream: ctx.default_stream(),
            hist: f("hist_kernel")?,
            collect: f("collect_kernel")?,
            ap: f("ap_kernel")?,
            name,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.name
    }

    fn upload<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        data: &[T],
    ) -> Result<CudaSlice<T>> {
        if data.is_empty() {
            // A one-element dummy: kernels never read it, but a zero-length allocation fails.
            return self.stream.alloc_zeros::<T>(1).map_err(cuda("allocating"));
        }
        self.stream.clone_htod(data).map_err(cuda("copying to the device"))
    }

    /// Per-query histograms: `bits + 1` bins of distance, or `2 (bits + 1)` of (distance, relevant).
    fn histograms(
        &self,
        q: &CudaSlice<u64>,
        ql: &CudaSlice<u64>,
        db: &CudaSlice<u64>,
        dl: &CudaSlice<u64>,
        shape: (usize, usize, usize, usize, usize),
        with_labels: bool,
    ) -> Result<CudaSlice<u32>> {
        let (nq, n, w, lw, bits) = shape;
        let nbins = if with_labels { 2 * (bits + 1) } else { bits + 1 };
        let lw_used = if with_labels { lw } else { 0 };
        let qb = query_block(w, lw_used, nbins)?;
        let mut hist = self.stream.alloc_zeros::<u32>((nq * nbins).max(1)).map_err(cuda("allocating"))?;
        if nq == 0 || n == 0 {
            return Ok(hist);
        }
        let shared = (8 * qb as usize * (w + lw_used) + 4 * qb as usize * nbins) as u32;
        let cfg = LaunchConfig {
            grid_dim: (((n as u64).div_ceil(256).min(1024)) as u32, (nq as u32).div_ceil(qb), 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: shared,
        };
        let (n64, nq32, w32, lw32, wl, nb32) =
            (n as u64, nq as u32, w as u32, lw_used as u32, u32::from(with_labels), nbins as u32);
        let mut b = self.stream.launch_builder(&self.hist);
        b.arg(db).arg(dl).arg(&n64).arg(q).arg(ql).arg(&nq32).arg(&w32).arg(&lw32).arg(&wl).arg(&nb32);
        b.arg(&qb).arg(&mut hist);
        // SAFETY: argument types and order match hist_kernel; buffers hold nq·w, nq·lw, n·w,
        // n·lw and nq·nbins elements, and shared memory is sized as the kernel lays it out.
        unsafe { b.launch(cfg) }.map_err(cuda("launching hist_kernel"))?;
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
        let hist = self.stream.clone_dtoh(&hist).map_err(cuda("copying histograms"))?;
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
            let mut fill = self.stream.alloc_zeros::<u32>(end - start).map_err(cuda("allocating"))?;
            let mut out =
                self.stream.alloc_zeros::<u64>((total as usize).max(1)).map_err(cuda("allocating"))?;
            let cfg = LaunchConfig {
                grid_dim: (
                    ((n as u64).div_ceil(256).min(1024)) as u32,
                    ((end - start) as u32).div_ceil(qb),
                    1,
                ),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 8 * qb * w as u32,
            };
            let (n64, nq32, w32) = (n as u64, (end - start) as u32, w as u32);
            let mut b = self.stream.launch_builder(&self.collect);
            b.arg(&ddb).arg(&n64).arg(&dqs).arg(&nq32).arg(&w32).arg(&qb).arg(&dthr).arg(&doffs);
            b.arg(&mut fill).arg(&mut out);
            // SAFETY: argument types and order match collect_kernel; `out` holds exactly the
            // items at distance <= thr per query (counted by the histogram pass).
            unsafe { b.launch(cfg) }.map_err(cuda("launching collect_kernel"))?;
            let out = self.stream.clone_dtoh(&out).map_err(cuda("copying candidates"))?;
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
        let hist = self.stream.clone_dtoh(&dhist).map_err(cuda("copying histograms"))?;
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
            let threads = (48 * 1024 / (8 * nb)).clamp(1, 64) as u32;
            if 8 * nb > 48 * 1024 {
                return Err(HammingError::Cuda(format!("{bits}-bit codes need too much shared memory")));
            }
            let dcuts = self.upload(&cuts)?;
            let mut dsums = self.stream.alloc_zeros::<f64>(nq * nm * LANES).map_err(cuda("allocating"))?;
            let mut dcounts = self.stream.alloc_zeros::<u64>(nq * nm).map_err(cuda("allocating"))?;
            let cfg = LaunchConfig {
                grid_dim: ((nq as u32).div_ceil(threads), 1, 1),
                block_dim: (threads, 1, 1),
                shared_mem_bytes: 8 * threads * nb as u32,
            };
            let (n64, nq32, w32, lw32, nb32, nm32) =
                (n as u64, nq as u32, w as u32, lw as u32, nb as u32, nm as u32);
            let mut b = self.stream.launch_builder(&self.ap);
            b.arg(&ddb).arg(&ddl).arg(&n64).arg(&dq).arg(&dql).arg(&nq32).arg(&w32).arg(&lw32).arg(&nb32);
            b.arg(&dhist).arg(&dcuts).arg(&nm32).arg(&mut dsums).arg(&mut dcounts);
            // SAFETY: argument types and order match ap_kernel; buffers are sized nq·w, nq·lw,
            // n·w, n·lw, nq·2nb, nm, nq·nm·4 and nq·nm; shared memory holds nb counters per thread.
            unsafe { b.launch(cfg) }.map_err(cuda("launching ap_kernel"))?;
            sums = self.stream.clone_dtoh(&dsums).map_err(cuda("copying sums"))?;
            counts = self.stream.clone_dtoh(&dcounts).map_err(cuda("copying counts"))?;
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
        self.stream.synchronize().map_err(cuda("synchronising"))?;
        let start = Instant::now();
        self.histograms(&dq, &dummy, &ddb, &dummy, (nq, n, w, 0, bits), false)?;
        self.stream.synchronize().map_err(cuda("synchronising"))?;
        let seconds = start.elapsed().as_secs_f64();
        let qb = query_block(w, 0, bits + 1)? as usize;
        let bytes = (n * w * 8) as f64 * nq.div_ceil(qb) as f64;
        Ok(ScanStats {
            seconds,
            gigabytes_per_second: bytes / seconds / 1e9,
            codes_per_second: (nq * n) as f64 / seconds,
        })
    }
}
