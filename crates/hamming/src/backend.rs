//! Search backends: one trait, so a CUDA backend can slot in beside the CPU one.

use rayon::prelude::*;

use crate::codes::Codes;
use crate::error::Result;
use crate::labels::LabelSet;
use crate::metric::Metric;
use crate::search::{query_metrics, validate, Scratch};

/// An engine that evaluates exhaustive Hamming retrieval; every backend must match the CPU results.
pub trait SearchBackend: Send + Sync {
    /// Short name for logs and reports (e.g. "cpu").
    fn name(&self) -> &'static str;

    /// Mean of each metric over all queries, in the order of `metrics` (see [`crate::evaluate`]).
    fn evaluate(
        &self,
        queries: &Codes,
        query_labels: &LabelSet,
        database: &Codes,
        database_labels: &LabelSet,
        metrics: &[Metric],
    ) -> Result<Vec<f64>>;
}

/// Multi-threaded CPU backend: rayon over queries, counting-sort ranking per query.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl SearchBackend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn evaluate(
        &self,
        queries: &Codes,
        query_labels: &LabelSet,
        database: &Codes,
        database_labels: &LabelSet,
        metrics: &[Metric],
    ) -> Result<Vec<f64>> {
        validate(queries, query_labels, database, database_labels)?;
        let m = metrics.len();
        let nq = queries.len();
        if m == 0 || nq == 0 {
            return Ok(vec![0.0; m]);
        }
        // One flat row of m values per query: filled in parallel, each slot by exactly one query.
        let mut per_query = vec![0.0f64; nq * m];
        per_query.par_chunks_mut(m).enumerate().for_each_init(Scratch::default, |scratch, (qi, out)| {
            query_metrics(
                scratch,
                queries.row(qi),
                query_labels.row(qi),
                database,
                database_labels,
                metrics,
                out,
            );
        });
        // Sequential sum in query order: the float result is independent of scheduling.
        let mut sums = vec![0.0f64; m];
        for row in per_query.chunks_exact(m) {
            for (s, v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
        Ok(sums.into_iter().map(|s| s / nq as f64).collect())
    }
}
