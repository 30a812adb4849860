//! Retrieval metrics over the full ranking without sorting: two linear passes per query.
//!
//! Pass 1 computes each item's key `2·distance + relevant` and a histogram of keys, which gives
//! every distance bucket's first ranking position and the hits before it. Pass 2 walks the
//! items in index order (the tie order inside a bucket), so each relevant item's ranking
//! position p and hits-so-far h are running counters: AP = Σ h/p / R, summed in index order
//! into four interleaved lanes ([`LaneSum`]). That summation order is part of the contract: the
//! CUDA backend sums the same terms in the same order and lanes, so both backends give
//! bit-identical numbers.

use rayon::prelude::*;

use crate::codes::CodesView;
use crate::error::{HammingError, Result};
#[cfg(target_arch = "x86_64")]
use crate::kernel::Kernel;
use crate::kernel::{scalar, Engine, Imp};
use crate::labels::LabelSet;
use crate::metric::Metric;

/// Database codes per pass-1 tile (distances land in an L1-sized buffer).
const TILE: usize = 2048;
/// Queries per partial sum of the PR curve: a fixed size, so sums ignore the thread count.
pub(crate) const PR_BLOCK: usize = 64;

/// Precision and recall of the items within one Hamming radius, averaged over queries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrPoint {
    /// Hamming radius r: items at distance <= r are retrieved.
    pub radius: u32,
    /// Mean over queries of relevant-retrieved / retrieved (0 for a query that retrieves nothing).
    pub precision: f64,
    /// Mean over queries of relevant-retrieved / relevant (0 for a query with no relevant item).
    pub recall: f64,
}

/// Mean metrics (in the order asked) and, if requested, the PR curve by radius 0..=bits.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Mean of each metric over all queries.
    pub metrics: Vec<f64>,
    /// One point per radius 0..=bits; empty unless requested.
    pub pr_curve: Vec<PrPoint>,
}

/// Checks that codes and labels of both sides agree (bits, classes, rows, index range).
pub(crate) fn validate_views(
    queries: &CodesView<'_>,
    query_labels: &LabelSet,
    database: &CodesView<'_>,
    database_labels: &LabelSet,
) -> Result<()> {
    if queries.bits() != database.bits() {
        return Err(HammingError::BitsMismatch { query: queries.bits(), database: database.bits() });
    }
    if query_labels.classes() != database_labels.classes() {
        return Err(HammingError::ClassMismatch {
            query: query_labels.classes(),
            database: database_labels.classes(),
        });
    }
    if queries.len() != query_labels.len() {
        return Err(HammingError::RowMismatch {
            side: "queries",
            codes: queries.len(),
            labels: query_labels.len(),
        });
    }
    if database.len() != database_labels.len() {
        return Err(HammingError::RowMismatch {
            side: "database",
            codes: database.len(),
            labels: database_labels.len(),
        });
    }
    if u32::try_from(database.len()).is_err() {
        return Err(HammingError::TooLarge(database.len()));
    }
    Ok(())
}

/// Mean metrics and optional PR curve on the CPU (see [`crate::Metric`] for the definitions).
///
/// Deterministic: per-query values are summed in query order and the PR curve in fixed blocks
/// of queries, so neither the thread count nor `engine` changes a single bit of the result.
pub fn evaluate_with(
    queries: CodesView<'_>,
    query_labels: &LabelSet,
    database: CodesView<'_>,
    database_labels: &LabelSet,
    metrics: &[Metric],
    engine: Engine,
    pr_curve: bool,
) -> Result<EvalReport> {
    validate_views(&queries, query_labels, &database, database_labels)?;
    let imp = Imp::new(engine, database.words_per_code())?;
    let columns = LabelColumns::new(database_labels);
    let nq = queries.len();
    let bits = database.bits();
    let pr_len = if pr_curve { 2 * (bits + 1) } else { 0 };
    let nblocks = nq.div_ceil(PR_BLOCK);
    let per_thread = nblocks.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let parts: Vec<(Vec<f64>, Vec<f64>)> = (0..nblocks.div_ceil(per_thread))
        .into_par_iter()
        .map(|t| {
            // Up to GROUP consecutive queries of a block go through the fused walk together
            // where it applies; either way each query's terms are its own, recorded in query
            // order.
            let mut group: Vec<Scratch> = (0..GROUP.min(nq)).map(|_| Scratch::default()).collect();
            let mut values = Vec::new();
            let mut pr = Vec::new();
            let mut row = vec![0.0; metrics.len()];
            for b in t * per_thread..((t + 1) * per_thread).min(nblocks) {
                let mut part = vec![0.0; pr_len];
                let mut record = |s: &mut Scratch, hist: &Hist| {
                    s.metrics(hist, metrics, &mut row);
                    values.extend_from_slice(&row);
                    if pr_curve {
                        add_pr(hist, &mut part);
                    }
                };
                let end = ((b + 1) * PR_BLOCK).min(nq);
                for g0 in (b * PR_BLOCK..end).step_by(GROUP) {
                    let rows = g0..(g0 + GROUP).min(end);
                    let qs: Vec<&[u64]> = rows.clone().map(|qi| queries.row(qi)).collect();
                    let qls: Vec<&[u64]> = rows.clone().map(|qi| query_labels.row(qi)).collect();
                    let group = &mut group[..rows.len()];
                    if let Some(hists) = Scratch::query_fused(group, imp, &qs, &qls, database, &columns) {
                        for (s, hist) in group.iter_mut().zip(&hists) {
                            record(s, hist);
                        }
                    } else {
                        for (s, (q, ql)) in group.iter_mut().zip(qs.iter().zip(&qls)) {
                            let hist = s.query(imp, q, ql, database, &columns);
                            record(s, &hist);
                        }
                    }
                }
                pr.extend(part);
            }
            (values, pr)
        })
        .collect();
    let (values, pr): (Vec<f64>, Vec<f64>) =
        parts.into_iter().fold((Vec::new(), Vec::new()), |(mut v, mut p), (a, b)| {
            v.extend(a);
            p.extend(b);
            (v, p)
        });
    Ok(finish_report(nq, metrics, &values, &pr, pr_len, bits))
}

