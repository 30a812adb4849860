//! Progress callbacks of a run (the CLI draws progress bars from these).

use crate::evaluate::EvalRow;

/// Progress callbacks (the CLI draws progress bars from these).
pub trait Observer {
    /// A stage starts training (1-based).
    fn on_stage_start(&mut self, _stage: usize, _modality: &str, _epochs: usize) {}
    /// An epoch ended with this mean batch loss.
    fn on_epoch(&mut self, _stage: usize, _epoch: usize, _mean_loss: f64) {}
    /// The trainer's measurements of the epoch just reported by `on_epoch`.
    fn on_epoch_end(&mut self, _end: &EpochEnd) {}
    /// A stage was evaluated (stage 0 = before training).
    fn on_evaluated(&mut self, _stage: usize, _rows: &[EvalRow]) {}
}

/// What the trainer measured over one epoch (the training log's raw numbers).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochEnd {
    /// Stage (1-based).
    pub stage: usize,
    /// Epoch within the stage (1-based).
    pub epoch: usize,
    /// Optimiser steps of the stage so far.
    pub stage_steps: u64,
    /// Samples in this epoch's optimiser steps.
    pub samples: u64,
    /// Model loss terms (classification, pairwise, quantisation), mean over the epoch's
    /// forward passes; NaN when none ran.
    pub terms: [f64; 3],
    /// Wall seconds of the epoch.
    pub seconds: f64,
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}
