//! Progress callbacks of a run (the CLI draws progress bars from these).

use crate::evaluate::EvalRow;

/// Progress callbacks (the CLI draws progress bars from these).
pub trait Observer {
    /// A stage starts training (1-based).
    fn on_stage_start(&mut self, _stage: usize, _modality: &str, _epochs: usize) {}
    /// An epoch ended with this mean batch loss.
    fn on_epoch(&mut self, _stage: usize, _epoch: usize, _mean_loss: f64) {}
    /// A stage was evaluated (stage 0 = before training).
    fn on_evaluated(&mut self, _stage: usize, _rows: &[EvalRow]) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}