/// Means from per-query metric rows and per-block PR sums, summed in a fixed order.
pub(crate) fn finish_report(
    nq: usize,
    metrics: &[Metric],
    values: &[f64],
    pr_blocks: &[f64],
    pr_len: usize,
    bits: usize,
) -> EvalReport {
    let m = metrics.len();
    let mut sums = vec![0.0f64; m];
    if m > 0 {
        for row in values.chunks_exact(m) {
            for (s, v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
    let mean = |s: f64| if nq == 0 { 0.0 } else { s / nq as f64 };
    let mut pr = vec![0.0f64; pr_len];
    if pr_len > 0 {
        for block in pr_blocks.chunks_exact(pr_len) {
            for (s, v) in pr.iter_mut().zip(block) {
                *s += v;
            }
        }
    }
    let pr_curve = if pr_len == 0 {
        Vec::new()
    } else {
        (0..=bits)
            .map(|r| PrPoint { radius: r as u32, precision: mean(pr[2 * r]), recall: mean(pr[2 * r + 1]) })
            .collect()
    };
    EvalReport { metrics: sums.into_iter().map(mean).collect(), pr_curve }
}

/// Per-distance counts of one query: `total[d]` items and `hits[d]` relevant items at distance d.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hist {
    pub total: Vec<u32>,
    pub hits: Vec<u32>,
}

impl Hist {
    fn relevant(&self) -> u64 {
        self.hits.iter().map(|&h| u64::from(h)).sum()
    }
}

/// Adds one query's precision and recall at every radius to `acc` (pairs per radius).
pub(crate) fn add_pr(hist: &Hist, acc: &mut [f64]) {
    let r_total = hist.relevant();
    let (mut c, mut h) = (0u64, 0u64);
    for (d, (&t, &hd)) in hist.total.iter().zip(&hist.hits).enumerate() {
        c += u64::from(t);
        h += u64::from(hd);
        acc[2 * d] += if c == 0 { 0.0 } else { h as f64 / c as f64 };
        acc[2 * d + 1] += if r_total == 0 { 0.0 } else { h as f64 / r_total as f64 };
    }
}

/// One relevant item of a query, in database index order: ranking position p (1-based) and the
/// number of relevant items at positions <= p, packed as `p << 32 | h`.
pub(crate) type Term = u64;

/// Interleaved partial sums per metric: the i-th term a metric adds goes to lane i % LANES.
///
/// Part of the numbers' contract (the CUDA kernel keeps the same lanes): independent lanes
/// let the divisions and adds of consecutive terms overlap, where one running sum would wait
/// for each add in turn.
pub(crate) const LANES: usize = 4;

/// Running sum of one metric in [`LANES`] interleaved lanes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LaneSum {
    lanes: [f64; LANES],
    count: u64,
}

impl LaneSum {
    /// Adds the next term.
    #[inline(always)]
    pub(crate) fn add(&mut self, x: f64) {
        self.lanes[self.count as usize % LANES] += x;
        self.count += 1;
    }

    /// The combined lanes ([`combine_lanes`]) and the number of terms added.
    pub(crate) fn finish(&self) -> (f64, u64) {
        (combine_lanes(self.lanes), self.count)
    }
}

/// A metric's sum from its lanes, pairwise: `(l0 + l1) + (l2 + l3)`.
pub(crate) fn combine_lanes(lanes: [f64; LANES]) -> f64 {
    let [a, b, c, d] = lanes;
    (a + b) + (c + d)
}

/// `x` as f64, exactly, for `x < 2^52`: integer OR and one subtraction, which vectorise
/// (a u64 → f64 conversion does not before AVX-512).
#[inline(always)]
fn exact_f64(x: u64) -> f64 {
    const TWO52: u64 = 0x4330_0000_0000_0000;
    f64::from_bits(TWO52 | x) - f64::from_bits(TWO52)
}

/// A term's `h / p`.
#[inline(always)]
fn term_ratio(t: Term) -> f64 {
    exact_f64(t & 0xffff_ffff) / exact_f64(t >> 32)
}

/// Every metric of one query from its histogram and its relevant items' terms in index order;
/// `fix` turns a stored term into its final `p << 32 | h` (identity when already final) and
/// `near` is scratch space.
///
/// Map sums every term; the same loop keeps the few terms within the largest @k cutoff, which
/// the @k metrics then sum. Each metric adds its terms in index order into [`LaneSum`] lanes,
/// as a pass of its own over all terms would — the contract shared with the CUDA backend.
pub(crate) fn per_query_metrics(
    hist: &Hist,
    terms: &[Term],
    fix: impl Fn(Term) -> Term,
    metrics: &[Metric],
    near: &mut Vec<Term>,
    out: &mut [f64],
) {
    let cutoff = |m: &Metric| match *m {
        Metric::MapAt(k) | Metric::PrecisionAt(k) => Some(k as u64),
        _ => None,
    };
    let kmax = metrics.iter().filter_map(cutoff).max().unwrap_or(0);
    let want_map = metrics.contains(&Metric::Map);
    near.clear();
    near.reserve(terms.len());
    let (kept, map) = match want_map {
        #[cfg(target_arch = "x86_64")]
        true if std::arch::is_x86_feature_detected!("avx2") => {
            // SAFETY: AVX2 was just detected.
            unsafe { map_and_near_avx2(terms, &fix, kmax, near) }
        }
        true => map_and_near(terms, &fix, kmax, near, Some(add4_portable)),
        false => map_and_near(terms, &fix, kmax, near, None::<fn(&mut [f64; LANES], &[Term; LANES])>),
    };
    // SAFETY: `map_and_near` wrote the first `kept` slots of the reserved space.
    unsafe { near.set_len(kept) };
    for (o, metric) in out.iter_mut().zip(metrics) {
        let (s, c) = match (metric, cutoff(metric)) {
            (Metric::Map, _) => (map, terms.len() as u64),
            (_, Some(k)) => {
                let mut sum = LaneSum::default();
                for &t in near.iter().filter(|t| *t >> 32 <= k) {
                    sum.add(term_ratio(t));
                }
                sum.finish()
            }
            _ => (0.0, 0),
        };
        *o = finish_metric(*metric, hist, s, c);
    }
}

/// [`map_and_near`] with Map, in AVX2: a step's four divisions in one 256-bit instruction,
/// register lane k being lane k of the sum (the same IEEE divisions and adds, so the same bits
/// as the portable loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn map_and_near_avx2(
    terms: &[Term],
    fix: &impl Fn(Term) -> Term,
    kmax: u64,
    near: &mut Vec<Term>,
) -> (usize, f64) {
    use std::arch::x86_64::*;
    let two52 = _mm256_set1_epi64x(0x4330_0000_0000_0000);
    let low = _mm256_set1_epi64x(0xffff_ffff);
    // exact_f64 four at a time.
    let exact = |x: __m256i| {
        _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, two52)), _mm256_castsi256_pd(two52))
    };
    map_and_near(
        terms,
        fix,
        kmax,
        near,
        Some(|lanes: &mut [f64; LANES], t: &[Term; LANES]| {
            let v = _mm256_set_epi64x(t[3] as i64, t[2] as i64, t[1] as i64, t[0] as i64);
            let ratio = _mm256_div_pd(exact(_mm256_and_si256(v, low)), exact(_mm256_srli_epi64::<32>(v)));
            // SAFETY: both pointers are to four f64s.
            unsafe {
                let acc = _mm256_add_pd(_mm256_loadu_pd(lanes.as_ptr()), ratio);
                _mm256_storeu_pd(lanes.as_mut_ptr(), acc);
            }
        }),
    )
}

