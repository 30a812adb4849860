//! Exhaustive search: counting-sort ranking and single-pass per-query metrics.

use crate::codes::{hamming_distance, Codes};
use crate::error::{HammingError, Result};
use crate::labels::LabelSet;
use crate::metric::Metric;

/// Ranks the whole database for one query: indices by Hamming distance ascending, ties by index ascending.
///
/// Counting sort over the `bits + 1` possible distances: O(N), and stable, so ties come out in
/// index order without a comparison. Panics if `query.len() != db.words_per_code()` or if the
/// database has more than `u32::MAX + 1` items.
pub fn rank(query: &[u64], db: &Codes) -> Vec<u32> {
    assert_eq!(
        query.len(),
        db.words_per_code(),
        "query has {} words, database codes have {}",
        query.len(),
        db.words_per_code()
    );
    assert!(
        u32::try_from(db.len().saturating_sub(1)).is_ok(),
        "database of {} items does not fit u32 indices",
        db.len()
    );
    let mut dist = vec![0u32; db.len()];
    fill_distances(query, db, &mut dist);
    let mut starts = vec![0usize; db.bits() + 1];
    histogram_to_starts(&dist, |d| d, &mut starts);
    let mut order = vec![0u32; db.len()];
    for (j, &d) in dist.iter().enumerate() {
        let slot = &mut starts[d as usize];
        order[*slot] = j as u32;
        *slot += 1;
    }
    order
}

/// Writes the distance from `query` to every database code into `out`.
fn fill_distances(query: &[u64], db: &Codes, out: &mut [u32]) {
    let words = db.as_words();
    if let [q] = query {
        // One-word codes (<= 64 bits) are the common case: skip the inner loop entirely.
        for (o, c) in out.iter_mut().zip(words) {
            *o = (q ^ c).count_ones();
        }
    } else {
        for (o, c) in out.iter_mut().zip(words.chunks_exact(query.len())) {
            *o = hamming_distance(query, c);
        }
    }
}

/// Histograms `key(v)` over `values` into `starts`, then turns counts into bucket start offsets.
fn histogram_to_starts(values: &[u32], key: impl Fn(u32) -> u32, starts: &mut [usize]) {
    starts.fill(0);
    for &v in values {
        starts[key(v) as usize] += 1;
    }
    let mut acc = 0;
    for s in starts.iter_mut() {
        let c = *s;
        *s = acc;
        acc += c;
    }
}

/// Checks that queries and database are mutually consistent; shared by all backends.
pub(crate) fn validate(
    queries: &Codes,
    query_labels: &LabelSet,
    database: &Codes,
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
    Ok(())
}

/// Reusable per-worker buffers, so a query costs no allocation once they have grown.
#[derive(Default)]
pub(crate) struct Scratch {
    /// `distance << 1 | relevant` per database item, in index order.
    keys: Vec<u32>,
    /// Bucket offsets of the counting sort; after the scatter, `ends[d]` = items with distance <= d.
    ends: Vec<usize>,
    /// Relevance (0/1) of the database in ranked order.
    ranked_rel: Vec<u8>,
    /// `(ranking position, metric index)` at which each metric reads its counters.
    checkpoints: Vec<(usize, usize)>,
}

/// Computes every metric for one query into `out` (same order as `metrics`).
pub(crate) fn query_metrics(
    scratch: &mut Scratch,
    query: &[u64],
    query_label: &[u64],
    db: &Codes,
    db_labels: &LabelSet,
    metrics: &[Metric],
    out: &mut [f64],
) {
    let n = db.len();
    let bits = db.bits();
    let Scratch { keys, ends, ranked_rel, checkpoints } = scratch;

    // Pass 1: distances, then the relevance bit folded into the low bit of the same key so the
    // scatter below reads one array.
    keys.resize(n, 0);
    fill_distances(query, db, keys);
    let labels = db_labels.as_words();
    if let [ql] = query_label {
        for (k, l) in keys.iter_mut().zip(labels) {
            *k = *k << 1 | u32::from(ql & l != 0);
        }
    } else {
        for (k, l) in keys.iter_mut().zip(labels.chunks_exact(query_label.len())) {
            let rel = query_label.iter().zip(l).any(|(a, b)| a & b != 0);
            *k = *k << 1 | u32::from(rel);
        }
    }

    // Pass 2: stable counting sort of the relevance bits by distance.
    ends.resize(bits + 1, 0);
    histogram_to_starts(keys, |k| k >> 1, ends);
    ranked_rel.resize(n, 0);
    for &k in keys.iter() {
        let slot = &mut ends[(k >> 1) as usize];
        ranked_rel[*slot] = (k & 1) as u8;
        *slot += 1;
    }

    // Each metric only needs (hits, AP partial sum) at one ranking position.
    checkpoints.clear();
    checkpoints.extend(metrics.iter().enumerate().map(|(m, metric)| {
        let pos = match *metric {
            Metric::Map => n,
            Metric::MapAt(k) | Metric::PrecisionAt(k) => k.min(n),
            Metric::PrecisionRadius(r) => ends[(r as usize).min(bits)],
        };
        (pos, m)
    }));
    checkpoints.sort_unstable();

    // Pass 3: walk the ranking once, only as far as the deepest checkpoint.
    let mut hits = 0usize;
    let mut ap_sum = 0.0f64;
    let mut pos = 0usize;
    for &(stop, m) in checkpoints.iter() {
        for &rel in &ranked_rel[pos..stop] {
            pos += 1;
            if rel != 0 {
                hits += 1;
                ap_sum += hits as f64 / pos as f64;
            }
        }
        pos = stop;
        out[m] = match metrics[m] {
            Metric::Map | Metric::MapAt(_) => ratio(ap_sum, hits),
            Metric::PrecisionAt(_) | Metric::PrecisionRadius(_) => ratio(hits as f64, stop),
        };
    }
}

/// `num / den`, or 0 when `den == 0` (no relevant items / empty prefix).
fn ratio(num: f64, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num / den as f64
    }
}

/// Mean of each metric over all queries, in the order of `metrics`, using [`crate::CpuBackend`].
///
/// Exhaustive search, rayon over queries. Deterministic: per-query values are collected in query
/// order and summed sequentially in f64, so the result never depends on the thread count.
/// With no queries every mean is 0.0.
pub fn evaluate(
    queries: &Codes,
    query_labels: &LabelSet,
    database: &Codes,
    database_labels: &LabelSet,
    metrics: &[Metric],
) -> Result<Vec<f64>> {
    use crate::backend::SearchBackend;
    crate::backend::CpuBackend.evaluate(queries, query_labels, database, database_labels, metrics)
}
