//! Search backends: one trait, so a CUDA backend can slot in beside the CPU one.

use crate::codes::Codes;
use crate::error::Result;
use crate::kernel::Engine;
use crate::labels::LabelSet;
use crate::metric::Metric;

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

/// Multi-threaded CPU backend: rayon over queries, two linear passes per query (no sorting).
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
        crate::eval::evaluate_with(
            queries.view(),
            query_labels,
            database.view(),
            database_labels,
            metrics,
            Engine::default(),
            false,
        )
        .map(|r| r.metrics)
    }
}