/// Map's lane sum over all terms (`add4` adds a step's four `h / p` to the lanes; `None`
/// without Map) and every term with p <= kmax written, in order, to `near`'s reserved space;
/// returns (terms written, Map's sum). One loop with no call in it (a possible reallocation
/// would keep the running sums in memory), four terms a step so the lanes stay in registers.
#[inline(always)]
fn map_and_near(
    terms: &[Term],
    fix: &impl Fn(Term) -> Term,
    kmax: u64,
    near: &mut Vec<Term>,
    mut add4: Option<impl FnMut(&mut [f64; LANES], &[Term; LANES])>,
) -> (usize, f64) {
    let slots = &mut near.spare_capacity_mut()[..terms.len()];
    let mut kept = 0usize;
    // p <= kmax exactly when the term (p << 32 | h, with p, h < 2^32) is <= this.
    let limit = kmax.min(u32::MAX.into()) << 32 | 0xffff_ffff;
    // Branch-free: every term is written at `kept` and kept if within the cutoff.
    let mut keep = |t: Term| {
        // SAFETY: kept <= the index of this term < terms.len() = slots.len().
        unsafe { slots.get_unchecked_mut(kept).write(t) };
        kept += usize::from(t <= limit);
    };
    let mut lanes = [0.0f64; LANES];
    let (chunks, rest) = terms.as_chunks::<LANES>();
    for c in chunks {
        let t: [Term; LANES] = std::array::from_fn(|k| fix(c[k]));
        t.iter().for_each(|&tk| keep(tk));
        if let Some(add4) = &mut add4 {
            add4(&mut lanes, &t);
        }
    }
    for (k, &t) in rest.iter().enumerate() {
        let t = fix(t);
        keep(t);
        lanes[k] += term_ratio(t);
    }
    let sum = LaneSum { lanes, count: terms.len() as u64 };
    (kept, if add4.is_some() { sum.finish().0 } else { 0.0 })
}

/// The portable `add4` of [`map_and_near`].
#[inline(always)]
fn add4_portable(lanes: &mut [f64; LANES], t: &[Term; LANES]) {
    for k in 0..LANES {
        lanes[k] += term_ratio(t[k]);
    }
}

/// One metric of one query from its histogram, the lane sum ([`LaneSum`]) of h/p over the
/// relevant items it covers and their count (shared by the CPU and CUDA backends).
pub(crate) fn finish_metric(metric: Metric, hist: &Hist, sum: f64, count: u64) -> f64 {
    let n: u64 = hist.total.iter().map(|&t| u64::from(t)).sum();
    match metric {
        Metric::Map => ratio(sum, hist.relevant()),
        Metric::MapAt(_) => ratio(sum, count),
        Metric::PrecisionAt(k) => ratio(count as f64, (k as u64).min(n)),
        Metric::PrecisionRadius(r) => {
            if hist.total.is_empty() {
                return 0.0;
            }
            let upto = (r as usize).min(hist.total.len() - 1);
            let c: u64 = hist.total[..=upto].iter().map(|&t| u64::from(t)).sum();
            let h: u64 = hist.hits[..=upto].iter().map(|&t| u64::from(t)).sum();
            ratio(h as f64, c)
        }
    }
}

/// `num / den`, or 0 when `den == 0`.
fn ratio(num: f64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num / den as f64
    }
}

/// A [`Scratch::fused_walk`] compiled for one set of target features (the body is inlined,
/// so it is compiled with them).
macro_rules! fused_variant {
    ($(#[$doc:meta])* $name:ident, $features:literal) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const W: usize>(group: &mut [Scratch], args: FusedArgs<'_>) {
            Self::fused_walk::<W>(group, args)
        }
    };
}

/// What a fused walk reads besides its queries' scratches: their codes (one per scratch), the
/// database codes and label columns.
type FusedArgs<'a> = (&'a [&'a [u64]], CodesView<'a>, &'a LabelColumns<'a>);

/// A fused walk compiled for the CPU's features (unsafe to call elsewhere).
type FusedWalk = unsafe fn(&mut [Scratch], FusedArgs<'_>);

/// One query's state in a fused walk: its code, packed counters, where its next term goes (the
/// scratch's reserved terms), how many terms so far, and its label picks.
struct Walk<'a, const W: usize> {
    q: [u64; W],
    cur: &'a mut [u64; SMALL],
    out: *mut Term,
    /// u32: packed passes have n < 2^24 (or 2^23), and a 32-bit add needs no separate
    /// zero-extension.
    nt: u32,
    picks: &'a [Pick],
}

