//! Exact k-nearest-neighbour and range search by Hamming distance (FAISS IndexBinaryFlat order).

use rayon::prelude::*;

use crate::cand::Cand;
use crate::codes::CodesView;
use crate::error::{HammingError, Result};
use crate::kernel::{Engine, Imp};
use crate::sliced::query_masks;

/// Id written where a query has fewer than k hits (range search), as FAISS pads.
pub const NO_ID: i64 = -1;
/// Distance written where a query has fewer than k hits (range search), as FAISS pads.
pub const NO_DISTANCE: i32 = i32::MAX;

/// Database codes per tile: a tile stays in L1/L2 while every query of a block scans it.
const TILE_BYTES: usize = 32 * 1024;
/// Queries per block: their filter states stay in cache while the database streams past.
const QUERY_BLOCK: usize = 256;

/// The k nearest database items of each query: row-major `len() × k()` ids and distances.
///
/// Each row is sorted by (distance, database index). With a radius, a row holds only items
/// within it; missing slots are [`NO_ID`] / [`NO_DISTANCE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbors {
    k: usize,
    ids: Vec<i64>,
    distances: Vec<i32>,
}

impl Neighbors {
    /// Wraps row-major results (`ids.len() == distances.len()`, a multiple of k).
    pub(crate) fn from_parts(k: usize, ids: Vec<i64>, distances: Vec<i32>) -> Neighbors {
        debug_assert!(ids.len() == distances.len() && k > 0 && ids.len().is_multiple_of(k));
        Neighbors { k, ids, distances }
    }

    /// Neighbours per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.ids.len().checked_div(self.k).unwrap_or(0)
    }

    /// True when there are no queries.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// All ids, row-major.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// All distances, row-major.
    pub fn distances(&self) -> &[i32] {
        &self.distances
    }

    /// Ids of query `i` (panics if out of range).
    pub fn row_ids(&self, i: usize) -> &[i64] {
        &self.ids[i * self.k..(i + 1) * self.k]
    }

    /// Distances of query `i` (panics if out of range).
    pub fn row_distances(&self, i: usize) -> &[i32] {
        &self.distances[i * self.k..(i + 1) * self.k]
    }
}

/// Checks widths, k and database size for a search.
pub(crate) fn check_search(queries: &CodesView<'_>, db: &CodesView<'_>, k: usize) -> Result<()> {
    if queries.bits() != db.bits() {
        return Err(HammingError::BitsMismatch { query: queries.bits(), database: db.bits() });
    }
    if k == 0 || k > db.len() {
        return Err(HammingError::BadK { k, n: db.len() });
    }
    if u32::try_from(db.len()).is_err() {
        return Err(HammingError::TooLarge(db.len()));
    }
    Ok(())
}

/// Exact top-`k` search of every query on the CPU; with `radius`, only items at distance <= radius.
///
/// Rows are sorted by (distance, database index), the order FAISS IndexBinaryFlat returns.
/// Requires 1 <= k <= database size. Runs on the current rayon pool, the queries split once
/// into one contiguous range per thread; results do not depend on thread count or `engine`.
///
/// ```
/// use seqmodal_hamming::{knn, Codes, Engine};
/// let db = Codes::from_bools(&[true, true, false, false, true, false], 3, 2)?; // 11, 00, 10
/// let q = Codes::from_bools(&[true, true], 1, 2)?;
/// let nn = knn(q.view(), db.view(), 2, None, Engine::default())?;
/// assert_eq!(nn.row_ids(0), &[0, 2]);
/// assert_eq!(nn.row_distances(0), &[0, 1]);
/// # Ok::<(), seqmodal_hamming::HammingError>(())
/// ```
pub fn knn(
    queries: CodesView<'_>,
    db: CodesView<'_>,
    k: usize,
    radius: Option<u32>,
    engine: Engine,
) -> Result<Neighbors> {
    check_search(&queries, &db, k)?;
    let imp = Imp::new(engine, db.words_per_code())?;
    let nq = queries.len();
    let mut ids = vec![NO_ID; nq * k];
    let mut distances = vec![NO_DISTANCE; nq * k];
    if nq == 0 {
        return Ok(Neighbors::from_parts(k, ids, distances));
    }
    // Push iff distance < limit: bits + 1 admits everything; a radius admits d <= r.
    let all = db.bits() as u64 + 1;
    let limit0 = radius.map_or(all, |r| (u64::from(r) + 1).min(all)) as u32;
    let chunk = nq.div_ceil(rayon::current_num_threads().max(1));
    ids.par_chunks_mut(chunk * k).zip(distances.par_chunks_mut(chunk * k)).enumerate().for_each(
        |(c, (ids, ds))| {
            let q0 = c * chunk;
            let qs = queries.slice(q0, q0 + ids.len() / k);
            search_range(imp, qs, db, k, limit0, ids, ds);
        },
    );
    Ok(Neighbors::from_parts(k, ids, distances))
}

/// The top-k path [`knn`] takes for codes of `bits` bits with `engine` (e.g. "vpopcntdq",
/// "sliced512", "sliced"), as the CLI records it beside its timings.
pub fn topk_path(engine: Engine, bits: usize) -> Result<&'static str> {
    Ok(Imp::new(engine, bits.div_ceil(64))?.topk_path())
}

