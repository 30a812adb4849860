//! Fused CPU kernels of the training step, as candle custom ops: a linear layer with its
//! activation (forward and backward), and the whole three-term loss.
//!
//! candle runs a layer as transpose, matmul, broadcast add and activation, each op a
//! fresh buffer, and its backward as a dozen more; for batches of 128 that per-op cost
//! was as large as the arithmetic. Here each layer is one gemm plus one pass forward and
//! three gemms plus one pass backward, and the loss is one op whose backward writes the
//! gradients of the codes and logits directly.
//!
//! Threads: every gemm's output is cut into tiles that depend only on the shapes (at most
//! [`TILE_ROWS`] x [`TILE_COLS`], see [`tile_shape`]), each tile a single-threaded gemm, and
//! every sum runs in one fixed order. Tiles then run on the training pool when it has
//! several threads, and results are bit-identical whatever the thread count.

use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard, OnceLock};

use candle_core::utils::BarrierPool;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Storage, Tensor};

/// Rows per block of the elementwise passes (fixed: a split never depends on threads).
const CHUNK_ROWS: usize = 64;

/// Largest output tile of a split gemm: a whole batch of 128 rows by 64 columns.
const TILE_ROWS: usize = 128;
const TILE_COLS: usize = 64;
/// Outputs with fewer tiles than this get shorter ones, down to [`MIN_TILE_ROWS`].
const MIN_TILES: usize = 4;
const MIN_TILE_ROWS: usize = 16;

/// Rows per block of the pairwise loss.
const PAIR_ROWS: usize = 32;

/// The training thread pool: candle's own barrier pool (sized from `RAYON_NUM_THREADS`, or
/// `CANDLE_NUM_THREADS`), `None` for one thread, which runs every block in order in place.
///
/// Why candle's pool and not a rayon pool of our own: its workers spin briefly between ops
/// before parking, where rayon's sleep after each one. A step runs ~15 short parallel ops,
/// and with a rayon pool beside candle's spinning workers the second thread bought nothing
/// (88 000 context switches in a 4 s bench; two threads as fast as one). One pool also
/// means no more threads than cores.
///
/// Decided once: the thread count is an environment variable, read here on first use rather
/// than on each of the step's ops.
pub(crate) fn pool() -> Option<&'static BarrierPool> {
    static POOL: OnceLock<Option<&'static BarrierPool>> = OnceLock::new();
    *POOL.get_or_init(|| (candle_core::utils::get_num_threads() > 1).then(candle_core::utils::barrier_pool))
}

/// Calls `f(i)` for every block `i` in `0..blocks`, on `par` when given. Each block runs
/// whole on one thread, so which thread takes which block never changes a result.
pub(crate) fn for_each_block(par: Option<&BarrierPool>, blocks: usize, f: impl Fn(usize) + Sync) {
    match par {
        Some(p) if blocks > 1 => p.execute_chunked(blocks, |r| r.for_each(&f)),
        _ => (0..blocks).for_each(f),
    }
}

/// A block's exclusive data, handed to whichever thread runs the block (uncontended: each
/// block is locked once).
pub(crate) struct Blocks<T>(Vec<Mutex<T>>);