impl<const W: usize> Walk<'_, W> {
    /// Counts the next items, of codes `codes` and increments `incs` (`1 << 32 | relevant`: one
    /// more item in the bucket, and maybe one more hit), in index order.
    #[inline(always)]
    fn tile(&mut self, codes: &[[u64; W]], incs: &[u64]) {
        // Locals, not `self.` fields, in the loop: a store through one could alias another
        // (the query code too, which would be reloaded for every item).
        let (q, cur, out, mut nt) = (self.q, &mut *self.cur, self.out, self.nt);
        let mut step = |c: &[u64; W], inc: u64| {
            let d = scalar::dist(&q, c);
            // Branch-free, as in `pass`; the distance travels in the packed counter.
            let v = cur.bump(d, inc);
            // SAFETY: nt counts relevant items seen so far, < n <= the reserved capacity.
            unsafe { out.add(nt as usize).write(v) };
            nt += inc as u32;
        };
        // Four items per loop step.
        let (cq, cr) = codes.as_chunks::<4>();
        let (iq, ir) = incs.as_chunks::<4>();
        for (c4, i4) in cq.iter().zip(iq) {
            for (c, &i) in c4.iter().zip(i4) {
                step(c, i);
            }
        }
        for (c, &i) in cr.iter().zip(ir) {
            step(c, i);
        }
        self.nt = nt;
    }
}

/// Database labels by column: word `w` of every row, contiguous. Relevance to a query then
/// reads only the columns of the query's own label words, in loops that vectorise, whatever
/// the number of classes.
pub(crate) struct LabelColumns<'a> {
    /// `words` columns of `n` words (borrowed as is for one word per row).
    cols: std::borrow::Cow<'a, [u64]>,
    n: usize,
}

/// One label word of a query: (column, the query's bits in it), for its non-zero words only.
type Pick = (usize, u64);

impl<'a> LabelColumns<'a> {
    /// Transposes `labels` (once per evaluation; a copy only for more than 64 classes).
    pub(crate) fn new(labels: &'a LabelSet) -> LabelColumns<'a> {
        let (n, lw) = (labels.len(), labels.words_per_row());
        let words = labels.as_words();
        let cols = if lw == 1 {
            std::borrow::Cow::Borrowed(words)
        } else {
            let mut t = vec![0u64; n * lw];
            for (j, row) in words.chunks_exact(lw).enumerate() {
                for (w, &x) in row.iter().enumerate() {
                    t[w * n + j] = x;
                }
            }
            std::borrow::Cow::Owned(t)
        };
        LabelColumns { cols, n }
    }

    /// The query's non-zero label words (`ql`: one row of query labels) into `picks`.
    fn picks(ql: &[u64], picks: &mut Vec<Pick>) {
        picks.clear();
        picks.extend(ql.iter().copied().enumerate().filter(|&(_, m)| m != 0));
    }

    /// Each of database rows `rows`'s increment into `incs`: `1 << 32 | relevant` (one more
    /// item in its bucket, and maybe one more hit); relevant = shares a label with the query
    /// whose label words are `picks`.
    #[inline(always)]
    fn increments(&self, picks: &[Pick], rows: std::ops::Range<usize>, incs: &mut [u64]) {
        let col = |w: usize| &self.cols[w * self.n..][rows.clone()];
        match *picks {
            [] => incs.fill(1 << 32),
            [(w, m)] => {
                for (i, &l) in incs.iter_mut().zip(col(w)) {
                    *i = 1 << 32 | u64::from(l & m != 0);
                }
            }
            [(w, m), ref rest @ ..] => {
                for (i, &l) in incs.iter_mut().zip(col(w)) {
                    *i = l & m;
                }
                for &(w, m) in rest {
                    for (i, &l) in incs.iter_mut().zip(col(w)) {
                        *i |= l & m;
                    }
                }
                for i in incs.iter_mut() {
                    *i = 1 << 32 | u64::from(*i != 0);
                }
            }
        }
    }
}

/// Per-worker buffers, reused across queries.
struct Scratch {
    dist: Vec<u32>,
    /// A tile's increments (see [`LabelColumns::increments`]) for [`Scratch::pass`].
    incs: Vec<u64>,
    /// The current query's label picks (see [`LabelColumns::picks`]).
    picks: Vec<Pick>,
    /// Per distance: `items seen << 32 | relevant items seen`, updated in index order
    /// (fixed-size for codes up to 511 bits, so indexing needs no bounds check).
    small: Box<[u64; SMALL]>,
    big: Vec<u64>,
    /// Tile-local (counter, distance) of each relevant item; power-of-two sized so the
    /// branch-free writes need no bounds check.
    tile_v: Box<[u64; TILE_BUF]>,
    tile_d: Box<[u32; TILE_BUF]>,
    /// Per relevant item, in index order: its bucket's counter just after it was counted ...
    terms: Vec<Term>,
    /// ... and its distance.
    term_d: Vec<u32>,
    /// Packed passes leave the terms as counters: `base[d]` (items, hits at distances
    /// below d) completes them in [`Scratch::metrics`].
    base: Vec<u64>,
    /// The last pass's packing: where its counters keep their distance ([`pack_shift`]).
    packed: Option<u32>,
    /// False: never pack. Only tests turn it off, to reach the unpacked pass over the fixed-size
    /// counters, which otherwise needs 2^23 or more database rows.
    may_pack: bool,
    /// Terms within the largest @k cutoff (see [`per_query_metrics`]).
    near: Vec<Term>,
}

/// Items whose increments the fused walk computes ahead of it (an L1-sized buffer).
const INC_TILE: usize = 256;
/// Queries per fused walk, a divisor of PR_BLOCK. They walk each INC_TILE tile in turn, so the
/// database streams from memory once per group instead of once per query (codes and labels of
/// 200 000 items are 3.2 MB, more than L2). 16 measured best of 8, 16 and 32.
const GROUP: usize = 16;
const _: () = assert!(PR_BLOCK.is_multiple_of(GROUP));
/// Distance buckets held in the fixed-size counter array (codes up to 511 bits).
const SMALL: usize = 512;

/// Where a packed counter of `nb` buckets keeps its distance: bits `shift..32`, above the hit
/// count and under the item count. 8 bits (shift 24) for codes below 256 bits, 9 (shift 23) up
/// to 511 bits; packing then needs fewer than `2^shift` items, so the hit count stays below it.
fn pack_shift(nb: usize) -> u32 {
    if nb <= 256 {
        24
    } else {
        23
    }
}

/// `fix` for [`per_query_metrics`] of packed terms with distance at bits `S..32`: adds the
/// bucket's base, which also subtracts the distance (see [`Scratch::query`]). Both halves stay
/// below 2^32 (n < 2^32 is checked), so the packed add is exact; `u32 >> S` is below SMALL,
/// so the lookup needs no bounds check.
#[inline(always)]
fn unpack<const S: u32>(base: &[u64; SMALL]) -> impl Fn(Term) -> Term + '_ {
    const { assert!(1 << (32 - S) <= SMALL) };
    move |t| t.wrapping_add(base[(t as u32 >> S) as usize])
}
/// Starts the packed counters of `nb` buckets: bucket d at `d << shift` (see [`Scratch::packing`]).
fn init_packed(small: &mut [u64; SMALL], nb: usize, shift: u32) {
    for (d, c) in small[..nb].iter_mut().enumerate() {
        *c = (d as u64) << shift;
    }
}