/// Writes the Hamming distance from `query` (one code, `db.words_per_code()` words) to every
/// code of `db` into `out` (`db.len()` slots), with the chosen kernel.
pub fn distances_into(query: &[u64], db: CodesView<'_>, engine: Engine, out: &mut [u32]) -> Result<()> {
    crate::error::check_shape("query words", 1, db.words_per_code(), query.len())?;
    crate::error::check_shape("distance output", db.len(), 1, out.len())?;
    Imp::new(engine, db.words_per_code())?.fill(query, db.as_words(), out);
    Ok(())
}

/// Candidate list of one query: every item that may still be in its top k, in index order.
struct TopK {
    limit: u32,
    cand: Vec<Cand>,
    counts: Vec<u32>,
    /// The query's plane masks for the bit-sliced filter (empty when it is not used).
    masks: Vec<[u64; 4]>,
}

impl TopK {
    /// Counts the candidates from `new` on, then lowers `limit` to the k-th smallest distance
    /// seen and drops what can no longer qualify.
    ///
    /// Items arrive in index order, so a later item at distance t ranks after every earlier
    /// item at distance <= t: once k of those exist, only distances < t can still get in.
    /// `counts` holds the histogram of the candidates' distances, kept up to date here.
    fn tighten(&mut self, k: usize, new: usize) {
        for c in &self.cand[new..] {
            self.counts[c.d as usize] += 1;
        }
        if self.cand.len() < k {
            return;
        }
        // Retained items have d <= limit (limit itself once tightened), so count through limit.
        let mut seen = 0usize;
        let mut t = self.limit;
        for (d, &c) in self.counts[..=self.limit as usize].iter().enumerate() {
            seen += c as usize;
            if seen >= k {
                t = d as u32;
                break;
            }
        }
        if t < self.limit {
            self.counts[t as usize + 1..=self.limit as usize].fill(0);
            self.cand.retain(|c| c.d <= t);
        }
        self.limit = t;
    }

    /// Writes the first k candidates in (distance, index) order: a stable counting sort.
    fn finish(&mut self, k: usize, ids: &mut [i64], ds: &mut [i32]) {
        let max_d = self.cand.iter().map(|c| c.d).max().map_or(0, |m| m as usize);
        let counts = &mut self.counts[..=max_d];
        counts.fill(0);
        for c in &self.cand {
            counts[c.d as usize] += 1;
        }
        let mut acc = 0u32;
        for c in counts.iter_mut() {
            let n = *c;
            *c = acc;
            acc += n;
        }
        for c in &self.cand {
            let slot = &mut counts[c.d as usize];
            if (*slot as usize) < k {
                ids[*slot as usize] = i64::from(c.idx);
                ds[*slot as usize] = c.d as i32;
            }
            *slot += 1;
        }
    }
}

/// Top-k of a contiguous range of queries: query blocks × database tiles.
///
/// With the bit-sliced kernel each tile's whole 256-code blocks are transposed once per query
/// block and filtered sliced; the rest of the tile goes through the row-major loop.
fn search_range(
    imp: Imp,
    queries: CodesView<'_>,
    db: CodesView<'_>,
    k: usize,
    limit0: u32,
    ids: &mut [i64],
    ds: &mut [i32],
) {
    let w = db.words_per_code();
    let n = db.len();
    let sliced = imp.sliced();
    let lanes = imp.lanes();
    let tile = match (TILE_BYTES / (8 * w)).max(8) {
        t if sliced => t.next_multiple_of(lanes),
        t => t,
    };
    let words = db.as_words();
    let mut planes = Vec::new();
    let mut states: Vec<TopK> = (0..QUERY_BLOCK.min(queries.len()))
        .map(|_| TopK { limit: limit0, cand: Vec::new(), counts: vec![0; db.bits() + 2], masks: Vec::new() })
        .collect();
    for qb in (0..queries.len()).step_by(QUERY_BLOCK) {
        let qe = (qb + QUERY_BLOCK).min(queries.len());
        let states = &mut states[..qe - qb];
        for (qi, s) in (qb..qe).zip(states.iter_mut()) {
            s.limit = limit0;
            s.cand.clear();
            s.counts.fill(0);
            if sliced {
                query_masks(queries.row(qi), &mut s.masks);
            }
        }
        for t0 in (0..n).step_by(tile) {
            let t1 = (t0 + tile).min(n);
            // Codes [t0, t0 + whole) go through the sliced filter, the rest row by row.
            let whole = if sliced { (t1 - t0) / lanes * lanes } else { 0 };
            if whole > 0 {
                imp.transpose(&words[t0 * w..(t0 + whole) * w], &mut planes);
            }
            let rest = &words[(t0 + whole) * w..t1 * w];
            for (qi, s) in (qb..qe).zip(states.iter_mut()) {
                if s.limit == 0 {
                    continue;
                }
                let before = s.cand.len();
                if whole > 0 {
                    imp.filter_sliced(&s.masks, &planes, t0 as u32, s.limit, &mut s.cand);
                }
                if !rest.is_empty() {
                    imp.filter(queries.row(qi), rest, (t0 + whole) as u32, s.limit, &mut s.cand);
                }
                if s.cand.len() != before {
                    s.tighten(k, before);
                }
            }
        }
        for (qi, s) in (qb..qe).zip(states.iter_mut()) {
            s.finish(k, &mut ids[qi * k..(qi + 1) * k], &mut ds[qi * k..(qi + 1) * k]);
        }
    }
}