impl<T: Send> Blocks<T> {
    pub(crate) fn new(parts: impl IntoIterator<Item = T>) -> Self {
        Blocks(parts.into_iter().map(Mutex::new).collect())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Block `i`'s data (a panic in another block cannot leave it half-written: each block
    /// is taken once).
    pub(crate) fn take(&self, i: usize) -> MutexGuard<'_, T> {
        self.0[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Calls `f(block index, block)` on each `len`-long block of `dst`, on `par` when given.
fn each_block<F>(par: Option<&BarrierPool>, dst: &mut [f32], len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    let len = len.max(1);
    match par {
        Some(_) if dst.len() > len => {
            let blocks = Blocks::new(dst.chunks_mut(len));
            for_each_block(par, blocks.len(), |i| f(i, &mut blocks.take(i)));
        }
        // One thread (or one block): no locks to build.
        _ => dst.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c)),
    }
}

/// A read-only strided matrix view: element (r, c) is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Self { data, rs: cols, cs: 1 }
    }

    /// The same data read transposed.
    fn t(self) -> Self {
        Self { data: self.data, rs: self.cs, cs: self.rs }
    }

    /// The view starting at row `r`.
    fn at_row(self, r: usize) -> Self {
        self.skip(r * self.rs)
    }

    /// The view starting at column `c`.
    fn at_col(self, c: usize) -> Self {
        self.skip(c * self.cs)
    }

    /// The view starting `n` values further into its data (empty past the end).
    fn skip(self, n: usize) -> Self {
        Self { data: &self.data[n.min(self.data.len())..], ..self }
    }

    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// A pointer to a destination whose tiles different threads write (each tile once, and
/// tiles never overlap).
#[derive(Clone, Copy)]
struct SharedDst(*mut f32);

// SAFETY: the pointer is only used through [`Tile`]s, which are disjoint and each handed
// to one thread; the slice it came from stays exclusively borrowed while they exist.
unsafe impl Send for SharedDst {}
unsafe impl Sync for SharedDst {}

impl SharedDst {
    /// The pointer `off` values further on.
    ///
    /// # Safety
    /// `off` must stay inside the destination.
    unsafe fn add(self, off: usize) -> Self {
        // SAFETY: the caller keeps `off` inside the destination.
        SharedDst(unsafe { self.0.add(off) })
    }
}

/// One tile of a row-major destination `stride` wide: rows `r0..r0 + rows`, columns
/// `c0..c0 + cols`.
struct Tile<'a> {
    dst: SharedDst,
    r0: usize,
    c0: usize,
    rows: usize,
    cols: usize,
    stride: usize,
    _dst: PhantomData<&'a mut [f32]>,
}