/// Tile-local term buffer: a power of two above `TILE`.
const TILE_BUF: usize = 4096;
const _: () = assert!(TILE < TILE_BUF && TILE_BUF.is_power_of_two());

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            dist: Vec::new(),
            incs: Vec::new(),
            picks: Vec::new(),
            small: Box::new([0; SMALL]),
            big: Vec::new(),
            tile_v: Box::new([0; TILE_BUF]),
            tile_d: Box::new([0; TILE_BUF]),
            terms: Vec::new(),
            term_d: Vec::new(),
            base: Vec::new(),
            packed: None,
            may_pack: true,
            near: Vec::new(),
        }
    }
}

/// Per-distance running counters.
trait Counters {
    /// Adds `inc` to bucket `d` and returns the new value.
    fn bump(&mut self, d: u32, inc: u64) -> u64;
}

impl Counters for [u64; SMALL] {
    #[inline(always)]
    fn bump(&mut self, d: u32, inc: u64) -> u64 {
        // Only used when every distance is below SMALL; the mask just proves it to the compiler.
        let slot = &mut self[d as usize & (SMALL - 1)];
        *slot += inc;
        *slot
    }
}

impl Counters for [u64] {
    #[inline(always)]
    fn bump(&mut self, d: u32, inc: u64) -> u64 {
        let slot = &mut self[d as usize];
        *slot += inc;
        *slot
    }
}

impl Scratch {
    /// One pass over the database in index order; afterwards `terms` holds each relevant
    /// item's (ranking position, hits so far) — for packed passes still relative to its
    /// bucket, completed by [`Scratch::metrics`] — and the returned histogram the bucket counts.
    ///
    /// An item's position is (items in closer buckets) + (items of its own bucket up to it);
    /// the second part is a running counter, the first is known once the pass has counted
    /// every bucket, so positions are fixed up afterwards for the relevant items only.
    fn query(&mut self, imp: Imp, q: &[u64], ql: &[u64], db: CodesView<'_>, dl: &LabelColumns<'_>) -> Hist {
        if let Some(hist) =
            Self::query_fused(std::slice::from_mut(self), imp, &[q], &[ql], db, dl).and_then(|mut h| h.pop())
        {
            return hist;
        }
        let nb = db.bits() + 1;
        self.start(ql);
        let picks = std::mem::take(&mut self.picks);
        let ql = &picks[..];
        let packing = self.packing(db);
        let cur: Vec<u64> = if nb <= SMALL {
            let mut small = std::mem::replace(&mut self.small, Box::new([0; SMALL]));
            if let Some(shift) = packing {
                init_packed(&mut small, nb, shift);
                self.pass::<_, true>(imp, q, ql, db, dl, &mut *small);
            } else {
                small[..nb].fill(0);
                self.pass::<_, false>(imp, q, ql, db, dl, &mut *small);
            }
            self.small = small;
            self.counts(nb, packing)
        } else {
            let mut big = std::mem::take(&mut self.big);
            big.clear();
            big.resize(nb, 0);
            self.pass::<_, false>(imp, q, ql, db, dl, &mut big[..]);
            let cur = big.clone();
            self.big = big;
            cur
        };
        self.picks = picks;
        self.finish(&cur, packing)
    }

    /// [`Scratch::query`] of a group of queries (`qs`, `qls`: one per scratch) in one fused
    /// walk over the database, which streams it from memory once for all of them; every scratch
    /// ends as `query` would leave it, with the same terms. None, with nothing done, where the
    /// fused walk does not apply.
    fn query_fused(
        group: &mut [Scratch],
        imp: Imp,
        qs: &[&[u64]],
        qls: &[&[u64]],
        db: CodesView<'_>,
        dl: &LabelColumns<'_>,
    ) -> Option<Vec<Hist>> {
        debug_assert!(qs.len() == group.len() && qls.len() == group.len());
        let walk = Self::fused_walk_for(imp)?;
        let shift = group.first()?.packing(db)?;
        if group.iter().any(|s| s.packing(db) != Some(shift)) {
            return None;
        }
        let nb = db.bits() + 1;
        for (s, ql) in group.iter_mut().zip(qls) {
            s.start(ql);
            init_packed(&mut s.small, nb, shift);
        }
        // SAFETY: `fused_walk_for` picked a walk whose features the resolved kernel guarantees.
        unsafe { walk(group, (qs, db, dl)) };
        let finish = |s: &mut Scratch| {
            let cur = s.counts(nb, Some(shift));
            s.finish(&cur, Some(shift))
        };
        Some(group.iter_mut().map(finish).collect())
    }

