//! The tidy metrics row.

use serde::{Deserialize, Serialize};

/// One tidy row of metrics.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Experiment name.
    pub experiment: String,
    /// Learner (strategy) name.
    pub learner: String,
    /// Run seed.
    pub seed: u64,
    /// Hash code length in bits.
    pub bits: usize,
    /// Stage index; 0 is the evaluation before any training.
    pub stage: usize,
    /// Modality trained in this stage; `None` for stage 0.
    pub trained: Option<String>,
    /// Query modality.
    pub query: String,
    /// Database modality.
    pub database: String,
    /// Metric name, e.g. "map".
    pub metric: String,
    /// Metric value.
    pub value: f64,
}
