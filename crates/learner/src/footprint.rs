//! What a learner keeps between stages, reported in `summary.json`.

/// Memory and parameter copies a learner holds at the end of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Footprint {
    /// Samples held in memory at the end of the run.
    pub memory_samples: usize,
    /// Bytes of stored features, labels and targets.
    pub memory_bytes: usize,
    /// Extra parameter-sized tensors kept (anchors, Fisher, importance, old model).
    pub extra_param_copies: usize,
}