impl Tile<'_> {
    /// `tile = a[r0.., ..] b[.., c0..]`, `k` deep, on this thread.
    fn gemm(&mut self, k: usize, a: View, b: View) {
        self.gemm_at(k, a.at_row(self.r0), b.at_col(self.c0));
    }

    /// `tile = a b` for operands already cut to the tile (`a`: rows x k, `b`: k x cols).
    fn gemm_at(&mut self, k: usize, a: View, b: View) {
        assert!(a.covers(self.rows, k) && b.covers(k, self.cols), "fused gemm: operand out of bounds");
        // SAFETY: the assert keeps every read inside the operand slices; `tiled` checked
        // that the tile lies inside the destination, which no operand aliases (it is
        // exclusively borrowed) and no other tile overlaps.
        unsafe {
            gemm::gemm(
                self.rows,
                self.cols,
                k,
                self.dst.0,
                1,
                self.stride as isize,
                false,
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// Row `i` of the tile (its `cols` values).
    fn row(&mut self, i: usize) -> &mut [f32] {
        assert!(i < self.rows, "tile row {i} of {}", self.rows);
        // SAFETY: inside the tile (checked above and in `tiled`), which this borrow owns.
        unsafe { std::slice::from_raw_parts_mut(self.dst.0.add(i * self.stride), self.cols) }
    }
}

/// How an `m x n` output is cut into tiles: `(rows, cols)` per tile. It depends on the
/// shape only, never on the thread count, so every value comes out of the same gemm call
/// whatever runs it. Tiles span the whole batch where they can: a forward layer's gemm
/// then packs each slice of the weight once per step, not once per block of rows; short
/// outputs get shorter tiles so that two threads both have work.
fn tile_shape(m: usize, n: usize) -> (usize, usize) {
    let cols = TILE_COLS.min(n.max(1));
    let mut rows = TILE_ROWS;
    while rows > MIN_TILE_ROWS && m.div_ceil(rows) * n.div_ceil(cols) < MIN_TILES {
        rows /= 2;
    }
    (rows.min(m.max(1)), cols)
}

/// Calls `f` on every tile of the row-major `m x n` matrix `dst`, on `par` when given.
fn tiled<F>(par: Option<&BarrierPool>, dst: &mut [f32], m: usize, n: usize, f: F)
where
    F: Fn(&mut Tile) + Sync,
{
    assert!(dst.len() >= m * n, "fused gemm: destination of {} for {m} x {n}", dst.len());
    if m == 0 || n == 0 {
        return;
    }
    let (tr, tc) = tile_shape(m, n);
    let across = n.div_ceil(tc);
    let base = SharedDst(dst.as_mut_ptr());
    for_each_block(par, m.div_ceil(tr) * across, |t| {
        let (r0, c0) = (t / across * tr, t % across * tc);
        let mut tile = Tile {
            // SAFETY: r0 < m and c0 < n, so the offset is inside `dst`.
            dst: unsafe { base.add(r0 * n + c0) },
            r0,
            c0,
            rows: tr.min(m - r0),
            cols: tc.min(n - c0),
            stride: n,
            _dst: PhantomData,
        };
        f(&mut tile);
    });
}

/// `dst (m x n) = a (m x k) b (k x n)`, tiled on `par`.
fn gemm_tiled(par: Option<&BarrierPool>, dst: &mut [f32], m: usize, n: usize, k: usize, a: View, b: View) {
    tiled(par, dst, m, n, |t| t.gemm(k, a, b));
}

/// Activation fused into a [`Linear`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// No activation.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
}

impl Act {
    /// `row = act(row + bias)`, one loop per activation so that each vectorises.
    fn add_bias_apply(self, row: &mut [f32], bias: &[f32]) {
        crate::simd::widest(|| match self {
            Act::Identity => row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b),
            Act::Relu => row.iter_mut().zip(bias).for_each(|(v, &b)| *v = (*v + b).max(0.0)),
            Act::Tanh => row.iter_mut().zip(bias).for_each(|(v, &b)| *v = (*v + b).tanh()),
        })
    }

    /// `out = g * act'(pre-activation)`, the derivative taken from the output `y`.
    fn times_slope(self, out: &mut [f32], g: &[f32], y: &[f32]) {
        #[inline(always)]
        fn each(out: &mut [f32], g: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
            out.iter_mut().zip(g).zip(y).for_each(|((o, &g), &y)| *o = f(g, y));
        }
        // A multiplication by the slope even where it is 1 or 0: `g * 0.0` keeps g's sign.
        crate::simd::widest(|| match self {
            Act::Identity => each(out, g, y, |g, _| g * 1.0),
            Act::Relu => each(out, g, y, |g, y| g * if y > 0.0 { 1.0 } else { 0.0 }),
            Act::Tanh => each(out, g, y, |g, y| g * (1.0 - y * y)),
        })
    }
}

/// `act(x W^T + b)` for `x` (n x d), `W` (o x d), `b` (o).
pub(crate) struct Linear(pub(crate) Act);

/// The contiguous f32 data of a CPU storage (error otherwise).
fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("fused op: {what} must be f32") };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("fused op: {what} must be contiguous")
    };
    Ok(&v[a..b])
}

/// Runs `f` on the contiguous f32 data of a CPU tensor.
fn with_data<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(s) = &*storage else { candle_core::bail!("fused op: {what} must be on the CPU") };
    Ok(f(slice(s, layout, what)?))
}

