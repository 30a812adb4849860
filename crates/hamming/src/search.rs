//! Single-query ranking (counting sort) and the `evaluate` entry point.

use crate::codes::{hamming_distance, Codes};
use crate::error::Result;
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

/// Mean of each metric over all queries, in the order of `metrics`, using [`crate::CpuBackend`].
///
/// Exhaustive search, rayon over queries, fastest kernel (see [`crate::evaluate_with`] for the
/// algorithm and the summation order). Deterministic: the result never depends on the thread
/// count. With no queries every mean is 0.0.
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
