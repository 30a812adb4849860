//! seqmodal-analysis: results tables (polars), continual-learning metrics,
//! summaries and figures (plotters) for seqmodal runs.
//!
//! The flow: a run's evaluation becomes [`Record`]s, written as `metrics.csv`
//! ([`write_metrics_csv`]); an [`AccuracyMatrix`] of one metric feeds the
//! [`cl_metrics`], the [`Summary`] (`summary.json`) and the figures.

pub mod atomic;
pub mod cl_metrics;
pub mod csv;
pub mod error;
pub mod figures;
pub mod matrix;
pub mod paper;
mod paper_figures;
pub mod record;
pub mod report;
pub mod style;
pub mod summary;
pub mod sweep;

pub use atomic::atomic_write;
pub use csv::{read_metrics_csv, write_metrics_csv, METRICS_COLUMNS};
pub use error::{AnalysisError, Result};
pub use figures::{forgetting_curves, map_matrix_heatmap};
pub use matrix::AccuracyMatrix;
pub use paper::{load_sweep, write_report, PairPr, ReportFiles, ReportInputs, RunPr, SweepData};
pub use record::Record;
pub use report::{learners_report, load_run, mean_std, RunData};
pub use summary::{write_summary_json, Summary};
pub use sweep::{aggregate as aggregate_sweep, CellStatus, SweepCell, SweepOutputs};