fn dims2(l: &Layout, what: &str) -> candle_core::Result<(usize, usize)> {
    match l.dims() {
        &[r, c] => Ok((r, c)),
        d => candle_core::bail!("fused op: {what} must be 2-d, got {d:?}"),
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "seqmodal-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let ((n, d), (o, wd)) = (dims2(xl, "input")?, dims2(wl, "weight")?);
        if wd != d || bl.dims() != [o] {
            candle_core::bail!(
                "fused linear: input {:?}, weight {:?}, bias {:?}",
                xl.dims(),
                wl.dims(),
                bl.dims()
            );
        }
        let (x, w, b) = (slice(xs, xl, "input")?, slice(ws, wl, "weight")?, slice(bs, bl, "bias")?);
        let mut y = vec![0f32; n * o];
        let act = self.0;
        tiled(pool(), &mut y, n, o, |t| {
            // The tile's weight rows transposed first: gemm would otherwise pack them from
            // W's rows one scalar at a time, d floats apart (15 % of a one-thread step).
            // Per tile, so the transposes run in parallel too; a batch of up to TILE_ROWS
            // rows (every training step) transposes each weight row once.
            let wt = crate::simd::transpose_rows(w, d, t.c0, t.cols);
            t.gemm_at(d, View::rows(x, d).at_row(t.r0), View::rows(&wt, t.cols));
            let b = &b[t.c0..t.c0 + t.cols];
            for i in 0..t.rows {
                act.add_bias_apply(t.row(i), b);
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, d) = x.dims2()?;
        let o = w.dim(0)?;
        let grad = grad.contiguous()?;
        let par = pool();
        // Gradient at the pre-activation.
        let mut gp = vec![0f32; n * o];
        with_data(&grad, "gradient", |g| {
            with_data(y, "output", |y| {
                each_block(par, &mut gp, CHUNK_ROWS * o, |i, block| {
                    let start = i * CHUNK_ROWS * o;
                    let (g, y) = (&g[start..start + block.len()], &y[start..start + block.len()]);
                    self.0.times_slope(block, g, y);
                })
            })
        })??;
        // Bias: column sums, rows added in order.
        let mut db = vec![0f32; o];
        for row in gp.chunks(o.max(1)) {
            for (s, &v) in db.iter_mut().zip(row) {
                *s += v;
            }
        }
        let mut dw = vec![0f32; o * d];
        with_data(x, "input", |x| {
            gemm_tiled(par, &mut dw, o, d, n, View::rows(&gp, o).t(), View::rows(x, d))
        })?;
        let dx = if x.track_op() {
            let mut dx = vec![0f32; n * d];
            with_data(w, "weight", |w| {
                gemm_tiled(par, &mut dx, n, d, o, View::rows(&gp, o), View::rows(w, d))
            })?;
            Some(Tensor::from_vec(dx, (n, d), x.device())?)
        } else {
            None
        };
        Ok((dx, Some(Tensor::from_vec(dw, (o, d), w.device())?), Some(Tensor::from_vec(db, o, w.device())?)))
    }
}

/// `act(x W^T + b)` as one op with a fused backward.
pub(crate) fn linear(x: &Tensor, w: &Tensor, b: &Tensor, act: Act) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Linear(act))
}

/// The weighted three-term loss of [`crate::loss`] as one op on the codes `h` (n x bits)
/// and logits (n x classes): output `[total, classification, pairwise, quantization]`.
pub(crate) struct Loss {
    /// Multi-hot labels, row-major n x classes.
    labels: Vec<f32>,
    classes: usize,
    /// Weights of classification, pairwise and quantisation in the total.
    weights: [f32; 3],
    /// `sigmoid(theta) - S`, n x n, from the forward pass (the pairwise gradient).
    pair_grad: Mutex<Vec<f32>>,
}

impl Loss {
    pub(crate) fn new(labels: &Tensor, weights: [f64; 3]) -> candle_core::Result<Self> {
        let classes = labels.dim(1)?;
        let labels = labels.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self { labels, classes, weights: weights.map(|w| w as f32), pair_grad: Mutex::new(Vec::new()) })
    }
}