    /// Clears the last query's terms and keeps the picks of query labels `ql`.
    fn start(&mut self, ql: &[u64]) {
        self.terms.clear();
        self.term_d.clear();
        LabelColumns::picks(ql, &mut self.picks);
    }

    /// Where a pass over `db` keeps each counter's distance ([`pack_shift`]), or None if it
    /// cannot. Below 2^shift items a bucket's hit count leaves bits shift..32 of its counter
    /// free: the counter of bucket d starts at d << shift, so every term carries its distance
    /// and the pass stores one word per item instead of two.
    fn packing(&self, db: CodesView<'_>) -> Option<u32> {
        let nb = db.bits() + 1;
        let shift = pack_shift(nb);
        (self.may_pack && nb <= SMALL && db.len() < 1 << shift).then_some(shift)
    }

    /// The `nb` fixed-size counters as (items, hits), without a packed pass's distances.
    fn counts(&self, nb: usize, packing: Option<u32>) -> Vec<u64> {
        let distance_bits = packing.map_or(0, |shift| (u64::from(u32::MAX) >> shift) << shift);
        self.small[..nb].iter().map(|&c| c & !distance_bits).collect()
    }

    /// The histogram of a pass's final counters `cur`, and the bucket bases that complete its
    /// terms.
    fn finish(&mut self, cur: &[u64], packing: Option<u32>) -> Hist {
        let hist = Hist {
            total: cur.iter().map(|&c| (c >> 32) as u32).collect(),
            hits: cur.iter().map(|&c| c as u32).collect(),
        };
        // Bucket bases: (items, hits) at distances below d, packed like the counters.
        self.base.clear();
        self.base.extend(cur.iter().scan(0u64, |acc, &c| {
            let b = *acc;
            *acc += c;
            Some(b)
        }));
        // Packed terms are completed on the fly by `metrics` (its table padded to SMALL
        // entries, so the lookup needs no bounds check); the others here.
        self.packed = packing;
        if let Some(shift) = packing {
            // A packed term of bucket d carries d << shift on top of its counts: the table
            // subtracts it as it adds the base (wrapping; the sum is the exact term).
            self.base.resize(SMALL, 0);
            for (d, b) in self.base.iter_mut().enumerate() {
                *b = b.wrapping_sub((d as u64) << shift);
            }
        } else {
            for (t, &d) in self.terms.iter_mut().zip(&self.term_d) {
                *t += self.base[d as usize];
            }
        }
        hist
    }

    /// Every metric of the last [`Scratch::query`] (see [`per_query_metrics`]).
    fn metrics(&mut self, hist: &Hist, metrics: &[Metric], out: &mut [f64]) {
        let (terms, near) = (&self.terms, &mut self.near);
        let Some(shift) = self.packed else {
            return per_query_metrics(hist, terms, |t| t, metrics, near, out);
        };
        let Some(base) = self.base.first_chunk::<SMALL>() else {
            unreachable!("packed passes pad their bases to SMALL entries")
        };
        match shift {
            24 => per_query_metrics(hist, terms, unpack::<24>(base), metrics, near, out),
            23 => per_query_metrics(hist, terms, unpack::<23>(base), metrics, near, out),
            _ => unreachable!("pack_shift gives 23 or 24, not {shift}"),
        }
    }

    /// The fused walk for `imp`: the packed pass with each distance computed in
    /// the loop by scalar `popcnt` (1-, 2- and 4-word codes on x86 kernels with it) instead of
    /// a tile of distances written by [`Imp::fill`] and read back: one store and one load less
    /// per item. None where it does not apply. Same terms, so the same numbers.
    fn fused_walk_for(imp: Imp) -> Option<FusedWalk> {
        #[cfg(target_arch = "x86_64")]
        if matches!(
            imp.kernel(),
            Kernel::Popcnt | Kernel::Avx2 | Kernel::Sliced | Kernel::Avx512 | Kernel::Sliced512
        ) {
            // The kernel was resolved against the CPU: each of these has POPCNT, and all but
            // `Popcnt` AVX2.
            let avx2 = imp.kernel() != Kernel::Popcnt;
            return match (imp.specialised_words(), avx2) {
                (Some(1), false) => Some(Self::fused_popcnt::<1>),
                (Some(2), false) => Some(Self::fused_popcnt::<2>),
                (Some(4), false) => Some(Self::fused_popcnt::<4>),
                (Some(1), true) => Some(Self::fused_popcnt_avx2::<1>),
                (Some(2), true) => Some(Self::fused_popcnt_avx2::<2>),
                (Some(4), true) => Some(Self::fused_popcnt_avx2::<4>),
                _ => None,
            };
        }
        let _ = imp;
        None
    }

    fused_variant!(
        /// [`Scratch::fused_walk`] with POPCNT.
        fused_popcnt, "popcnt"
    );
    fused_variant!(
        /// [`Scratch::fused_walk`] with POPCNT and AVX2 (the vectorised relevance of a tile;
        /// with SSE2 only that took 0.318 vs 0.278 s, 2000 q × 200 000 on two threads).
        fused_popcnt_avx2, "popcnt,avx2"
    );

