//! Retrieval metrics over the full ranking without sorting: two linear passes per query.
//!
//! Pass 1 computes each item's key `2·distance + relevant` and a histogram of keys, which gives
//! every distance bucket's first ranking position and the hits before it. Pass 2 walks the
//! items in index order (the tie order inside a bucket), so each relevant item's ranking
//! position p and hits-so-far h are running counters: AP = Σ h/p / R, summed in index order.
//! That summation order is part of the contract: the CUDA backend sums the same terms in the
//! same order, so both backends give bit-identical numbers.

use rayon::prelude::*;

use crate::codes::CodesView;
use crate::error::{HammingError, Result};
use crate::kernel::{Engine, Imp};
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
    let nq = queries.len();
    let bits = database.bits();
    let pr_len = if pr_curve { 2 * (bits + 1) } else { 0 };
    let nblocks = nq.div_ceil(PR_BLOCK);
    let per_thread = nblocks.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let parts: Vec<(Vec<f64>, Vec<f64>)> = (0..nblocks.div_ceil(per_thread))
        .into_par_iter()
        .map(|t| {
            let mut scratch = Scratch::default();
            let mut values = Vec::new();
            let mut pr = Vec::new();
            let mut row = vec![0.0; metrics.len()];
            for b in t * per_thread..((t + 1) * per_thread).min(nblocks) {
                let mut part = vec![0.0; pr_len];
                for qi in b * PR_BLOCK..((b + 1) * PR_BLOCK).min(nq) {
                    let hist =
                        scratch.query(imp, queries.row(qi), query_labels.row(qi), database, database_labels);
                    let terms = scratch.terms();
                    per_query_metrics(&hist, terms, metrics, &mut row);
                    values.extend_from_slice(&row);
                    if pr_curve {
                        add_pr(&hist, &mut part);
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

/// Every metric of one query from its histogram and its relevant items' (p, h) in index order.
pub(crate) fn per_query_metrics(hist: &Hist, terms: &[Term], metrics: &[Metric], out: &mut [f64]) {
    let n: u64 = hist.total.iter().map(|&t| u64::from(t)).sum();
    let r_total = terms.len() as u64;
    for (o, metric) in out.iter_mut().zip(metrics) {
        *o = match *metric {
            Metric::Map => {
                // Sequential, in index order: the contract shared with the CUDA backend.
                let mut s = 0.0f64;
                for &t in terms {
                    s += (t & 0xffff_ffff) as f64 / (t >> 32) as f64;
                }
                ratio(s, r_total)
            }
            Metric::MapAt(k) => {
                let k = k as u64;
                let (mut s, mut c) = (0.0f64, 0u64);
                for &t in terms {
                    if t >> 32 <= k {
                        s += (t & 0xffff_ffff) as f64 / (t >> 32) as f64;
                        c += 1;
                    }
                }
                ratio(s, c)
            }
            Metric::PrecisionAt(k) => {
                let k = k as u64;
                let c = terms.iter().filter(|&&t| t >> 32 <= k).count();
                ratio(c as f64, k.min(n))
            }
            Metric::PrecisionRadius(r) => {
                let upto = (r as usize).min(hist.total.len().saturating_sub(1));
                if hist.total.is_empty() {
                    0.0
                } else {
                    let c: u64 = hist.total[..=upto].iter().map(|&t| u64::from(t)).sum();
                    let h: u64 = hist.hits[..=upto].iter().map(|&t| u64::from(t)).sum();
                    ratio(h as f64, c)
                }
            }
        };
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

/// Per-worker buffers, reused across queries.
#[derive(Default)]
struct Scratch {
    dist: Vec<u32>,
    keys16: Vec<u16>,
    keys32: Vec<u32>,
    hist4: Vec<u32>,
    cur: Vec<u64>,
    terms: Vec<Term>,
    n_terms: usize,
}

impl Scratch {
    /// Runs both passes for one query; afterwards `terms()` holds its relevant items' (p, h).
    fn query(&mut self, imp: Imp, q: &[u64], ql: &[u64], db: CodesView<'_>, dl: &LabelSet) -> Hist {
        // u16 keys halve pass 2's memory traffic; 2·bits + 1 must fit.
        if 2 * db.bits() < usize::from(u16::MAX) {
            let mut keys = std::mem::take(&mut self.keys16);
            let h = self.run(imp, q, ql, db, dl, &mut keys);
            self.keys16 = keys;
            h
        } else {
            let mut keys = std::mem::take(&mut self.keys32);
            let h = self.run(imp, q, ql, db, dl, &mut keys);
            self.keys32 = keys;
            h
        }
    }

    fn terms(&self) -> &[Term] {
        &self.terms[..self.n_terms]
    }

    fn run<K: Key>(
        &mut self,
        imp: Imp,
        q: &[u64],
        ql: &[u64],
        db: CodesView<'_>,
        dl: &LabelSet,
        keys: &mut Vec<K>,
    ) -> Hist {
        let n = db.len();
        let w = db.words_per_code();
        let nb = db.bits() + 1;
        let stride = 2 * nb;
        keys.resize(n, K::default());
        self.dist.resize(TILE.min(n), 0);
        // Four sub-histograms: consecutive items often share a distance, and one counter would
        // serialise on store-to-load forwarding.
        self.hist4.clear();
        self.hist4.resize(4 * stride, 0);
        let words = db.as_words();
        let labels = dl.as_words();
        let lw = dl.words_per_row();
        for t0 in (0..n).step_by(TILE) {
            let t1 = (t0 + TILE).min(n);
            let dist = &mut self.dist[..t1 - t0];
            imp.fill(q, &words[t0 * w..t1 * w], dist);
            let keys = &mut keys[t0..t1];
            if let [q0] = ql {
                let ls = &labels[t0..t1];
                for (j, ((k, &d), &l)) in keys.iter_mut().zip(dist.iter()).zip(ls).enumerate() {
                    let key = d * 2 + u32::from(q0 & l != 0);
                    *k = K::from_u32(key);
                    self.hist4[(j & 3) * stride + key as usize] += 1;
                }
            } else {
                let ls = &labels[t0 * lw..t1 * lw];
                for (j, ((k, &d), l)) in keys.iter_mut().zip(dist.iter()).zip(ls.chunks_exact(lw)).enumerate()
                {
                    let rel = ql.iter().zip(l).any(|(a, b)| a & b != 0);
                    let key = d * 2 + u32::from(rel);
                    *k = K::from_u32(key);
                    self.hist4[(j & 3) * stride + key as usize] += 1;
                }
            }
        }
        let mut hist = Hist { total: vec![0; nb], hits: vec![0; nb] };
        for d in 0..nb {
            let (mut miss, mut hit) = (0u32, 0u32);
            for s in 0..4 {
                miss += self.hist4[s * stride + 2 * d];
                hit += self.hist4[s * stride + 2 * d + 1];
            }
            hist.total[d] = miss + hit;
            hist.hits[d] = hit;
        }

        // Pass 2: running (position, hits) per bucket, one packed add per item; relevant items
        // append their counters (branch-free: the slot is always written, kept only if relevant).
        self.cur.clear();
        let (mut pos, mut hits) = (0u64, 0u64);
        for d in 0..nb {
            self.cur.push(pos << 32 | hits);
            pos += u64::from(hist.total[d]);
            hits += u64::from(hist.hits[d]);
        }
        self.terms.resize(hits as usize + 1, 0);
        let mut nt = 0usize;
        if hits > 0 {
            let terms = &mut self.terms;
            let cur = &mut self.cur;
            for &k in keys.iter() {
                let key = k.to_u32();
                let r = u64::from(key & 1);
                let slot = &mut cur[(key >> 1) as usize];
                let v = *slot + (1 << 32 | r);
                *slot = v;
                terms[nt] = v;
                nt += r as usize;
            }
        }
        self.n_terms = nt;
        hist
    }
}

/// Key storage width for pass 1 → pass 2.
trait Key: Copy + Default {
    fn from_u32(v: u32) -> Self;
    fn to_u32(self) -> u32;
}

impl Key for u16 {
    #[inline(always)]
    fn from_u32(v: u32) -> Self {
        v as u16
    }
    #[inline(always)]
    fn to_u32(self) -> u32 {
        u32::from(self)
    }
}

impl Key for u32 {
    #[inline(always)]
    fn from_u32(v: u32) -> Self {
        v
    }
    #[inline(always)]
    fn to_u32(self) -> u32 {
        self
    }
}