/// Row softmax pieces: the row's log-sum-exp.
fn log_sum_exp(z: &[f32]) -> f32 {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    m + z.iter().map(|&v| (v - m).exp()).sum::<f32>().ln()
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl CustomOp2 for Loss {
    fn name(&self) -> &'static str {
        "seqmodal-loss"
    }

    fn cpu_fwd(
        &self,
        hs: &CpuStorage,
        hl: &Layout,
        zs: &CpuStorage,
        zl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let ((n, bits), (zn, c)) = (dims2(hl, "codes")?, dims2(zl, "logits")?);
        if zn != n || c != self.classes || self.labels.len() != n * c {
            candle_core::bail!(
                "fused loss: codes {:?}, logits {:?}, {} labels",
                hl.dims(),
                zl.dims(),
                self.labels.len()
            );
        }
        let (h, z, y) = (slice(hs, hl, "codes")?, slice(zs, zl, "logits")?, &self.labels[..]);
        // Classification: -mean_i sum_c q_ic log softmax(z_i)_c.
        let mut cls = 0f32;
        for (zr, yr) in z.chunks(c.max(1)).zip(y.chunks(c.max(1))) {
            let count = yr.iter().sum::<f32>().max(1.0);
            let lse = log_sum_exp(zr);
            cls += zr.iter().zip(yr).map(|(&zv, &yv)| (yv / count) * (zv - lse)).sum::<f32>();
        }
        let cls = -cls / n.max(1) as f32;
        // Pairwise: theta = (8 / bits) h h^T; mean of softplus(theta) - S theta over all pairs.
        let scale = 8.0 / bits as f32;
        let par = pool();
        let mut theta = vec![0f32; n * n];
        gemm_tiled(par, &mut theta, n, n, bits, View::rows(h, bits), View::rows(h, bits).t());
        // Each block of rows sums its pairs (its own f64 partial, added in block order) and
        // turns theta into sigmoid(theta) - S, the backward's coefficient, in place.
        let blocks = n.div_ceil(PAIR_ROWS);
        let mut partial = vec![0f64; blocks];
        let pair_rows = |i: usize, block: &mut [f32]| -> f64 {
            let mut sum = 0f64;
            for (r, row) in block.chunks_mut(n).enumerate() {
                let yi = &y[(i * PAIR_ROWS + r) * c..][..c];
                for (j, t) in row.iter_mut().enumerate() {
                    let dot: f32 = yi.iter().zip(&y[j * c..(j + 1) * c]).map(|(a, b)| a * b).sum();
                    let s = dot.clamp(0.0, 1.0);
                    let th = *t * scale;
                    let e = (-th.abs()).exp();
                    sum += (th.max(0.0) + e.ln_1p() - s * th) as f64;
                    let sig = if th >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                    *t = sig - s;
                }
            }
            sum
        };
        let chunks = theta.chunks_mut((PAIR_ROWS * n).max(1)).zip(partial.iter_mut());
        if par.is_some() && n > PAIR_ROWS {
            let parts = Blocks::new(chunks);
            for_each_block(par, parts.len(), |i| {
                let (block, s) = &mut *parts.take(i);
                **s = pair_rows(i, block);
            });
        } else {
            for (i, (block, s)) in chunks.enumerate() {
                *s = pair_rows(i, block);
            }
        }
        let pair = (partial.iter().sum::<f64>() / (n * n).max(1) as f64) as f32;
        *self.pair_grad.lock().map_err(|_| candle_core::Error::Msg("poisoned loss cache".into()))? = theta;
        // Quantisation: mean (h - sign h)^2.
        let quant = h.iter().map(|&v| (v - sign(v)) * (v - sign(v))).sum::<f32>() / h.len().max(1) as f32;
        let [wc, wp, wq] = self.weights;
        let total = cls * wc + pair * wp + quant * wq;
        Ok((CpuStorage::F32(vec![total, cls, pair, quant]), Shape::from(4)))
    }

    fn bwd(
        &self,
        h: &Tensor,
        z: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, bits) = h.dims2()?;
        let c = self.classes;
        let g = grad.to_vec1::<f32>()?;
        let [wc, wp, wq] = self.weights;
        let (gc, gp, gq) = (g[0] * wc + g[1], g[0] * wp + g[2], g[0] * wq + g[3]);
        let y = &self.labels[..];
        // d/dz of -mean_i sum_c q_ic log p_ic = (p_ic sum_c q_ic - q_ic) / n.
        let mut dz = vec![0f32; n * c];
        with_data(&z.contiguous()?, "logits", |z| {
            for ((dr, zr), yr) in dz.chunks_mut(c.max(1)).zip(z.chunks(c.max(1))).zip(y.chunks(c.max(1))) {
                let count = yr.iter().sum::<f32>().max(1.0);
                let mass: f32 = yr.iter().map(|&v| v / count).sum();
                let lse = log_sum_exp(zr);
                for ((d, &zv), &yv) in dr.iter_mut().zip(zr).zip(yr) {
                    *d = gc * ((zv - lse).exp() * mass - yv / count) / n as f32;
                }
            }
        })?;
        // d/dh_i of the pairwise mean: (2 * scale / n^2) sum_j (sigmoid(theta_ij) - S_ij) h_j,
        // plus the quantisation term's 2 (h - sign h) / (n bits).
        let mut dh = vec![0f32; n * bits];
        let coef = gp * 2.0 * (8.0 / bits as f32) / (n * n) as f32;
        let qcoef = gq * 2.0 / (n * bits) as f32;
        let cache =
            self.pair_grad.lock().map_err(|_| candle_core::Error::Msg("poisoned loss cache".into()))?;
        let par = pool();
        with_data(&h.contiguous()?, "codes", |h| {
            tiled(par, &mut dh, n, bits, |t| {
                t.gemm(n, View::rows(&cache, n), View::rows(h, bits));
                for i in 0..t.rows {
                    let hr = &h[(t.r0 + i) * bits + t.c0..][..t.cols];
                    for (d, &v) in t.row(i).iter_mut().zip(hr) {
                        *d = *d * coef + (v - sign(v)) * qcoef;
                    }
                }
            });
        })?;
        Ok((
            Some(Tensor::from_vec(dh, (n, bits), h.device())?),
            Some(Tensor::from_vec(dz, (n, c), z.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss;
    use candle_core::{Device, Var};

    /// Deterministic pseudo-random values in [-1, 1) (no rng crate needed for a fixture).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// Forward values and all three gradients of the fused layer match candle's
    /// matmul + broadcast add + activation, for every activation and a batch that is not
    /// a multiple of the block size.
    #[test]
    fn linear_matches_candle_ops() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (n, d, o) = (150, 37, 70);
        for act in [Act::Identity, Act::Relu, Act::Tanh] {
            let x = Var::from_vec(values(n * d, 1), (n, d), &dev)?;
            let w = Var::from_vec(values(o * d, 2), (o, d), &dev)?;
            let b = Var::from_vec(values(o, 3), o, &dev)?;
            let pre = x.matmul(&w.t()?)?.broadcast_add(&b)?;
            let reference = match act {
                Act::Identity => pre,
                Act::Relu => pre.relu()?,
                Act::Tanh => pre.tanh()?,
            };
            let ours = linear(&x, &w, &b, act)?;
            assert!(max_diff(&ours, &reference) < 1e-5, "{act:?} forward");
            // A loss that weighs each output differently, so every gradient entry matters.
            let mix = Tensor::from_vec(values(n * o, 4), (n, o), &dev)?;
            let gr = (reference * &mix)?.sum_all()?.backward()?;
            let go = (ours * &mix)?.sum_all()?.backward()?;
            for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
                let (r, g) = (gr.get(v).expect("reference grad"), go.get(v).expect("fused grad"));
                let scale = r.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
                assert!(max_diff(r, g) / scale < 1e-5, "{act:?} d{name}: {}", max_diff(r, g));
            }
        }
        Ok(())
    }

    /// The input's gradient is only computed for inputs in the graph.
    #[test]
    fn linear_skips_untracked_input() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(values(8 * 5, 1), (8, 5), &dev)?;
        let w = Var::from_vec(values(3 * 5, 2), (3, 5), &dev)?;
        let b = Var::from_vec(values(3, 3), 3, &dev)?;
        let grads = linear(&x, &w, &b, Act::Relu)?.sum_all()?.backward()?;
        assert!(grads.get(&x).is_none() && grads.get(&w).is_some() && grads.get(&b).is_some());
        Ok(())
    }

    /// Shapes that disagree are an error, not a panic.
    #[test]
    fn linear_rejects_bad_shapes() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((4, 5), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::zeros((3, 6), candle_core::DType::F32, &dev).unwrap();
        let b = Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap();
        let err = linear(&x, &w, &b, Act::Identity).unwrap_err().to_string();
        assert!(err.contains("fused linear"), "{err}");
    }

    /// The fused loss gives the reference terms of `loss.rs` (candle ops) and the same
    /// gradients for codes and logits, with multi-label rows and a row with no label.
    #[test]
    fn loss_matches_reference() -> crate::Result<()> {
        let dev = Device::Cpu;
        let (n, bits, c) = (70, 16, 5);
        let hv: Vec<f32> = values(n * bits, 5).iter().map(|v| v.tanh()).collect();
        let h = Var::from_vec(hv, (n, bits), &dev)?;
        let z = Var::from_vec(values(n * c, 6).iter().map(|v| 3.0 * v).collect(), (n, c), &dev)?;
        let mut yv = vec![0f32; n * c];
        for i in 1..n {
            yv[i * c + i % c] = 1.0;
            if i % 7 == 0 {
                yv[i * c + (i + 2) % c] = 1.0;
            }
        }
        let y = Tensor::from_vec(yv, (n, c), &dev)?;
        let w = [1.0, 0.7, 0.3];
        let cls = loss::classification(&z, &y)?;
        let pair = loss::pairwise(&h, &h, &loss::similarity(&y, &y)?, bits)?;
        let quant = loss::quantization(&h)?;
        let total = ((cls.affine(w[0], 0.0)? + pair.affine(w[1], 0.0)?)? + quant.affine(w[2], 0.0)?)?;
        let ours = h.apply_op2(&z, Loss::new(&y, w)?)?;
        let got = ours.to_vec1::<f32>()?;
        for (k, r) in [&total, &cls, &pair, &quant].iter().enumerate() {
            let r = r.to_scalar::<f32>()?;
            assert!((got[k] - r).abs() < 1e-5 * r.abs().max(1.0), "term {k}: {} vs {r}", got[k]);
        }
        // Gradients through the total and, separately, through one term.
        for (k, reference) in [(0, &total), (2, &pair)] {
            let gr = reference.backward()?;
            let go = ours.get(k)?.backward()?;
            for (name, v) in [("h", &h), ("logits", &z)] {
                let r = gr.get(v).cloned().unwrap_or(v.zeros_like()?);
                let g = go.get(v).expect("fused grad");
                let scale = r.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-3);
                assert!(
                    max_diff(&r, g) / scale < 1e-4,
                    "term {k} d{name}: {} (scale {scale})",
                    max_diff(&r, g)
                );
            }
        }
        Ok(())
    }

    /// A split gemm gives the same bits run in order on this thread or on candle's barrier
    /// pool (one thread per core: two on CI's machines): the split depends on the shapes only.
    #[test]
    fn split_gemm_is_bit_identical_across_threads() {
        let pool = candle_core::utils::barrier_pool();
        let (m, n, k) = (300, 90, 513);
        let (a, b) = (values(m * k, 7), values(k * n, 8));
        let run = |par| {
            let mut dst = vec![0f32; m * n];
            gemm_tiled(par, &mut dst, m, n, k, View::rows(&a, k), View::rows(&b, n));
            dst
        };
        let (one, three) = (run(None), run(Some(pool)));
        assert_eq!(
            one.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            three.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        // And it is a product: one entry checked against a plain dot product in f64.
        let (i, j) = (123, 45);
        let dot: f64 = (0..k).map(|t| a[i * k + t] as f64 * b[t * n + j] as f64).sum();
        assert!((one[i * n + j] as f64 - dot).abs() < 1e-3, "{} vs {dot}", one[i * n + j]);
    }
}