    /// The body of the fused passes (inlined into each, so it gets their target features): one
    /// walk over the database for the queries of `group`, whose counters start packed.
    #[inline(always)]
    fn fused_walk<const W: usize>(group: &mut [Scratch], (qs, db, dl): FusedArgs<'_>) {
        let n = db.len();
        let codes = &db.as_words().as_chunks::<W>().0[..n];
        let mut walks = Vec::with_capacity(group.len());
        for (s, q) in group.iter_mut().zip(qs) {
            let Some(&q) = q.first_chunk::<W>() else { return };
            // Each term goes straight into the reserved output: no tile buffer, no index mask.
            s.terms.reserve(n);
            walks.push(Walk { q, cur: &mut s.small, out: s.terms.as_mut_ptr(), nt: 0, picks: &s.picks });
        }
        // A tile's increments are computed first, in loops the compiler vectorises; the walk
        // then loads each item's increment instead of testing its labels: ~10 instructions per
        // item instead of ~12 (a standalone loop: 1.0 vs 1.4 ns per item). The group's queries
        // walk each tile in turn, so its codes and labels come from memory once for all of them.
        let mut incs = [0u64; INC_TILE];
        for (t, ct) in codes.chunks(INC_TILE).enumerate() {
            let incs = &mut incs[..ct.len()];
            for walk in &mut walks {
                dl.increments(walk.picks, t * INC_TILE..t * INC_TILE + ct.len(), incs);
                walk.tile(ct, incs);
            }
        }
        let nts: Vec<u32> = walks.iter().map(|w| w.nt).collect();
        for (s, nt) in group.iter_mut().zip(nts) {
            // SAFETY: the walk wrote the first nt slots (terms was empty on entry).
            unsafe { s.terms.set_len(nt as usize) };
        }
    }

    /// With `PACKED`, the counters carry their distance in bits `shift..32` and only the terms
    /// are written (see [`Self::query`]).
    fn pass<C: Counters + ?Sized, const PACKED: bool>(
        &mut self,
        imp: Imp,
        q: &[u64],
        ql: &[Pick],
        db: CodesView<'_>,
        dl: &LabelColumns<'_>,
        cur: &mut C,
    ) {
        let n = db.len();
        let w = db.words_per_code();
        self.dist.resize(TILE.min(n), 0);
        self.incs.resize(TILE.min(n), 0);
        let words = db.as_words();
        // Locals, not `self.` fields, in the hot loop: stores through one could alias another,
        // which makes the compiler reload every pointer on every item.
        let (dist_buf, inc_buf, tile_v, tile_d) =
            (&mut self.dist[..], &mut self.incs[..], &mut *self.tile_v, &mut *self.tile_d);
        for t0 in (0..n).step_by(TILE) {
            let t1 = (t0 + TILE).min(n);
            let dist = &mut dist_buf[..t1 - t0];
            imp.fill(q, &words[t0 * w..t1 * w], dist);
            let incs = &mut inc_buf[..t1 - t0];
            dl.increments(ql, t0..t1, incs);
            let mut nt = 0usize;
            for (&d, &inc) in dist.iter().zip(incs.iter()) {
                let v = cur.bump(d, inc);
                // Branch-free: relevance is unpredictable, so always write and advance by it
                // (nt <= TILE < TILE_BUF, the mask only proves it).
                tile_v[nt & (TILE_BUF - 1)] = v;
                if !PACKED {
                    tile_d[nt & (TILE_BUF - 1)] = d;
                }
                nt += inc as u32 as usize;
            }
            self.terms.extend_from_slice(&tile_v[..nt]);
            if !PACKED {
                self.term_d.extend_from_slice(&tile_d[..nt]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Terms of a plausible query: increasing positions, hits <= positions.
    fn terms(n: usize, seed: u64) -> Vec<Term> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut p, mut h) = (0u64, 0u64);
        (0..n)
            .map(|_| {
                p += rng.random_range(1..20);
                h += 1;
                p << 32 | h
            })
            .collect()
    }

    /// The contract written out plainly: the i-th term in lane i % 4, lanes combined pairwise.
    fn lane_reference(terms: &[Term]) -> f64 {
        let mut l = [0.0f64; 4];
        for (i, &t) in terms.iter().enumerate() {
            l[i % 4] += (t & 0xffff_ffff) as f64 / (t >> 32) as f64;
        }
        (l[0] + l[1]) + (l[2] + l[3])
    }

    /// The unpacked pass over the fixed-size counters (databases of 2^23 or more rows) gives
    /// the packed passes' histograms and metrics, bit for bit, on every kernel.
    #[test]
    fn unpacked_counters_give_the_packed_results() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let metrics = [Metric::Map, Metric::MapAt(20), Metric::PrecisionAt(20), Metric::PrecisionRadius(2)];
        for (bits, classes, n) in [(64usize, 24usize, 263usize), (256, 150, 301), (96, 5, 260)] {
            let (w, nq) = (bits.div_ceil(64), 9);
            let mut words = |rows: usize| -> Vec<u64> {
                let mask = if bits % 64 == 0 { u64::MAX } else { (1u64 << (bits % 64)) - 1 };
                (0..rows * w)
                    .map(|i| rng.random::<u64>() & if i % w == w - 1 { mask } else { u64::MAX })
                    .collect()
            };
            let (qw, dw) = (words(nq), words(n));
            let q = CodesView::from_words(&qw, nq, bits).unwrap();
            let db = CodesView::from_words(&dw, n, bits).unwrap();
            let hot = |rows: usize, rng: &mut ChaCha8Rng| -> Vec<u8> {
                (0..rows * classes).map(|_| u8::from(rng.random_bool(3.0 / classes as f64))).collect()
            };
            let ql = LabelSet::from_multi_hot(&hot(nq, &mut rng), nq, classes).unwrap();
            let dl = LabelSet::from_multi_hot(&hot(n, &mut rng), n, classes).unwrap();
            let columns = LabelColumns::new(&dl);
            for kernel in Kernel::CONCRETE.into_iter().filter(|k| k.is_supported()) {
                let imp = Imp::new(Engine { kernel, ..Engine::default() }, w).unwrap();
                let (mut packed, mut unpacked) = (Scratch::default(), Scratch::default());
                unpacked.may_pack = false;
                for qi in 0..nq {
                    let mut out = [[0.0; 4]; 2];
                    let mut hists = Vec::new();
                    for (s, o) in [&mut packed, &mut unpacked].into_iter().zip(&mut out) {
                        let hist = s.query(imp, q.row(qi), ql.row(qi), db, &columns);
                        s.metrics(&hist, &metrics, o);
                        hists.push((hist.total, hist.hits));
                    }
                    assert!(packed.packed.is_some() && unpacked.packed.is_none());
                    assert_eq!(hists[0], hists[1], "{bits} bits, {kernel}, query {qi}");
                    assert_eq!(
                        out[0].map(f64::to_bits),
                        out[1].map(f64::to_bits),
                        "{bits} bits, {kernel}, query {qi}"
                    );
                }
            }
        }
    }

    /// The fused walk of a group of queries leaves each scratch as a walk of its query alone
    /// would: same histogram, terms and metrics, bit for bit, on every kernel with a fused walk
    /// and every group size up to GROUP (odd ones too). The codes are sparse (distances tie),
    /// query 0 has a class no database row has and query 1 no label at all (no relevant item).
    #[test]
    fn a_group_walk_equals_single_query_walks() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let metrics = [Metric::Map, Metric::MapAt(20), Metric::PrecisionAt(20), Metric::PrecisionRadius(2)];
        for (bits, classes, n) in [(64usize, 24usize, 1031usize), (128, 150, 517), (256, 5, 300)] {
            let (w, nq) = (bits / 64, GROUP + 3);
            let mut words = |rows: usize| -> Vec<u64> {
                (0..rows * w).map(|_| rng.random::<u64>() & rng.random::<u64>()).collect()
            };
            let (qw, dw) = (words(nq), words(n));
            let q = CodesView::from_words(&qw, nq, bits).unwrap();
            let db = CodesView::from_words(&dw, n, bits).unwrap();
            // Database rows use classes 0..classes-1; the last class is query 0's only.
            let hot = |rows: usize, rng: &mut ChaCha8Rng| -> Vec<u8> {
                (0..rows * classes)
                    .map(|i| u8::from(i % classes != classes - 1 && rng.random_bool(2.0 / classes as f64)))
                    .collect()
            };
            let mut qh = hot(nq, &mut rng);
            for (qi, row) in qh.chunks_exact_mut(classes).enumerate() {
                row[qi % (classes - 1)] = 1;
            }
            qh[..classes].fill(0);
            qh[classes - 1] = 1;
            qh[classes..2 * classes].fill(0);
            let ql = LabelSet::from_multi_hot(&qh, nq, classes).unwrap();
            let dl = LabelSet::from_multi_hot(&hot(n, &mut rng), n, classes).unwrap();
            let columns = LabelColumns::new(&dl);
            for kernel in Kernel::CONCRETE.into_iter().filter(|k| k.is_supported()) {
                let imp = Imp::new(Engine { kernel, ..Engine::default() }, w).unwrap();
                if Scratch::fused_walk_for(imp).is_none() {
                    continue;
                }
                // Each query alone (a group of one), then in groups of every size.
                let mut single = Scratch::default();
                let want: Vec<_> = (0..nq)
                    .map(|qi| {
                        let hist = single.query(imp, q.row(qi), ql.row(qi), db, &columns);
                        let mut out = [0.0; 4];
                        single.metrics(&hist, &metrics, &mut out);
                        (hist, single.terms.clone(), out.map(f64::to_bits))
                    })
                    .collect();
                assert!(
                    want[0].1.is_empty() && want[1].1.is_empty(),
                    "{bits} bits: queries 0 and 1 have hits"
                );
                assert!(want[2..].iter().all(|(_, t, _)| !t.is_empty()), "{bits} bits: a query without hits");
                for size in 1..=GROUP {
                    let mut group: Vec<Scratch> = (0..size).map(|_| Scratch::default()).collect();
                    for g0 in (0..nq).step_by(size) {
                        let rows = g0..(g0 + size).min(nq);
                        let qs: Vec<&[u64]> = rows.clone().map(|qi| q.row(qi)).collect();
                        let qls: Vec<&[u64]> = rows.clone().map(|qi| ql.row(qi)).collect();
                        let group = &mut group[..rows.len()];
                        let hists = Scratch::query_fused(group, imp, &qs, &qls, db, &columns).unwrap();
                        for ((s, hist), qi) in group.iter_mut().zip(hists).zip(rows) {
                            let mut out = [0.0; 4];
                            s.metrics(&hist, &metrics, &mut out);
                            let at = format!("{bits} bits, {kernel}, group of {size}, query {qi}");
                            assert_eq!(hist, want[qi].0, "{at}");
                            assert_eq!(s.terms, want[qi].1, "{at}");
                            assert_eq!(out.map(f64::to_bits), want[qi].2, "{at}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn map_sum_follows_the_lane_contract_on_every_path() {
        // Lengths 0..9 cover every tail; 1001 a long run.
        for (seed, n) in (0..10).chain([1001]).enumerate() {
            let t = terms(n, seed as u64);
            let want = lane_reference(&t);
            let kmax = t.get(n / 2).map_or(0, |x| x >> 32);
            let want_near: Vec<Term> = t.iter().copied().filter(|x| x >> 32 <= kmax).collect();
            let mut near = Vec::with_capacity(n);
            let (kept, got) = map_and_near(&t, &|x| x, kmax, &mut near, Some(add4_portable));
            // SAFETY: map_and_near wrote `kept` slots.
            unsafe { near.set_len(kept) };
            assert_eq!(got.to_bits(), want.to_bits(), "portable, {n} terms");
            assert_eq!(near, want_near, "portable, {n} terms");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut near = Vec::with_capacity(n);
                // SAFETY: AVX2 was just detected.
                let (kept, got) = unsafe { map_and_near_avx2(&t, &|x| x, kmax, &mut near) };
                // SAFETY: as above.
                unsafe { near.set_len(kept) };
                assert_eq!(got.to_bits(), want.to_bits(), "avx2, {n} terms");
                assert_eq!(near, want_near, "avx2, {n} terms");
            }
            // LaneSum (the @k metrics' sum) is the same contract.
            let mut s = LaneSum::default();
            t.iter().for_each(|&x| s.add(term_ratio(x)));
            assert_eq!(s.finish(), (want, n as u64));
        }
    }

    #[test]
    fn exact_f64_is_exact_up_to_32_bits() {
        for x in [0u64, 1, 2, 3, 1 << 24, (1 << 24) + 1, u32::MAX as u64 - 1, u32::MAX as u64] {
            assert_eq!(exact_f64(x), x as f64);
        }
    }
}
